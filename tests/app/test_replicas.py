"""Several replicas on one PostgreSQL, as a deployment runs them: two `serve` processes and two
`clock` processes (the real commands, as the Procfile starts them) against one database and the
sandbox. PagerDuty delivers every incident several times to both webs at once; approvers click
*Create Jira ticket* and submit the modal many times on both. One brief per incident, one Jira
ticket per approval; one clock acts, and the other takes over when it stops.

Runs under ``CI=true`` (PostgreSQL must be there: the db fixture fails without it); skips on a
laptop without PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.policy import BUNDLED_POLICY
from bot.store.approvals import Approvals
from bot.store.db import create_engine_for, session_factory
from bot.store.repo import Store
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import button, wait_for
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from sandbox.standalone import at_now, prepare
from tests.helpers.serve_process import LEADS, clock_process, serve_process

INCIDENTS = 4
DELIVERIES = 3  # each incident: this many retries of one delivery, to each web, plus a fresh delivery id
CLICKS = 4  # per web
WAIT_S = 120.0  # four processes importing and migrating on a busy 2-core machine


def incident(scenario: Scenario, n: int) -> Scenario:
    alert = scenario.alert.model_copy(update={"incident_id": f"Q{n:03d}REPL", "title": f"{scenario.alert.title} #{n}"})
    return scenario.model_copy(update={"alert": alert})


def briefs(sb: Sandbox) -> list[Any]:
    return [m for m in sb.system("slack").messages if any(b.get("type") == "actions" for b in m.blocks or [])]


def drafted(sb: Sandbox) -> list[Any]:
    return [m for m in briefs(sb) if "drafter" in json.dumps(m.blocks)]


def _policy_without_grouping(folder: Path) -> Path:
    """The bundled policy with storm grouping off: here every incident must get its own brief."""
    text = BUNDLED_POLICY.read_text()
    assert "storms: {group_by: service" in text
    path = folder / "policy.yaml"
    path.write_text(text.replace("storms: {group_by: service", "storms: {group_by: 'off'"))
    return path


async def _deliver_everywhere(scenario: Scenario, webs: list[str]) -> list[int]:
    sends = []
    for n in range(INCIDENTS):
        body, headers = build_webhook(incident(scenario, n), occurred_at=datetime.now(UTC))
        for url in webs:
            sends += [send_webhook(f"{url}/webhooks/pagerduty", body, headers) for _ in range(DELIVERIES)]
            sends.append(send_webhook(f"{url}/webhooks/pagerduty", body,
                                      {**headers, "X-Webhook-Id": str(uuid.uuid4())}))
    return [r.status_code for r in await asyncio.gather(*sends)]


async def _approve_everywhere(sb: Sandbox, webs: list[str], message: Any, approver: str) -> list[int]:
    """Concurrent clicks on both webs, then every modal they opened submitted at once, alternating webs."""
    secret = sb.ctx.secrets["slack_signing_secret"]
    found = button(message, "ticket_create")
    assert found is not None, "the brief has its Create Jira ticket button"
    slack = sb.system("slack")
    opened = len(slack.views)
    clicks = []
    for url in webs:
        for _ in range(CLICKS):
            body = slack_sender.block_actions_body(user=approver, channel=message.channel, message_ts=message.ts,
                                                   action_id="ticket_create", value=found["value"])
            clicks.append(slack_sender.post_to_bot(f"{url}/slack/events", body,
                                                   slack_sender.signed_headers(secret, body)))
    assert {r.status_code for r in await asyncio.gather(*clicks)} == {200}
    views = await wait_for(lambda: slack.views[opened:] if len(slack.views) - opened >= 1 else None, "a modal")
    await asyncio.sleep(1.0)  # let every click that opens a modal open it
    views = slack.views[opened:]
    submits = []
    for index, view in enumerate(views * 2):  # each modal submitted twice (a double click on Submit)
        body = slack_sender.view_submission_body(user=approver, view=view, values=slack_sender.initial_values(view))
        url = webs[index % len(webs)]
        submits.append(slack_sender.post_to_bot(f"{url}/slack/events", body, slack_sender.signed_headers(secret, body)))
    return [r.status_code for r in await asyncio.gather(*submits)]


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_two_webs_and_two_clocks_on_one_postgres_post_once_and_file_once(
        checkout: Scenario, tmp_path: Path, db_url: str) -> None:
    scenario = at_now(checkout)
    with Sandbox(scenario) as sb:
        env_file = prepare(sb, tmp_path / "sandbox", database_url=db_url)
        env = {"IB_LLM__ENABLED": "false", "IB_POLICY_FILE": str(_policy_without_grouping(tmp_path))}
        with serve_process(env_file, tmp_path / "web1.log", env=env) as web1, \
                serve_process(env_file, tmp_path / "web2.log", env=env) as web2, \
                clock_process(env_file, tmp_path / "clock1.log", env=env) as clock1, \
                clock_process(env_file, tmp_path / "clock2.log", env=env) as clock2:
            webs = [web1.url, web2.url]
            statuses = await _deliver_everywhere(scenario, webs)
            await wait_for(lambda: len(drafted(sb)) >= INCIDENTS or None, "every brief drafted", timeout=WAIT_S)
            await asyncio.sleep(3.0)  # a second brief, were one coming, would be posted by now
            posted = briefs(sb)
            submits = await _approve_everywhere(sb, webs, posted[0], "U0ONCALL1")
            await wait_for(lambda: list(sb.system("jira").created) or None, "the Jira ticket", timeout=WAIT_S)
            await asyncio.sleep(3.0)
            created = list(sb.system("jira").created)
            # Exactly one clock leads; stopping it hands the scheduler to the other.
            leaders = [c for c in (clock1, clock2) if c.leads()]
            assert len(leaders) == 1, (clock1.stderr(), clock2.stderr())
            standby = clock2 if leaders[0] is clock1 else clock1
            leaders[0].stop()
            started = time.monotonic()
            await wait_for(lambda: standby.leads() or None, "the standby clock to take over", timeout=60)
            takeover_s = time.monotonic() - started
            logs = [web1.stderr(), web2.stderr(), clock1.stderr(), clock2.stderr()]

    assert set(statuses) == {202}, statuses
    assert len(statuses) == INCIDENTS * len(webs) * (DELIVERIES + 1)
    assert len(posted) == INCIDENTS, [m.text for m in posted]
    assert len({m.ts for m in posted}) == INCIDENTS
    assert set(submits) == {200}, submits
    assert len(created) == 1, created
    assert standby.stderr().count(LEADS) == 1
    assert takeover_s < 60
    engine = create_engine_for(db_url)
    try:
        incidents = await Store(session_factory(engine)).list_incidents()
        by_ts = {incident.message_ts: incident.key for incident in incidents}
    finally:
        await engine.dispose()
    assert set(by_ts.values()) == {f"pd:Q{n:03d}REPL" for n in range(INCIDENTS)}
    assert by_ts.get(posted[0].ts) is not None
    filed = [a for a in await _approvals_of(db_url, by_ts[posted[0].ts]) if a.jira_key]
    assert [a.jira_key for a in filed] == [created[0]["key"]], "one approval filed, the ticket Jira created"
    for log in logs:
        assert "Traceback" not in log


async def _approvals_of(db_url: str, key: str) -> list[Any]:
    engine = create_engine_for(db_url)
    try:
        return list(await Approvals(session_factory(engine)).list_for_incident(key))
    finally:
        await engine.dispose()
