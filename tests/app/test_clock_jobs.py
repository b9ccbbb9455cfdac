"""The clock's jobs for the people who run the bot: the daily digest posted to its channel in the
sandbox's Slack, and the scheduler registering the digest and the canary watch only when
configured."""

from __future__ import annotations

from pathlib import Path

from bot.app.clock import Maintenance, build_scheduler
from bot.core.config import CanaryRoute, CanarySettings, TelemetrySettings
from bot.runtime import utcnow
from bot.slack.publish import publish_brief
from sandbox.scenario import Scenario
from tests.helpers.slack_app import sandboxed_runtime


async def test_the_daily_digest_posts_the_reports_headline_numbers(checkout: Scenario, tmp_path: Path) -> None:
    async with sandboxed_runtime(checkout, tmp_path / "digest.db") as (sb, rt):
        alert = checkout.alert.to_alert()
        await publish_brief(rt, alert, rt.catalog.resolve(alert.service), "C0INCCHK", key="pd:Q1CHK5XX")
        await rt.idle()
        assert await Maintenance(rt).post_digest() == 0, "no digest channel configured: nothing posted"
        rt.settings = rt.settings.model_copy(update={"telemetry": TelemetrySettings(digest_channel="C0OPSDIGEST")})
        rt.now = utcnow  # the store's rows carry the wall clock, and so does the digest's day
        assert await Maintenance(rt).post_digest() == 1
    [digest] = [m for m in sb.system("slack").messages if m.channel == "C0OPSDIGEST"]
    assert "briefs: 1 for 1 incidents (pagerduty 1)" in digest.text
    assert "citation coverage: 100%" in digest.text
    assert "cause mix: deploy 1" in digest.text
    assert "human override: 0% of incidents" in digest.text


async def test_the_digest_and_the_canary_watch_are_scheduled_only_when_configured(
        checkout: Scenario, tmp_path: Path) -> None:
    async with sandboxed_runtime(checkout, tmp_path / "jobs.db") as (_, rt):
        names = {job.func.__name__ for job in build_scheduler(Maintenance(rt)).get_jobs()}
        assert not names & {"post_digest", "watch_canaries"}
        llm = rt.settings.llm.model_copy(update={"canary": CanarySettings(routes={
            "brief": CanaryRoute(model=rt.settings.llm.routes["brief"])})})
        rt.settings = rt.settings.model_copy(update={"llm": llm,
                                                     "telemetry": TelemetrySettings(digest_channel="C0OPS")})
        jobs = {job.func.__name__: job for job in build_scheduler(Maintenance(rt)).get_jobs()}
        assert {"post_digest", "watch_canaries"} <= set(jobs)
        assert "hour='9'" in str(jobs["post_digest"].trigger)
