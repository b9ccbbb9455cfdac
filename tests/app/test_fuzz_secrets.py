"""Issue 13: the fuzz corpus carries planted secrets, and none of them comes out anywhere.

Every kind of secret the redactor knows (GitHub, Slack bot and app-level tokens, Slack webhook
URLs, AWS key ids and secret keys, Google and Stripe keys, JWTs, private key blocks, emails,
card numbers, SSNs, phone numbers), drawn fresh per case, whole or cut to 12+ characters, is
planted in signed, valid-enough requests the bot acts on:

- PagerDuty deliveries: new incidents of the briefed service (a storm: each is stored and
  replies in the first one's thread) with secrets in the title, an incident body's details, the
  service and agent names; "acknowledged" deliveries whose agent name is posted as a status line;
- Slack: mentions, /brief commands, the card's buttons (values and user names), the ticket modal
  and the feedback modal (its reason is stored).

After the cases, no planted secret, nor any 12-character piece of one, may be found in any
column of any table, in the captured logs (DEBUG, every library's logger) or in any request
that reached Slack or Jira. Case counts: 400 PagerDuty deliveries + 600 Slack requests,
derandomised (in-process over ASGI, the sandbox's Slack and Jira over real HTTP); the 10,200
case no-5xx fuzz run (`test_fuzz_endpoints`) keeps its own budget.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.intake.signing import sign_pagerduty
from bot.intake.slack_gate import sign_slack
from bot.telemetry.logs import configure_logging
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook
from sandbox.scenario import Scenario
from tests.helpers.inprocess import InProcessBot
from tests.helpers.leaks import database_text
from tests.helpers.logging_state import kept_logging
from tests.helpers.planted import Haystack, Plant, field
from tests.helpers.scenarios import checkout as load_checkout

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PLANTED: list[Plant] = []
LEADER = "pd:Q1CHK5XX"
CARD = json.dumps({"incident_key": LEADER, "brief_version": 1})
_ids = itertools.count(1)


class Run:
    def __init__(self, bot: InProcessBot, checkout: Scenario, logs: io.StringIO) -> None:
        self.bot, self.checkout, self.logs = bot, checkout, logs
        self.answers: dict[int, int] = {}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    checkout = load_checkout()
    logs = io.StringIO()
    with kept_logging():
        configure_logging("DEBUG", "text", stream=logs)  # every library's logger, at every level
        bot = InProcessBot(checkout, Path(tmp_path_factory.mktemp("fuzz-secrets")) / "fuzz.db")
        try:
            # The storm's leader: its brief is posted, so later incidents of the service reply in
            # its thread and the card's buttons and feedback have a brief to act on.
            body, _ = build_webhook(checkout)
            assert bot.request("POST", "/webhooks/pagerduty", body=body, headers=_pd_headers(bot, body)).is_success
            bot.settle()
            yield Run(bot, checkout, logs)
        finally:
            bot.close()


def _pd_headers(bot: InProcessBot, body: bytes) -> dict[str, str]:
    secret = bot.rt.settings.pagerduty.webhook_secrets[0].get_secret_value()
    return {"X-PagerDuty-Signature": sign_pagerduty(secret, body), "Content-Type": "application/json"}


def _slack_headers(bot: InProcessBot, body: bytes, *, json_body: bool) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign_slack(bot.slack_secret, stamp, body),
            "Content-Type": "application/json" if json_body else "application/x-www-form-urlencoded"}


def _answered(run: Run, response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["error"], response.text
    run.answers[response.status_code] = run.answers.get(response.status_code, 0) + 1


# --- PagerDuty ---------------------------------------------------------------------------------

@settings(FUZZ, max_examples=400)
@given(data=st.data(), acknowledged=st.booleans())
def test_pagerduty_deliveries_with_planted_secrets(run: Run, data: st.DataObject, acknowledged: bool) -> None:
    n = next(_ids)
    def text() -> str:
        return data.draw(field(PLANTED))
    if acknowledged:  # the agent's name goes into the status line posted in the leader's thread
        raw, _ = build_webhook(run.checkout, "incident.acknowledged", event_id=f"FZACK{n:06d}")
        doc = json.loads(raw)
        doc["event"]["occurred_at"] = f"2026-05-12T15:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
        doc["event"]["agent"] = {"id": "PUSER01", "type": "user_reference", "summary": text(),
                                 "html_url": "https://acme.pagerduty.com/users/PUSER01"}
    else:  # a new incident of the briefed service: a storm member, stored and replied
        raw, _ = build_webhook(run.checkout, event_id=f"FZTRG{n:06d}")
        doc = json.loads(raw)
        incident = doc["event"]["data"]
        incident["id"] = f"QFZ{n:06d}"
        incident["title"] = text()
        incident["body"] = {"type": "incident_body", "details": text()}
        incident["service"]["summary"] = text()
        doc["event"]["agent"]["summary"] = text()
    body = json.dumps(doc).encode()
    _answered(run, run.bot.request("POST", "/webhooks/pagerduty", body=body, headers=_pd_headers(run.bot, body)))


# --- Slack -------------------------------------------------------------------------------------

def _payload(body: str) -> dict[str, Any]:
    return dict(json.loads(parse_qs(body)["payload"][0]))


def _slack_request(run: Run, data: st.DataObject, shape: str) -> tuple[bytes, bool]:
    def text() -> str:
        return data.draw(field(PLANTED))
    response_url = run.bot.sb.url("slack") + "/response/fuzz-secrets"
    user = {"id": "U0FUZZ", "username": text(), "name": text(), "team_id": "T0FUZZ"}
    if shape == "mention":
        doc = json.loads(slack_sender.app_mention_body(channel="C0FUZZ", user="U0FUZZ",
                                                       text=f"<@UBRIEFBOT> {text()}"))
        doc["event"]["user_profile"] = {"name": text(), "real_name": text()}
        return json.dumps(doc).encode(), True
    if shape == "command":
        form = parse_qs(slack_sender.slash_command_body("/brief", text(), user="U0FUZZ", channel="C0FUZZ",
                                                        response_url=response_url))
        fields = {key: values[0] for key, values in form.items()} | {"user_name": text()}
        return urlencode(fields).encode(), False
    if shape == "button":
        action = data.draw(st.sampled_from(["ticket_create", "feedback_up", "feedback_down", "brief_refresh"]))
        value = (json.dumps({"incident_key": LEADER, "brief_version": 1, "note": text()})
                 if data.draw(st.booleans()) and action != "brief_refresh" else text())
        doc = _payload(slack_sender.block_actions_body(user="U0FUZZ", channel="C0FUZZ", message_ts="1.000001",
                                                       action_id=action, value=value, response_url=response_url))
        doc["user"] = user
        return urlencode({"payload": json.dumps(doc)}).encode(), False
    if shape == "ticket_modal":
        view = {"id": "V1", "type": "modal", "callback_id": "ticket_submit",
                "private_metadata": json.dumps({"approval_id": "f" * 32, "note": text()}), "blocks": []}
        values: dict[str, dict[str, dict[str, Any]]] = {
            "project": {"value": {"type": "static_select", "selected_option": {"value": "CHK"}}},
            "summary": {"value": {"type": "plain_text_input", "value": text()}},
            "description": {"value": {"type": "plain_text_input", "value": text()}},
            "priority": {"value": {"type": "static_select", "selected_option": {"value": "High"}}}}
    else:  # the feedback modal: its reason is stored
        view = {"id": "V2", "type": "modal", "callback_id": "feedback_reason", "private_metadata": CARD,
                "blocks": []}
        values = {"reason": {"value": {"type": "plain_text_input", "value": text()}}}
    doc = _payload(slack_sender.view_submission_body(user="U0FUZZ", view=view, values=values))
    doc["user"] = user
    return urlencode({"payload": json.dumps(doc)}).encode(), False


@settings(FUZZ, max_examples=600)
@given(data=st.data(), shape=st.sampled_from(["mention", "command", "button", "ticket_modal", "feedback_modal"]))
def test_slack_requests_with_planted_secrets(run: Run, data: st.DataObject, shape: str) -> None:
    body, json_body = _slack_request(run, data, shape)
    _answered(run, run.bot.request("POST", "/slack/events", body=body,
                                   headers=_slack_headers(run.bot, body, json_body=json_body)))


# --- the sweep (runs after the properties above, in file order) --------------------------------

def test_no_planted_secret_reaches_a_table_a_log_slack_or_jira(run: Run) -> None:
    run.bot.settle()
    assert len(PLANTED) >= 1000, len(PLANTED)
    assert {plant.kind for plant in PLANTED if plant.cut} >= {"github_token", "jwt", "private_key"}
    assert sum(run.answers.values()) == 1000
    recorder = run.bot.sb.recorder
    slack = recorder.requests("slack")
    places = {f"db {column}": text
              for column, text in run.bot.call(database_text(run.bot.rt.store.sessions)).items()}
    places["logs"] = run.logs.getvalue()
    places["slack"] = "\n".join(r.path + json.dumps(r.query) + r.body for r in slack)
    places["jira"] = "\n".join(r.path + json.dumps(r.query) + r.body for r in recorder.requests("jira"))
    # The sweep looks where the secrets went: stored alerts, replies in the thread, DEBUG records.
    assert "[REDACTED:" in places["db incidents.alert"]
    assert "[REDACTED:" in places["slack"]
    assert "DEBUG" in places["logs"]
    haystack = Haystack(PLANTED)
    leaked = {place: [f"{plant.kind}{' (cut)' if plant.cut else ''}: {around!r}" for plant, around in hits[:5]]
              for place, text in places.items() if (hits := haystack.found(text))}
    assert leaked == {}
