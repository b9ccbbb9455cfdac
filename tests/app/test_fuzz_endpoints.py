"""Property-based fuzzing of every HTTP endpoint (issue 13, finding 9), in-process over ASGI.

Four families of requests, over 10,000 cases in all, derandomised so CI runs the same corpus:

- unsigned garbage: any bytes, any headers, to every POST endpoint: always 4xx with a reason;
- signed garbage: any bytes or JSON, correctly signed: 4xx with a reason, or 2xx;
- signed mutations of every Slack request the bot acts on (mention, slash command, each
  button, each modal submit, ...) and of a PagerDuty delivery: one node replaced, deleted or
  wrapped, with hostile values among the candidates (huge numbers, lone surrogates, deep
  nesting, long strings): never a 5xx, and a 4xx always says why;
- GETs of health and metrics with any query string.

Whatever is sent, Jira is never written to, and Slack is written to only in answer to a request
that was accepted (2xx): a refused request reaches no listener. The runtime has an empty catalog
and no default channel, so an accepted PagerDuty trigger is acknowledged without drafting a
brief (drafting is not what this measures, and it would take the minute on its own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.intake.catalog import Catalog
from bot.intake.signing import sign_pagerduty
from bot.intake.slack_gate import sign_slack
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook
from sandbox.scenario import Scenario
from tests.helpers.inprocess import InProcessBot
from tests.helpers.scenarios import checkout as load_checkout

# The sweep at the end reads what the cases before it left on the module's bot: under xdist
# the module runs on one worker, in file order (`make test` uses --dist loadfile).
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
POST_ENDPOINTS = ["/slack/events", "/webhooks/pagerduty"]
SLACK_WRITES = ("slack.chat_", "slack.views_", "slack.files_")
BUTTON = json.dumps({"incident_key": "pd:FUZZ", "brief_version": 1})


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, checkout: Scenario) -> Iterator[InProcessBot]:
    running = InProcessBot(checkout, Path(tmp_path_factory.mktemp("fuzz")) / "fuzz.db")
    running.rt.catalog = Catalog([])
    slack = running.rt.settings.slack.model_copy(update={"default_channel": None})
    running.rt.settings = running.rt.settings.model_copy(update={"slack": slack})
    SLACK_TEMPLATES[:] = _slack_templates(running.sb.url("slack") + "/response/fuzz")
    yield running
    running.settle()
    try:
        assert running.writes("jira") == [], "nothing the fuzz sent may write to Jira"
    finally:
        running.close()


@pytest.fixture(scope="module")
def checkout() -> Scenario:
    return load_checkout()


def _check(bot: InProcessBot, response: Any, *, signed: bool) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.json()["error"], response.text
    elif signed:
        bot.accepted += 1
    else:
        raise AssertionError(f"an unsigned request was accepted: {response.status_code} {response.text[:200]}")


def _slack_writes(bot: InProcessBot) -> int:
    return sum(1 for r in bot.writes("slack") if (r.tool or "").startswith(SLACK_WRITES))


def _slack_headers(bot: InProcessBot, body: bytes, *, json_body: bool) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign_slack(bot.slack_secret, stamp, body),
            "Content-Type": "application/json" if json_body else "application/x-www-form-urlencoded"}


def _pd_headers(bot: InProcessBot, body: bytes) -> dict[str, str]:
    secret = bot.rt.settings.pagerduty.webhook_secrets[0].get_secret_value()
    return {"X-PagerDuty-Signature": sign_pagerduty(secret, body), "Content-Type": "application/json"}


# --- values ------------------------------------------------------------------------------------

HOSTILE = st.sampled_from([
    10**40, -(10**40), 2**63, 1e308, -1, 0, True, None, "", "\ud800", "a\udfffb", "x" * 5000,
    "<!channel>", "\x00", [], {}, [[[[[[[[[[1]]]]]]]]]], "1" * 400, {"": None},
])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
JSONS = st.recursive(SCALARS | HOSTILE, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def _mutate(template: Any, index: int, kind: str, value: Any) -> Any:
    doc = json.loads(json.dumps(template))
    paths = _paths(doc)
    path = paths[index % len(paths)]
    if not path:
        return value if kind == "replace" else [doc]
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "wrap":
        parent[last] = [parent[last]]
    else:
        parent[last] = value
    return doc


MUTATION = st.tuples(st.integers(0, 400), st.sampled_from(["replace", "replace", "delete", "wrap"]), JSONS)


# --- the Slack requests the bot acts on, as templates ------------------------------------------

def _interactive(body: str) -> dict[str, Any]:
    return dict(json.loads(parse_qs(body)["payload"][0]))


def _slack_templates(response_url: str) -> list[tuple[str, dict[str, Any]]]:
    """One of each request the bot acts on; response URLs are the sandbox's (Bolt's `respond`
    posts there), so nothing leaves the machine."""
    mention = json.loads(slack_sender.app_mention_body(channel="C0FUZZ", user="U0FUZZ", text="<@UBRIEFBOT> help",
                                                       event_id="EvFUZZ"))
    clicks = [_interactive(slack_sender.block_actions_body(user="U0FUZZ", channel="C0FUZZ", message_ts="1.000001",
                                                           action_id=action, value=BUTTON, trigger_id="1.2.fuzz",
                                                           response_url=response_url))
              for action in ("ticket_create", "brief_refresh", "feedback_up", "feedback_down")]
    ticket_view = {"id": "V1", "type": "modal", "callback_id": "ticket_submit",
                   "private_metadata": json.dumps({"approval_id": "a" * 32}), "blocks": []}
    values: dict[str, dict[str, dict[str, Any]]] = {
        "project": {"value": {"type": "static_select", "selected_option": {"value": "CHK"}}},
              "summary": {"value": {"type": "plain_text_input", "value": "checkout 5xx"}},
              "description": {"value": {"type": "plain_text_input", "value": "d"}},
              "priority": {"value": {"type": "static_select", "selected_option": {"value": "High"}}}}
    submit = _interactive(slack_sender.view_submission_body(user="U0FUZZ", view=ticket_view, values=values))
    reason_view = {"id": "V2", "type": "modal", "callback_id": "feedback_reason",
                   "private_metadata": BUTTON, "blocks": []}
    reason = _interactive(slack_sender.view_submission_body(
        user="U0FUZZ", view=reason_view, values={"reason": {"value": {"type": "plain_text_input", "value": "x"}}}))
    command = dict(parse_qsl(slack_sender.slash_command_body("/brief", "", user="U0FUZZ", channel="C0FUZZ",
                                                             response_url=response_url)))
    return [("json", mention), *(("payload", c) for c in clicks), ("payload", submit), ("payload", reason),
            ("form", command), ("json", {"type": "url_verification", "token": "t", "challenge": "c"}),
            ("payload", {"type": "view_closed", "user": {"id": "U0FUZZ"}, "view": ticket_view}),
            ("payload", {"type": "shortcut", "callback_id": "x", "user": {"id": "U0FUZZ"}, "trigger_id": "t"})]


SLACK_TEMPLATES: list[tuple[str, dict[str, Any]]] = []  # filled by the `bot` fixture (it knows the URLs)
TEMPLATE_COUNT = len(_slack_templates("https://hooks.slack.com/x"))


def _encode(kind: str, doc: Any) -> tuple[bytes, bool]:
    if kind == "json":
        return json.dumps(doc).encode(), True
    if kind == "payload":
        return urlencode({"payload": json.dumps(doc)}).encode(), False
    fields = doc if isinstance(doc, dict) else {"text": doc}
    return urlencode({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}).encode(), False


# --- the properties ----------------------------------------------------------------------------

HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@settings(FUZZ, max_examples=3000)
@given(path=st.sampled_from(POST_ENDPOINTS), body=st.binary(max_size=600) | JSONS.map(
    lambda v: json.dumps(v).encode()), stamp=st.none() | HEADER_TEXT | st.integers().map(str),
       signature=st.none() | HEADER_TEXT | st.just("v0=" + "0" * 64),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]))
def test_unsigned_garbage_is_refused_with_a_reason(bot: InProcessBot, path: str, body: bytes, stamp: str | None,
                                                   signature: str | None, content_type: str) -> None:
    before = _slack_writes(bot)
    headers = {"Content-Type": content_type}
    if stamp is not None:
        headers["X-Slack-Request-Timestamp"] = stamp
    if signature is not None:
        headers["X-Slack-Signature"] = headers["X-PagerDuty-Signature"] = signature
    _check(bot, bot.request("POST", path, body=body, headers=headers), signed=False)
    assert _slack_writes(bot) == before


@settings(FUZZ, max_examples=2000)
@given(body=st.binary(max_size=600) | JSONS.map(lambda v: json.dumps(v).encode())
       | JSONS.map(lambda v: urlencode({"payload": json.dumps(v)}).encode()),
       json_body=st.booleans(), endpoint=st.sampled_from(["slack", "pagerduty"]))
def test_signed_garbage_is_never_a_5xx(bot: InProcessBot, body: bytes, json_body: bool, endpoint: str) -> None:
    if endpoint == "slack":
        response = bot.request("POST", "/slack/events", body=body,
                               headers=_slack_headers(bot, body, json_body=json_body))
    else:
        response = bot.request("POST", "/webhooks/pagerduty", body=body, headers=_pd_headers(bot, body))
    _check(bot, response, signed=True)


@settings(FUZZ, max_examples=3000)
@given(template=st.integers(0, TEMPLATE_COUNT - 1), mutation=MUTATION)
def test_signed_mutated_slack_requests_are_never_a_5xx(bot: InProcessBot, template: int,
                                                       mutation: tuple[int, str, Any]) -> None:
    kind, doc = SLACK_TEMPLATES[template]
    body, json_body = _encode(kind, _mutate(doc, *mutation))
    _check(bot, bot.request("POST", "/slack/events", body=body,
                            headers=_slack_headers(bot, body, json_body=json_body)), signed=True)


@settings(FUZZ, max_examples=2000)
@given(event_type=st.sampled_from(["incident.triggered", "incident.acknowledged", "incident.resolved"]),
       mutation=MUTATION)
def test_signed_mutated_pagerduty_deliveries_are_never_a_5xx(bot: InProcessBot, checkout: Scenario,
                                                             event_type: str, mutation: tuple[int, str, Any]) -> None:
    template, _ = build_webhook(checkout, event_type)
    body = json.dumps(_mutate(json.loads(template), *mutation)).encode()
    _check(bot, bot.request("POST", "/webhooks/pagerduty", body=body, headers=_pd_headers(bot, body)), signed=True)


@settings(FUZZ, max_examples=200)
@given(path=st.sampled_from(["/healthz", "/metrics"]),
       params=st.dictionaries(HEADER_TEXT, HEADER_TEXT, max_size=3))
def test_health_and_metrics_answer_any_query(bot: InProcessBot, path: str, params: dict[str, str]) -> None:
    assert bot.request("GET", path, params=params).status_code == 200


def test_slack_writes_only_answer_accepted_requests(bot: InProcessBot) -> None:
    """Runs after the properties above (file order): every Slack write answers an accepted request."""
    bot.settle()
    assert bot.accepted > 0, "the properties above ran on another bot: this check would check nothing"
    assert _slack_writes(bot) <= bot.accepted


# --- the attacks of the issue, by name (each was a 500 before the gate) ------------------------

ATTACKS = {
    "not UTF-8 (unsigned)": (b"\xff\xfe\x00payload", {"Content-Type": "application/x-www-form-urlencoded"}, False),
    "broken JSON (unsigned)": (b'{"type": "event_callback", ', {"Content-Type": "application/json"}, False),
    "payload=[1] (unsigned)": (b"payload=%5B1%5D", {"Content-Type": "application/x-www-form-urlencoded"}, False),
    "timestamp not a number": (b"{}", {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "soon",
                                       "X-Slack-Signature": "v0=" + "0" * 64}, False),
    "payload=[1] (signed)": (b"payload=%5B1%5D", {}, True),
    "actions missing (signed)": (urlencode({"payload": json.dumps(
        {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "ticket_create"}]})}).encode(), {},
        True),
    "button value a list (signed)": (slack_sender.block_actions_body(
        user="U1", channel="C1", message_ts="1.0", action_id="feedback_up", value="[]").encode(), {}, True),
    "brief version 10**40 (signed)": (slack_sender.block_actions_body(
        user="U1", channel="C1", message_ts="1.0", action_id="feedback_up",
        value=json.dumps({"incident_key": "pd:X", "brief_version": 10**40})).encode(), {}, True),
    "lone surrogate (signed)": (b'{"type": "event_callback", "event": {"type": "app_mention", "channel": "C1", '
                                b'"ts": "1.0", "text": "\\ud800"}}', {}, True),
    "view without state (signed)": (urlencode({"payload": json.dumps(
        {"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "ticket_submit"}})}).encode(), {},
        True),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_issues_attacks_are_4xx_with_a_reason(bot: InProcessBot, name: str) -> None:
    body, headers, signed = ATTACKS[name]
    if signed:
        headers = _slack_headers(bot, body, json_body=body.startswith(b"{"))
    response = bot.request("POST", "/slack/events", body=body, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json()["error"]


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_a_huge_chunked_body_is_refused_before_it_is_held(bot: InProcessBot, path: str) -> None:
    """No Content-Length, 3 MB in chunks: read up to the limit, then 413."""
    response = bot.request("POST", path, body=b"{" + b" " * 3_000_000 + b"}", chunked=True,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
