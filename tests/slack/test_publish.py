"""Publishing a brief in Slack, failure paths first: the placeholder is always replaced (by the
brief or by what failed), a failed refresh keeps the brief people are reading, an incident is
posted once, an unchanged refresh stores no new version, and a chart never sinks a brief.

`publish_brief` and `refresh_brief` are called directly on a runtime built as `serve` builds it,
against the scenario's sandbox; Slack is the sandbox's fake, so assertions are on the messages
it holds (each with its earlier versions). Drafting is made to fail by giving the runtime a
drafter (or connectors) factory that fails, never by patching the code under test.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import ConfigError
from bot.core.keys import incident_key
from bot.core.models import Alert, Brief, BriefResult, Claim, Evidence, ServiceEntry, SourceGap, TimeWindow
from bot.draft.drafter import OfflineDrafter
from bot.gather.connectors import Connectors
from bot.runtime import Runtime
from bot.slack.publish import attach_chart, publish_brief, refresh_brief
from sandbox.harness import scenario_service
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.evidence import ALERT, ERRORS, metric
from tests.helpers.scenarios import with_faults
from tests.helpers.slack_app import sandboxed_runtime

EMAIL = "jane.doe@example.com"  # in every failure below: what is shown in Slack must be redacted


class FailingDrafter:
    """A drafter that fails as a broken model path or a drafter bug would."""

    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
                    gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        raise RuntimeError(f"drafter crashed on a reply about {EMAIL}")


class RevisedDrafter:
    """The offline drafter's brief with one more note: a refresh whose brief did change."""

    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
                    gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        brief = await OfflineDrafter().draft(alert, service, window, evidence, gaps, key=key)
        return brief.model_copy(update={"notes": [*brief.notes, "Revised after new evidence."]})


def broken_connectors() -> Connectors:
    raise ConfigError(f"datadog: no API key configured (ask {EMAIL})")


@dataclass
class Bot:
    sb: Sandbox
    rt: Runtime
    alert: Alert
    service: ServiceEntry
    channel: str
    key: str

    def messages(self) -> list[Any]:
        return list(self.sb.system("slack").messages)

    def card(self) -> Any:
        """The one top-level message: the placeholder, then the brief or the failure in its place."""
        [top] = [m for m in self.messages() if m.thread_ts is None]
        return top

    def replies(self) -> list[Any]:
        return [m for m in self.messages() if m.thread_ts is not None]

    def charts(self) -> list[Any]:
        return [f for f in self.sb.system("slack").files if f.content is not None]

    async def publish(self) -> str | None:
        return await publish_brief(self.rt, self.alert, self.service, self.channel)


def block_ids(message: Any) -> list[str]:
    """The block ids of a message, or of one of its earlier versions (a dict)."""
    blocks = message["blocks"] if isinstance(message, dict) else message.blocks
    return [str(block.get("block_id")) for block in blocks]


async def _bot(sb: Sandbox, rt: Runtime, scenario: Scenario) -> Bot:
    alert = scenario.alert.to_alert()
    service = scenario_service(scenario)
    channel = service.slack_channel or "C0INCIDENT"
    return Bot(sb, rt, alert, service, channel, incident_key(alert, channel=channel))


@pytest.fixture
async def bot(checkout: Scenario, tmp_path: Path) -> AsyncIterator[Bot]:
    async with sandboxed_runtime(checkout, tmp_path / "publish.db") as (sb, rt):
        yield await _bot(sb, rt, checkout)


# --- the first post ----------------------------------------------------------------------


async def test_a_failed_first_draft_replaces_the_placeholder_and_a_refresh_brings_the_brief(bot: Bot) -> None:
    bot.rt.drafter = FailingDrafter
    with pytest.raises(RuntimeError, match="drafter crashed"):
        await bot.publish()

    card = bot.card()
    assert block_ids(card)[0] == "failure"
    assert [block_ids(version)[0] for version in card.updates] == ["placeholder"], \
        "the placeholder was posted first, then replaced once"
    shown = json.dumps(card.blocks) + card.text
    assert "Gathering evidence" not in shown
    assert "RuntimeError: drafter crashed" in shown
    assert EMAIL not in shown
    assert "[REDACTED:email]" in shown
    assert await bot.rt.store.get_brief(bot.key) is None
    assert bot.replies() == []

    # The failure card says to refresh: a refresh that works puts the brief in its place.
    bot.rt.drafter = OfflineDrafter
    await refresh_brief(bot.rt, bot.key, "U0ONCALL1")
    assert "actions" in block_ids(bot.card())
    assert "failure" not in block_ids(bot.card())
    latest = await bot.rt.store.get_brief(bot.key)
    assert latest is not None
    assert latest.version == 1


async def test_connectors_that_cannot_be_built_still_replace_the_placeholder(bot: Bot) -> None:
    bot.rt.connectors = broken_connectors
    with pytest.raises(ConfigError):
        await bot.publish()

    card = bot.card()
    assert block_ids(card)[0] == "failure", "never left saying it is gathering evidence"
    shown = json.dumps(card.blocks)
    assert "ConfigError: datadog: no API key configured" in shown
    assert EMAIL not in shown


async def test_a_second_publish_for_the_same_incident_posts_nothing(bot: Bot) -> None:
    first = await bot.publish()
    again = await bot.publish()  # a PagerDuty retry, a duplicate event, another replica
    assert first is not None
    assert again is None
    # Two at once (the race the claim exists for): still no second message.
    racing = await asyncio.gather(bot.publish(), bot.publish())
    assert racing == [None, None]
    assert [m.ts for m in bot.messages()] == [first]
    posts = bot.sb.recorder.requests("slack", path_prefix="/api/chat.postMessage")
    assert len(posts) == 1
    latest = await bot.rt.store.get_brief(bot.key)
    assert latest is not None
    assert latest.version == 1


# --- refresh -----------------------------------------------------------------------------


async def test_a_failed_refresh_keeps_the_brief_and_says_so_in_the_thread(bot: Bot) -> None:
    ts = await bot.publish()
    before = bot.card().blocks
    assert "actions" in block_ids(bot.card())

    bot.rt.drafter = FailingDrafter
    with pytest.raises(RuntimeError, match="drafter crashed"):
        await refresh_brief(bot.rt, bot.key, "U0ONCALL1")

    assert bot.card().blocks == before, "the brief people are reading is kept"
    [reply] = bot.replies()
    assert reply.thread_ts == ts
    assert reply.text.startswith("Refresh failed; the brief above is unchanged: RuntimeError: drafter crashed")
    assert EMAIL not in reply.text
    latest = await bot.rt.store.get_brief(bot.key)
    assert latest is not None
    assert latest.version == 1


async def test_a_refresh_with_unchanged_evidence_stores_no_new_version_and_no_second_chart(bot: Bot) -> None:
    await bot.publish()
    assert len(bot.charts()) == 1
    updates = len(bot.card().updates)

    await refresh_brief(bot.rt, bot.key, "U0ONCALL1")
    latest = await bot.rt.store.get_brief(bot.key)
    assert latest is not None
    assert latest.version == 1
    assert len(bot.charts()) == 1
    assert len(bot.card().updates) == updates + 1, "the card is still re-rendered"

    # The same refresh with a brief that did change is a new version, with its chart.
    bot.rt.drafter = RevisedDrafter
    await refresh_brief(bot.rt, bot.key, "U0ONCALL1")
    latest = await bot.rt.store.get_brief(bot.key)
    assert latest is not None
    assert latest.version == 2
    assert "Revised after new evidence." in latest.result.brief.notes
    assert len(bot.charts()) == 2


# --- the chart ---------------------------------------------------------------------------


async def test_a_chart_that_cannot_be_uploaded_never_fails_the_brief(checkout: Scenario, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    upload_down = with_faults(checkout, errors={"slack.files_getUploadURLExternal": "http_500"})
    async with sandboxed_runtime(upload_down, tmp_path / "publish.db") as (sb, rt):
        bot = await _bot(sb, rt, upload_down)
        ts = await bot.publish()

        assert ts is not None
        assert "actions" in block_ids(bot.card()), "the brief is shown"
        assert bot.charts() == []
        tried = bot.sb.recorder.requests("slack", path_prefix="/api/files.getUploadURLExternal")
        assert tried, "the upload was attempted"
        assert {r.status for r in tried} == {500}
        assert "could not attach the chart" in caplog.text
        latest = await bot.rt.store.get_brief(bot.key)
        assert latest is not None
        assert latest.version == 1


async def test_a_chart_that_cannot_be_drawn_is_skipped_not_fatal(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    drawn = metric(ERRORS, [(-999, 0.3), (-2, 9.5)])
    # Points are there (so it is the key metric) but none can be read as (time, value).
    undrawable = drawn.model_copy(update={"data": {**drawn.data, "points": [["noon", "high"], ["later"]]}})
    claim = Claim(text="Errors rose.", citations=[undrawable.id])
    result = BriefResult(brief=Brief(headline=claim, impact=claim), evidence=[undrawable], gaps=[])
    caplog.set_level(logging.WARNING)

    await attach_chart(bot.rt, result, ALERT, channel=bot.channel, thread_ts="1.000")

    assert bot.sb.recorder.requests("slack", path_prefix="/api/files") == []
    assert f"could not attach the chart of {undrawable.id}" in caplog.text
