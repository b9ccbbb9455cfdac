"""Issue 13: the fuzz corpus carries planted secrets, and none of them comes out anywhere.

Every kind of secret the redactor knows (GitHub, Slack bot and app-level tokens, Slack webhook
URLs, AWS key ids and secret keys, Google and Stripe keys, JWTs, private key blocks, emails,
card numbers, SSNs, phone numbers), drawn fresh per case, whole or cut to 12+ characters, is
planted in signed, valid-enough requests the bot acts on:

- PagerDuty deliveries: new incidents of the briefed service (a storm: each is stored and
  replies in the first one's thread) with secrets in the title, an incident body's details, the
  service and agent names; "acknowledged" deliveries whose agent name is posted as a status line;
- Slack: mentions, /brief commands, the card's buttons (values and user names), the ticket modal
  and the feedback modal (its reason is stored). One mention in `DRAFT_ONE_IN` is made in the
  briefed service's channel, so it is drafted into a brief of its own (its text is the alert's
  title and the request the drafter reads), by the offline drafter and through the gateway
  against the sandbox's simulated model in turn; the others ask in a channel of no service.

After the cases, no planted secret, nor any 12-character piece of one, may be found in any
column of any table, in the captured logs (DEBUG, every library's logger), in the prompts the
model received, or in any request that reached Slack or Jira. Case counts: 200 PagerDuty
deliveries + 300 Slack requests in `make test`, 400 + 600 under ``LEAK_SWEEP=full`` (`make
leak-sweep`), derandomised (in-process over ASGI, the sandbox's Slack, Jira
and model over real HTTP); the 10,200 case no-5xx fuzz run (`test_fuzz_endpoints`) keeps its
own budget.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_ai import models

from bot.draft.drafter import Drafter
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
from tests.helpers.telemetry import model_drafter

# The sweep at the end reads what the cases before it left on the module's bot: under xdist
# the module runs on one worker, in file order (`make test` uses --dist loadfile).
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PLANTED: list[Plant] = []
LEADER = "pd:Q1CHK5XX"
CARD = json.dumps({"incident_key": LEADER, "brief_version": 1})
SERVICE_CHANNEL = "C0INCCHK"  # checkout-api's channel in the catalog: a mention there is drafted
FULL = os.environ.get("LEAK_SWEEP") == "full"
PD_CASES, SLACK_CASES = (400, 600) if FULL else (200, 300)  # the half keeps make test in budget
DRAFT_ONE_IN = 12  # 10 of 113 mentions under the full sweep, about half in make test: each a whole brief, ~2 s
_ids = itertools.count(1)


class Run:
    def __init__(self, bot: InProcessBot, checkout: Scenario, logs: io.StringIO) -> None:
        self.bot, self.checkout, self.logs = bot, checkout, logs
        self.answers: dict[int, int] = {}
        # The drafters a mention's brief is drafted by, in turn: offline, then the gateway.
        self.drafters: tuple[Callable[[], Drafter], ...] = (bot.rt.drafter, model_drafter()(bot.sb, bot.rt))
        self.mentions = 0  # drawn (hypothesis may abandon a case before it is sent)
        self.drafted = 0  # sent to the service's channel
        self.busy = 0  # 503 "store busy" answers delivered again


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    checkout = load_checkout()
    logs = io.StringIO()
    # conftest blocks model requests; these reach only the loopback sandbox's simulated model.
    with kept_logging(), models.override_allow_model_requests(True):
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


BUSY_RETRIES = 10


def _deliver(run: Run, path: str, body: bytes, headers: Callable[[], dict[str, str]]) -> Any:
    """Send as PagerDuty and Slack do: a 503 "store busy" (the bounded write met a SQLite lock on
    a loaded machine, and wrote nothing) is delivered again; any other 5xx is a failure."""
    for attempt in range(BUSY_RETRIES):
        response = run.bot.request("POST", path, body=body, headers=headers())
        if response.status_code != 503 or "busy" not in response.text:
            break
        run.busy += 1
        time.sleep(0.05 * (attempt + 1))
    return response


def _answered(run: Run, response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["error"], response.text
    run.answers[response.status_code] = run.answers.get(response.status_code, 0) + 1


# --- PagerDuty ---------------------------------------------------------------------------------

@settings(FUZZ, max_examples=PD_CASES)
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
    _answered(run, _deliver(run, "/webhooks/pagerduty", body, lambda: _pd_headers(run.bot, body)))


# --- Slack -------------------------------------------------------------------------------------

def _payload(body: str) -> dict[str, Any]:
    return dict(json.loads(parse_qs(body)["payload"][0]))


def _slack_request(run: Run, data: st.DataObject, shape: str) -> tuple[bytes, bool, bool]:
    """The request's body, whether it is JSON, and whether it is a mention to be drafted."""
    def text() -> str:
        return data.draw(field(PLANTED))
    response_url = run.bot.sb.url("slack") + "/response/fuzz-secrets"
    user = {"id": "U0FUZZ", "username": text(), "name": text(), "team_id": "T0FUZZ"}
    if shape == "mention":
        run.mentions += 1  # every DRAFT_ONE_IN-th: a count, not a draw (hypothesis favours small values)
        drafted = run.mentions % DRAFT_ONE_IN == 1
        doc = json.loads(slack_sender.app_mention_body(channel=SERVICE_CHANNEL if drafted else "C0FUZZ",
                                                       user="U0FUZZ", text=f"<@UBRIEFBOT> {text()}"))
        doc["event"]["user_profile"] = {"name": text(), "real_name": text()}
        return json.dumps(doc).encode(), True, drafted
    if shape == "command":
        form = parse_qs(slack_sender.slash_command_body("/brief", text(), user="U0FUZZ", channel="C0FUZZ",
                                                        response_url=response_url))
        fields = {key: values[0] for key, values in form.items()} | {"user_name": text()}
        return urlencode(fields).encode(), False, False
    if shape == "button":
        action = data.draw(st.sampled_from(["ticket_create", "feedback_up", "feedback_down", "brief_refresh"]))
        value = (json.dumps({"incident_key": LEADER, "brief_version": 1, "note": text()})
                 if data.draw(st.booleans()) and action != "brief_refresh" else text())
        doc = _payload(slack_sender.block_actions_body(user="U0FUZZ", channel="C0FUZZ", message_ts="1.000001",
                                                       action_id=action, value=value, response_url=response_url))
        doc["user"] = user
        return urlencode({"payload": json.dumps(doc)}).encode(), False, False
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
    return urlencode({"payload": json.dumps(doc)}).encode(), False, False


@settings(FUZZ, max_examples=SLACK_CASES)
@given(data=st.data(), shape=st.sampled_from(["mention", "command", "button", "ticket_modal", "feedback_modal"]))
def test_slack_requests_with_planted_secrets(run: Run, data: st.DataObject, shape: str) -> None:
    body, json_body, drafted = _slack_request(run, data, shape)
    if drafted:  # by each drafter in turn (the flow asks the runtime for one when it drafts)
        run.bot.rt.drafter = run.drafters[run.drafted % len(run.drafters)]
    _answered(run, _deliver(run, "/slack/events", body, lambda: _slack_headers(run.bot, body, json_body=json_body)))
    if drafted:
        run.drafted += 1
        run.bot.settle()  # drafted before the drafter changes again


# --- the sweep (runs after the properties above, in file order) --------------------------------

async def _mention_briefs(run: Run) -> dict[str, set[str]]:
    """Each incident drafted from a mention in the service's channel: the drafters of its versions."""
    store = run.bot.rt.store
    keys = [i.key for i in await store.list_incidents() if i.key.startswith(f"slack:{SERVICE_CHANNEL}:")]
    return {key: {check.drafter for check in await store.list_brief_checks(key)} for key in keys}


def test_no_planted_secret_reaches_a_table_a_log_slack_or_jira(run: Run) -> None:
    run.bot.settle()
    assert len(PLANTED) >= PD_CASES + SLACK_CASES, len(PLANTED)
    assert {plant.kind for plant in PLANTED if plant.cut} >= {"github_token", "jwt", "private_key"}
    assert sum(run.answers.values()) == PD_CASES + SLACK_CASES
    recorder = run.bot.sb.recorder
    slack = recorder.requests("slack")
    places = {f"db {column}": text
              for column, text in run.bot.call(database_text(run.bot.rt.store.sessions)).items()}
    places["logs"] = run.logs.getvalue()
    places["slack"] = "\n".join(r.path + json.dumps(r.query) + r.body for r in slack)
    places["jira"] = "\n".join(r.path + json.dumps(r.query) + r.body for r in recorder.requests("jira"))
    places["prompts"] = "\n".join(r.body for r in recorder.requests("llm"))
    # The sweep looks where the secrets went: stored alerts, replies in the thread, DEBUG records,
    # and briefs drafted from planted mentions by both drafters (their prompts included).
    assert "[REDACTED:" in places["db incidents.alert"]
    assert "[REDACTED:" in places["slack"]
    assert "DEBUG" in places["logs"]
    briefs = run.bot.call(_mention_briefs(run))
    assert run.drafted >= 4, run.drafted
    assert len(briefs) == run.drafted, "every planted mention in the service's channel became a brief"
    assert set().union(*briefs.values()) == {"offline", "llm"}, briefs
    assert "[REDACTED:" in places["prompts"]
    haystack = Haystack(PLANTED)
    leaked = {place: [f"{plant.kind}{' (cut)' if plant.cut else ''}: {around!r}" for plant, around in hits[:5]]
              for place, text in places.items() if (hits := haystack.found(text))}
    assert leaked == {}
