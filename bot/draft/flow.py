"""The one flow that makes a brief: gather → draft → validate. Reads top to bottom; each stage is
a span (`bot.telemetry`) under the incident key.

Whoever asks (a PagerDuty trigger, a Slack mention, a refresh, the CLI's scenario harness)
calls `build_brief` with a tool runner already keyed by the incident (`bot.core.keys`), so
every audit row of the brief, tool calls, model calls and the citation check, is filed
under one key. It never raises for a source problem: a failing source is a gap in the brief.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.audit import BriefCheckRecord
from bot.core.models import Alert, BriefResult, ServiceEntry
from bot.core.redaction import redact
from bot.draft.citations import validate_brief
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.gather.connectors import Connectors
from bot.gather.fanout import gather
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
    key = {"incident.key": runner.brief_key}
    with span("gather", **key):
        evidence, gaps = await gather(alert, service, window, runner, connectors)
        telemetry.gathered(runner.brief_key, evidence=len(evidence), gaps=[gap.source.value for gap in gaps])
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
    return BriefResult(brief=checked.brief, evidence=evidence, gaps=gaps)
