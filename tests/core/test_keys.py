"""The incident key (bot.core.keys): one name per incident, whoever files a row about it."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.keys import incident_key, pagerduty_key
from bot.core.models import Alert

AT = datetime(2026, 6, 3, 8, 12, tzinfo=UTC)


def _alert(**fields: object) -> Alert:
    return Alert.model_validate({"via": "slack_mention", "title": "t", "service": "search-api",
                                 "triggered_at": AT, **fields})


def test_a_pagerduty_incident_is_keyed_by_its_id_wherever_it_is_asked_about() -> None:
    alert = _alert(via="pagerduty", incident_id="Q1CHK5XX")
    assert incident_key(alert) == incident_key(alert, channel="C1", thread_ts="1.2") == pagerduty_key("Q1CHK5XX")
    assert pagerduty_key("Q1CHK5XX") == "pd:Q1CHK5XX"


def test_a_slack_request_is_keyed_by_where_it_was_asked() -> None:
    alert = _alert()
    assert incident_key(alert, channel="C1") == "slack:C1:channel:search-api"
    assert incident_key(alert, channel="C1", thread_ts="1.2") == "slack:C1:1.2:search-api"
    assert incident_key(alert, channel="C1", thread_ts="1.2") != incident_key(alert, channel="C2", thread_ts="1.2")
    assert incident_key(alert) == "slack:cli:channel:search-api"
