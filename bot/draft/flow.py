"""The one flow that makes a brief: gather → draft → validate. Reads top to bottom; each stage is
a span (`bot.telemetry`) under the incident key.

Whoever asks (a PagerDuty trigger, a Slack mention, a refresh, the CLI's scenario harness)
calls `build_brief` with a tool runner already keyed by the incident (`bot.core.keys`), so
every audit row of the brief, tool calls, model calls and the citation check, is filed
under one key. It never raises for a source problem: a failing source is a gap in the brief.

`brief_versions` is the same flow for a brief that must not wait for the slowest source
(issue 10): it yields an early version at the deadline with what is in (the rest marked
pending) and the complete version when every source has answered or failed, saying what
changed. The early version is always drafted offline: a model call takes seconds, would miss
the deadline it exists for, and would be spent on a brief replaced moments later. When every
source is in before the deadline but a model drafter is still drafting at it, the offline
brief is posted first and the model's replaces it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from datetime import datetime

from bot.core.audit import BriefCheckRecord
from bot.core.models import Alert, BriefResult, Evidence, ServiceEntry, Source, SourceGap, TimeWindow
from bot.core.redaction import redact
from bot.draft.changes import what_changed
from bot.draft.citations import validate_brief
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.gather.connectors import Connectors
from bot.gather.fanout import Gathering, gather
from bot.gather.plan import incident_window
from bot.gather.tools import ToolRunner
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import annotate, span


async def build_brief(
    alert: Alert,
    service: ServiceEntry,
    *,
    runner: ToolRunner,
    connectors: Connectors,
    now: datetime,
    drafter: Drafter | None = None,
) -> BriefResult:
    """Gather, draft and validate one brief for the incident `runner.brief_key`."""
    window = incident_window(alert, now)
    with span("gather", **{"incident.key": runner.brief_key}):
        evidence, gaps = await gather(alert, service, window, runner, connectors)
        telemetry.gathered(runner.brief_key, evidence=len(evidence), gaps=[gap.source.value for gap in gaps])
    return await draft_brief(alert, service, window, evidence, gaps, runner=runner, drafter=drafter)


async def brief_versions(
    alert: Alert,
    service: ServiceEntry,
    *,
    runner: ToolRunner,
    connectors: Connectors,
    now: datetime,
    first_post_s: float,
    drafter: Drafter | None = None,
) -> AsyncGenerator[BriefResult, None]:
    """The brief as versions: an early one `first_post_s` after this call when anything (a
    source or the model) is still out at that moment, then the complete one (`final`). One
    version only when everything is in by the deadline."""
    started = time.monotonic()
    window = incident_window(alert, now)
    key = {"incident.key": runner.brief_key}
    gathering = Gathering(alert, service, window, runner, connectors)
    try:
        with span("gather", **key):
            early = await gathering.wait(first_post_s)
        if not early.done:
            first = await draft_brief(alert, service, window, early.evidence, early.gaps, runner=runner,
                                      drafter=OfflineDrafter(), pending=early.pending)
            yield first
            with span("gather", **key):
                complete = await gathering.wait()
        else:
            first, complete = None, early
        telemetry.gathered(runner.brief_key, evidence=len(complete.evidence),
                           gaps=[gap.source.value for gap in complete.gaps])
        final = asyncio.ensure_future(draft_brief(alert, service, window, complete.evidence, complete.gaps,
                                                  runner=runner, drafter=drafter))
        try:
            left = first_post_s - (time.monotonic() - started)
            if first is None and drafter is not None and not isinstance(drafter, OfflineDrafter):
                # Everything is in, the model is drafting: post the offline brief at the deadline
                # if the model has not answered by then.
                await asyncio.wait({final}, timeout=max(left, 0.0))
                if not final.done():
                    first = await draft_brief(alert, service, window, complete.evidence, complete.gaps,
                                              runner=runner, drafter=OfflineDrafter(), pending=[Source.LLM])
                    yield first
            result = await final
        finally:
            if not final.done():
                final.cancel()
        if first is not None:
            result = result.model_copy(update={"changes": what_changed(first, result)})
        yield result
    finally:
        await gathering.aclose()


async def draft_brief(alert: Alert, service: ServiceEntry, window: TimeWindow, evidence: list[Evidence],
                      gaps: list[SourceGap], *, runner: ToolRunner, drafter: Drafter | None,
                      pending: list[Source] | None = None) -> BriefResult:
    """Draft and validate one version from the evidence in hand. `pending`: what is still out
    (sources, or the model), so the version says so."""
    key = {"incident.key": runner.brief_key}
    with span("draft", **key):
        brief = await (drafter or OfflineDrafter()).draft(alert, service, window, evidence, gaps,
                                                          key=runner.brief_key)
        annotate(**{"brief.drafter": brief.draft.drafter, "gen_ai.request.model": brief.draft.model})
    with span("validate", **key):
        checked = validate_brief(brief, evidence)
        # The note on the brief tells the reader; this row tells the platform team which drafter
        # (and which model) claimed what the evidence did not support.
        check = BriefCheckRecord(
            brief_key=runner.brief_key, actor=runner.actor, drafter=brief.draft.drafter, model=brief.draft.model,
            outcome="fixed" if checked.problems else "ok", coverage=round(checked.coverage, 4),
            problems=[redact(problem) for problem in checked.problems])
        telemetry.validated(check)
        await runner.audit.brief_check(check)
    return BriefResult(brief=checked.brief, evidence=evidence, gaps=gaps,
                       pending=list(pending or []))
