"""Issue 13, proof: secrets planted everywhere a brief reads reach nowhere the bot writes.

Secrets (whole, and cut so a connector's clip lands inside them) are planted in the alert,
the logs, an event, the deploy and its pull request's title and body, the runbook and an open
Jira issue. A brief is then paged, drafted (by the offline drafter, and through the gateway
against the sandbox's simulated model), posted, and its ticket approved and filed. No secret,
nor any 12-character piece of one, may be found in any column of any table, in the logs at
DEBUG (every library's logger), in the prompts the model received, or in what Slack and Jira
received.

The sweep covers all 43 bundled scenarios (development and held-out) with both drafters when
``LEAK_SWEEP=full`` is set (``make leak-sweep``: 86 runs, 4 min 19 s measured). ``make test`` runs
a representative subset (`REPRESENTATIVE`, both drafters): the scenarios built around secrets,
injection, a Slack-mention trigger, every source down, and both sets - so the default suite
stays inside its time budget.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic_ai import models

from bot.core.policy import default_policy
from bot.telemetry.logs import configure_logging
from sandbox.people import approve_ticket, button, trigger, wait_for
from sandbox.scenario import Scenario, load_scenario, parse_scenario
from tests.helpers.leaks import database_text, leaks, pieces
from tests.helpers.scenarios import SCENARIOS
from tests.helpers.slack_app import running_bot
from tests.helpers.telemetry import model_drafter

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture(autouse=True)
def _allow_sandbox_model_requests() -> Iterator[None]:
    # conftest blocks model requests; this test reaches only the loopback sandbox's model.
    with models.override_allow_model_requests(True):
        yield

GH = "ghp_Zq8Lm3Nx7Rt2Vb6Kc9Hj4Pw1Sd5Fg0Ay3Ek7Ut"
AWS_ID = "AKIAQX7RZ2LM4NP8VT3W"
AWS_SECRET = "wJalrXUtnFEMIq7MDENGabPxRfiCYzq9Lm2Nx8Rt"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaGVja291dC1zdmMiLCJyb2xlIjoiYWRtaW4ifQ."
       "Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seTEyMzQ")
XAPP = "xapp-1-A07QZ8LM3NX-7734512098765-f3a9c1e7b2d8f4a6c0e9b7d3a1f5c8e2"
HOOK = "https://hooks.slack.com/services/T07QZ8LM3/B07RT2VB6/Hu5Gy2Jw8Qe4Ro1Ti7Pa3Sd"
GOOGLE = "AIzaSyBv3Xc8Zn1Mq7Wr4Ty9Ui2Op6As5Df0GhJk"
STRIPE = "sk_live_51Lp0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2"
PASSWORD = "Tr0ub4dor-Horse-Battery-77"
EMAIL = "jane.planted@example.com"
CARD = "4539 5781 2346 7893"  # Luhn-valid
SSN = "219-09-9999"
PHONE = "(415) 867-5309"
KEY_BODY = "MIIEowIBAAKCAQEAq8Zr3Xn7Lm2Vb6Kc9Hj4Pw1Sd5Fg0Ay3Ek7Ut5Gy2Jw8Qe4Ro1Ti7Pa3Sd9Lm2Nx"
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----"
SECRETS = [GH, AWS_ID, AWS_SECRET, JWT, XAPP, HOOK, GOOGLE, STRIPE, PASSWORD, EMAIL, CARD, SSN, PHONE, KEY_BODY]


def _cut_at(limit: int, secret: str, lead: str = "request failed; context ") -> str:
    """Text whose `limit`-th character falls inside `secret`: a clip at that limit halves it."""
    pad = max(0, limit - len(lead) - len(secret) // 2)
    return lead + "x" * pad + " " + secret + " end"


def _plant(base: Scenario) -> Scenario:
    """`base` with secrets in every kind of text it has a place for."""
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw.pop("path", None)
    alert = raw["alert"]
    service = alert["service"]
    alert["title"] = (f"{alert['title']}, key {AWS_ID} {AWS_SECRET} for {EMAIL} "
                      "\u202egnp.exe")  # a right-to-left override: must not reach Slack either
    alert["details"] = {**alert.get("details", {}), "note": f"token {GH}", "hook": HOOK, "password": PASSWORD}
    if alert.get("mention_text"):
        alert["mention_text"] += f" (my token is {GH})"
    world = raw["world"]
    world.setdefault("logs", []).append({
        "id": "leaky", "service": service, "status": "error", "count": 60,
        "message": _cut_at(400, JWT, f"AuthError: bearer rejected for {EMAIL}; header "),
        "from": "2026-05-12T13:59:00Z", "to": "2026-05-12T14:04:00Z"})
    world["logs"].append({
        "id": "leaky-title", "service": service, "status": "error", "count": 45,
        "message": _cut_at(100, GH, "GitPushError: remote rejected token ") + f" google={GOOGLE} {XAPP}",
        "from": "2026-05-12T13:58:30Z", "to": "2026-05-12T14:04:00Z"})
    world.setdefault("events", []).append({
        "id": "leaky-event", "title": f"Config push with aws_secret_access_key={AWS_SECRET}",
        "text": f"stripe {STRIPE} password={PASSWORD}; card {CARD}, ssn {SSN}, call {PHONE}",
        "at": "2026-05-12T13:50:00Z", "tags": [f"service:{service}"]})
    for deploy in world.get("deploys", [])[:1]:
        deploy["description"] = _cut_at(120, AWS_SECRET, f"{deploy.get('description') or 'Deploy'} with {AWS_ID} ")
        pull = deploy.setdefault("pull_request", {"number": 999, "title": "Change"})
        pull["title"] = f"{pull['title']} (token {GH[:30]}"
        pull["body"] = f"Rotated {STRIPE}; hook {HOOK}; ask {EMAIL}; {JWT}"
    for runbook in world.get("runbooks", [])[:1]:
        runbook["body"] += (f"\n4. Auth with {XAPP} and password={PASSWORD}; webhook {HOOK}\n"
                            f"5. Deploy key:\n{PRIVATE_KEY}\n")
    for entry in raw.get("catalog", []):
        if entry.get("name") == service and not entry.get("slack_channel"):
            # A service the catalog gives no channel (reports-half-catalogued) is briefed in the
            # deployment's default channel in production; the sandbox has none, so name one.
            entry["slack_channel"] = "C0LEAKSWP"
    project = next((entry.get("jira", {}).get("project") for entry in raw.get("catalog", [])
                    if entry.get("name") == service and entry.get("jira")), None)
    if project:
        world.setdefault("jira", {}).setdefault("existing_issues", []).append(
            {"key": f"{project}-99", "summary": f"Leaked {GOOGLE} in logs ({EMAIL})"})
    return parse_scenario(raw, f"{base.id} with planted secrets")


async def _leaks_after_a_brief(scenario: Scenario, db: Path, *, file_ticket: bool,
                               drafter: str = "llm") -> dict[str, list[str]]:
    """Run the scenario as production would (trigger, draft offline or through the simulated
    model, post; approve and file the ticket when asked) and return each place a secret leaked to."""
    captured = io.StringIO()
    configure_logging("DEBUG", "text", stream=captured)  # every library's logger, at every level
    factory = model_drafter() if drafter == "llm" else None
    async with running_bot(scenario, db, policy=default_policy(), drafter=factory) as bot:
        await trigger(scenario, bot.sb, bot.url)
        message = await wait_for(bot.brief_message, "the brief in Slack", timeout=60)
        await bot.rt.idle()
        if file_ticket:
            assert button(message, "ticket_create") is not None
            await approve_ticket(bot.sb, bot.url, message, "U0ONCALL1")
            await wait_for(lambda: list(bot.sb.system("jira").created) or None, "the ticket")
        await asyncio.sleep(0.05)
        await bot.rt.idle()
        recorder = bot.sb.recorder
        prompts = recorder.requests("llm")
        assert bool(prompts) == (drafter == "llm"), "the brief was drafted by the drafter asked for"
        places = {
            **{f"db {column}": text for column, text in (await database_text(bot.rt.store.sessions)).items()},
            "prompts": "\n".join(r.body for r in prompts),
            "slack": "\n".join(r.path + json.dumps(r.query) + r.body for r in recorder.requests("slack")),
            "jira": "\n".join(r.path + json.dumps(r.query) + r.body for r in recorder.requests("jira")),
        }
    places["logs at DEBUG"] = captured.getvalue()
    assert "DEBUG" in places["logs at DEBUG"], "the libraries' own DEBUG records were captured"
    # The planted evidence did reach the brief (masked): the test looks where the secrets were.
    assert "[REDACTED:" in (places["prompts"] if drafter == "llm" else places["db evidence.data"])
    if file_ticket:  # the checkout brief quotes the planted evidence in Slack and Jira
        assert "[REDACTED:" in places["slack"]
        assert "[REDACTED:" in places["jira"]
    slack_text = places["slack"]
    assert "\u202e" not in slack_text
    assert "\\u202e" not in slack_text.lower(), "no bidi override, raw or JSON-escaped, reaches Slack"
    return {place: hit for place, text in places.items() if (hit := _where(text))}


# Both sets: 32 development scenarios and 11 held-out ones.
ALL = sorted([path.stem for path in SCENARIOS.glob("*.yaml")]
             + [f"heldout/{path.stem}" for path in (SCENARIOS / "heldout").glob("*.yaml")])
# One of each shape the pipeline handles differently: secrets everywhere (dev and held-out),
# injection in the alert's details, a Slack mention (dev and held-out), every source down, an
# unknown cause, a config change. The checkout scenario runs on its own (it files a ticket).
REPRESENTATIVE = ["support-secrets-everywhere", "heldout/profile-secrets-in-logs-and-pr",
                  "notify-injection-alert-details", "search-latency-injection", "heldout/shipping-upstream-dns",
                  "orders-every-source-down", "inventory-unknown", "payments-config-change"]
SWEEP = ALL if os.environ.get("LEAK_SWEEP") == "full" else REPRESENTATIVE
DRAFTERS = ["offline", "llm"]


def _scenario(name: str) -> Scenario:
    return load_scenario(SCENARIOS / f"{name}.yaml")


def test_the_sweep_names_real_scenarios() -> None:
    assert len(ALL) == 43, len(ALL)
    assert set(REPRESENTATIVE) <= set(ALL)


@pytest.mark.parametrize("drafter", DRAFTERS)
async def test_planted_secrets_reach_no_table_log_prompt_slack_or_jira(checkout: Scenario, tmp_path: Path,
                                                                        drafter: str) -> None:
    # The checkout brief proposes a ticket: the approval, the modal and the Jira create are covered.
    assert await _leaks_after_a_brief(_plant(checkout), tmp_path / "leaks.db", file_ticket=True,
                                      drafter=drafter) == {}


@pytest.mark.parametrize("drafter", DRAFTERS)
@pytest.mark.parametrize("name", [name for name in SWEEP if name != "checkout-5xx-after-deploy"])
async def test_no_planted_secret_leaks_in_any_bundled_scenario(name: str, drafter: str, tmp_path: Path) -> None:
    assert await _leaks_after_a_brief(_plant(_scenario(name)), tmp_path / "leaks.db", file_ticket=False,
                                      drafter=drafter) == {}


def _where(text: str) -> list[str]:
    """Each leaked secret with the text around its first piece found, to say what leaked how."""
    out = []
    for secret in leaks(text, SECRETS):
        piece = next(p for p in pieces(secret) if p in text)
        at = text.index(piece)
        out.append(f"{secret[:16]}…: {text[max(0, at - 80):at + 40]!r}")
    return out
