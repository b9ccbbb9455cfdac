"""Finding 11 of issue 13, through the web app as `serve` runs it: a store that vanishes, is
locked by another process, or is restarted under a PagerDuty redelivery."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx

from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import wait_for
from sandbox.scenario import Scenario
from tests.helpers.locks import sqlite_locked_by_another_process
from tests.helpers.slack_app import running_bot


def _briefs(harness: object) -> list[object]:
    messages = harness.sb.system("slack").messages  # type: ignore[attr-defined]
    return [m for m in messages if any(b.get("type") == "actions" for b in m.blocks or [])]


async def test_readyz_fails_with_the_reason_when_the_sqlite_file_is_deleted(checkout: Scenario,
                                                                           tmp_path: Path) -> None:
    async with running_bot(checkout, tmp_path / "bot.db") as harness, \
            httpx.AsyncClient(base_url=harness.url) as client:
        assert (await client.get("/readyz")).json() == {"ok": True, "store": "ok"}
        for suffix in ("", "-wal", "-shm"):
            Path(f"{harness.db_path}{suffix}").unlink(missing_ok=True)
        await _wait_past_cache()
        answer = await client.get("/readyz")
        live = await client.get("/healthz")
    assert answer.status_code == 503
    assert "missing" in answer.json()["store"]
    assert live.status_code == 200, "liveness: restarting the process is not what fixes a database"


async def test_a_store_locked_by_another_process_answers_503_fast_and_the_retry_is_briefed(
        checkout: Scenario, tmp_path: Path) -> None:
    async with running_bot(checkout, tmp_path / "bot.db") as harness:
        body, headers = build_webhook(checkout)
        with sqlite_locked_by_another_process(harness.db_path):
            started = time.monotonic()
            busy = await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)
            waited = time.monotonic() - started
        assert busy.status_code == 503, busy.text
        assert "store busy, retry" in busy.json()["error"]
        assert busy.headers["retry-after"] == "5"
        assert waited < 5.0, "answered within PagerDuty's 5 s, which then retries the 5xx"
        # PagerDuty's retry (the same delivery) is not a duplicate: nothing was recorded.
        retried = await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)
        assert retried.status_code == 202
        assert "accepted" in retried.json()
        await wait_for(lambda: _briefs(harness) or None, "the brief in Slack")
        await harness.rt.idle()
        assert len(_briefs(harness)) == 1


async def test_after_a_restart_a_redelivery_does_not_post_the_brief_again(checkout: Scenario,
                                                                          tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    body, headers = build_webhook(checkout)
    async with running_bot(checkout, db) as harness:
        assert (await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)).status_code == 202
        await wait_for(lambda: _briefs(harness) or None, "the brief in Slack")
        await harness.rt.idle()
    # A new process on the same store: PagerDuty redelivers (same X-Webhook-Id), and sends the
    # same event again under a new delivery id (a second subscription, a manual resend).
    async with running_bot(checkout, db) as restarted:
        again = await send_webhook(f"{restarted.url}/webhooks/pagerduty", body, headers)
        resent = await send_webhook(f"{restarted.url}/webhooks/pagerduty", body,
                                    {**headers, "X-Webhook-Id": str(uuid.uuid4())})
        await restarted.rt.idle()
        posts = restarted.posts()
    assert again.json().get("duplicate")
    assert resent.status_code == 202
    assert posts == [], "the store has the incident: not posted twice"


async def test_when_the_store_lost_the_incident_a_redelivery_posts_a_fresh_brief(checkout: Scenario,
                                                                                 tmp_path: Path) -> None:
    """What docs/operations.md promises: with the database gone the bot cannot know it posted,
    and a brief posted twice beats an incident left without one."""
    db = tmp_path / "bot.db"
    body, headers = build_webhook(checkout)
    async with running_bot(checkout, db) as harness:
        await send_webhook(f"{harness.url}/webhooks/pagerduty", body, headers)
        await wait_for(lambda: _briefs(harness) or None, "the brief in Slack")
        await harness.rt.idle()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    async with running_bot(checkout, db) as restarted:
        again = await send_webhook(f"{restarted.url}/webhooks/pagerduty", body, headers)
        await wait_for(lambda: _briefs(restarted) or None, "a fresh brief in Slack")
        await restarted.rt.idle()
    assert again.status_code == 202
    assert again.json().get("accepted")


async def _wait_past_cache() -> None:
    await asyncio.sleep(2.1)  # the probe's answer is cached for 2 s
