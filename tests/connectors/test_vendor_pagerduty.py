"""PagerDuty's documented REST answers (tests/fixtures/pagerduty/rest), replayed over HTTP to the
real connector: the evidence is checked field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.config import PagerDutySettings
from bot.core.models import EvidenceKind, TimeWindow, evidence_id
from connectors.pagerduty import PagerDutyConnector, PagerDutyService
from tests.helpers.replay import Canned, fixture, replaying

ALERT_AT = datetime(2015, 10, 7, 9, 0, tzinfo=UTC)
WINDOW = TimeWindow(alert_at=ALERT_AT, start=ALERT_AT - timedelta(minutes=30), end=ALERT_AT + timedelta(minutes=5),
                    baseline_start=ALERT_AT - timedelta(hours=2))


def last_page(key: str) -> dict[str, object]:
    # The documented pages say "more": true; the page after them is empty.
    return {key: [], "limit": 25, "offset": 1, "more": False}


async def test_the_documented_incident_and_its_alerts() -> None:
    answers = [Canned("GET", "/incidents/PT4KHLK", fixture("pagerduty", "rest", "get_incident.json")),
               Canned("GET", "/incidents/PT4KHLK/alerts", fixture("pagerduty", "rest", "list_incident_alerts.json"),
                      query={"offset": "0"}),
               Canned("GET", "/incidents/PT4KHLK/alerts", last_page("alerts"))]
    async with replaying(answers) as server:
        connector = PagerDutyConnector(PagerDutySettings(base_url=server.base_url, web_url="https://acme.pagerduty.com",
                                                         token="t"))
        try:
            incident, alert = await connector.incident("PT4KHLK")
        finally:
            await connector.aclose()
    assert (incident.id, incident.kind) == (evidence_id(EvidenceKind.INCIDENT, "PT4KHLK"), EvidenceKind.INCIDENT)
    assert incident.title == "PagerDuty incident #1234: The server is on fire."
    assert incident.excerpt == ("[high urgency] The server is on fire. on My Mail Service; status acknowledged, "
                                "opened 2015-10-06 21:30 UTC.")
    assert incident.timestamp == datetime(2015, 10, 6, 21, 30, 42, tzinfo=UTC)
    assert incident.link == "https://acme.pagerduty.com/incidents/PT4KHLK"
    assert incident.data["status"] == "acknowledged"
    assert (incident.data["number"], incident.data["service_id"], incident.data["service"]) == (
        1234, "PIJ90N7", "My Mail Service")
    assert alert.ref == {"incident_id": "PT4KHLK", "alert_id": "PT4KHLK"}
    assert alert.excerpt == ("Alert (critical, resolved, 2015-10-06 21:30 UTC): The server is on fire.. "
                             "Custom details: customKey=Server is on fire!; customKey2=Other stuff!")
    assert alert.data["details"] == {"customKey": "Server is on fire!", "customKey2": "Other stuff!"}
    assert server.paths() == ["/incidents/PT4KHLK", "/incidents/PT4KHLK/alerts", "/incidents/PT4KHLK/alerts"]


async def test_the_documented_incident_list_is_the_services_history() -> None:
    answers = [Canned("GET", "/incidents", fixture("pagerduty", "rest", "list_incidents.json"), query={"offset": "0"}),
               Canned("GET", "/incidents", last_page("incidents"))]
    async with replaying(answers) as server:
        connector = PagerDutyConnector(PagerDutySettings(base_url=server.base_url, token="t"))
        try:
            [past] = await connector.recent_incidents("PIJ90N7", WINDOW, exclude="PNOTTHIS")
        finally:
            await connector.aclose()
        sent = server.received[0].query
    assert sent["service_ids[]"] == ["PIJ90N7"]
    assert (past.kind, past.id, past.data["status"]) == (
        EvidenceKind.PAST_INCIDENT, evidence_id(EvidenceKind.PAST_INCIDENT, "PT4KHLK"), "resolved")
    assert past.title == "Past incident #1234: The server is on fire."
    assert past.excerpt == ("[high urgency] The server is on fire. on My Mail Service; status resolved, "
                            "opened 2015-10-06 21:30 UTC, resolved after 7 min.")


async def test_the_documented_service_list_is_read_as_the_accounts_services() -> None:
    # The documented page says "more": false: one request reads it all.
    answers = [Canned("GET", "/services", fixture("pagerduty", "rest", "list_services.json"))]
    async with replaying(answers) as server:
        connector = PagerDutyConnector(PagerDutySettings(base_url=server.base_url, token="t"))
        try:
            listing = await connector.list_services()
        finally:
            await connector.aclose()
        sent = [(r.path, r.query) for r in server.received]
    assert listing.services == [PagerDutyService(
        id="PIJ90N7", name="My Application Service", status="active",
        html_url="https://subdomain.pagerduty.com/service-directory/PIJ90N7")]
    assert listing.cut is False
    assert sent == [("/services", {"sort_by": ["name"], "limit": ["100"], "offset": ["0"]})]
