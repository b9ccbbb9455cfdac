"""What the choke points call: one line there records the metric, annotates the current span
and emits the structured event of a step. Labels are checked against their closed sets here,
so a new tool or outcome name cannot open an unbounded label."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.core.audit import BriefCheckRecord, ModelCallRecord, ToolCallRecord
from bot.core.policy import KNOWN_TOOLS, SpendLimits
from bot.telemetry import metrics
from bot.telemetry.events import event
from bot.telemetry.tracing import annotate

TRIGGERS = ("pagerduty", "slack_mention", "cli", "refresh", "scheduled")
_unlisted = "other"


def _bounded(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else _unlisted


def tool_call(record: ToolCallRecord) -> None:
    tool = _bounded(record.tool, KNOWN_TOOLS)
    source = record.tool.split(".", 1)[0] if tool != _unlisted else _unlisted
    metrics.TOOL_CALLS.labels(source=source, tool=tool, outcome=record.outcome).inc()
    if record.latency_ms > 0:
        metrics.TOOL_CALL_SECONDS.labels(source=source, tool=tool).observe(record.latency_ms / 1000)
    annotate(**{"tool.decision": record.decision, "outcome": record.outcome,
                "evidence.count": record.evidence_count, "latency_ms": round(record.latency_ms, 1)})
    event("tool_call", incident=record.brief_key, tool=record.tool, source=source, decision=record.decision,
          outcome=record.outcome, evidence=record.evidence_count, latency_ms=round(record.latency_ms, 1),
          detail=record.detail or None)


def gathered(incident: str | None, *, evidence: int, gaps: list[str]) -> None:
    annotate(**{"evidence.count": evidence, "gaps.count": len(gaps), "gaps.sources": ",".join(sorted(gaps))})
    event("gathered", incident=incident, evidence=evidence, gaps=sorted(gaps) or None)


def validated(check: BriefCheckRecord) -> None:
    annotate(outcome=check.outcome, **{"citations.coverage": check.coverage, "citations.problems": len(check.problems)})
    event("validated", incident=check.brief_key, drafter=check.drafter, model=check.model, outcome=check.outcome,
          coverage=check.coverage, problems=len(check.problems))


def analysed(*, hypotheses: int, top_cause: str | None) -> None:
    annotate(**{"analysis.hypotheses": hypotheses, "analysis.top_cause": top_cause})


def model_call(record: ModelCallRecord, *, workspace: str) -> None:
    """One model request, made or refused (the gateway's audit row)."""
    metrics.MODEL_CALLS.labels(route=record.task, model=record.model, outcome=record.outcome).inc()
    if record.outcome == "cache_hit":
        return
    if record.latency_ms > 0:
        metrics.MODEL_CALL_SECONDS.labels(route=record.task, model=record.model).observe(record.latency_ms / 1000)
    if record.input_tokens:
        metrics.MODEL_TOKENS.labels(model=record.model, workspace=workspace, direction="input").inc(
            record.input_tokens)
    if record.output_tokens:
        metrics.MODEL_TOKENS.labels(model=record.model, workspace=workspace, direction="output").inc(
            record.output_tokens)
    if record.cost_usd > 0:
        metrics.MODEL_COST.labels(model=record.model, workspace=workspace).inc(record.cost_usd)
    event("model_call", incident=record.brief_key, route=record.task, model=record.model, arm=record.arm,
          outcome=record.outcome, input_tokens=record.input_tokens, output_tokens=record.output_tokens,
          cost_usd=round(record.cost_usd, 6), latency_ms=round(record.latency_ms, 1), detail=record.detail or None)


def cache_lookup(route: str, *, hit: bool) -> None:
    metrics.CACHE_LOOKUPS.labels(route=route, result="hit" if hit else "miss").inc()


def fallback(route: str, reason: str, *, to: str, incident: str | None) -> None:
    """A model attempt failed and the next model (``next_model``) or the offline path took over."""
    metrics.FALLBACKS.labels(route=route, reason=reason, to=to).inc()
    event("fallback", incident=incident, route=route, reason=reason, to=to)


def canary_switched_off(route: str, model: str, *, reason: str) -> None:
    metrics.CANARY_SWITCHED_OFF.labels(route=route).inc()
    event("canary_switched_off", route=route, model=model, reason=reason)


class _UserDayPeak:
    """The highest user-day spend ratio this process has charged today. Each replica charges
    some users; each user's total comes from the shared store, so the max over replicas is
    the max over users. It starts again at 0 on a new UTC day."""

    def __init__(self) -> None:
        self.day: date | None = None
        self.peak = 0.0

    def update(self, today: date, ratio: float) -> float:
        if today != self.day:
            self.day, self.peak = today, 0.0
        self.peak = max(self.peak, ratio)
        return self.peak


_user_day_peak = _UserDayPeak()


def spend(*, workspace: str, user_day_usd: float | None, workspace_month_usd: float, limits: SpendLimits,
          now: datetime) -> None:
    """The totals right after a charge, against the policy's limits."""
    metrics.SPEND_LIMIT.labels(scope="user_day").set(limits.per_user_usd_per_day)
    metrics.SPEND_LIMIT.labels(scope="workspace_month").set(limits.per_workspace_usd_per_month)
    metrics.WORKSPACE_SPEND.labels(workspace=workspace).set(workspace_month_usd)
    metrics.SPEND_USED.labels(scope="workspace_month", workspace=workspace).set(
        _ratio(workspace_month_usd, limits.per_workspace_usd_per_month))
    if user_day_usd is not None:
        peak = _user_day_peak.update(now.astimezone(UTC).date(), _ratio(user_day_usd, limits.per_user_usd_per_day))
        metrics.SPEND_USED.labels(scope="user_day", workspace=workspace).set(peak)


def spend_refused(scope: str, *, incident: str | None) -> None:
    metrics.SPEND_REFUSALS.labels(scope=scope).inc()
    event("spend_refused", incident=incident, scope=scope)


def _ratio(spent: float, limit: float) -> float:
    if limit <= 0:
        return 1.0 if spent > 0 else 0.0
    return spent / limit


def brief(trigger: str, outcome: str, *, incident: str, seconds_since_alert: float | None,
          elapsed_s: float, gaps: int = 0, drafter: str | None = None) -> None:
    """A brief finished (posted, unchanged on a refresh, or failed in place of the placeholder)."""
    trigger = _bounded(trigger, TRIGGERS)
    metrics.BRIEFS.labels(trigger=trigger, outcome=outcome).inc()
    # A refresh comes long after its alert by design: only a first brief measures the delay.
    if seconds_since_alert is not None and outcome == "posted" and trigger not in ("refresh", "scheduled"):
        metrics.ALERT_TO_FINAL_BRIEF.labels(trigger=trigger).observe(max(seconds_since_alert, 0.0))
    annotate(outcome=outcome, **{"brief.gaps": gaps, "brief.drafter": drafter})
    event("brief", incident=incident, trigger=trigger, outcome=outcome, gaps=gaps, drafter=drafter,
          elapsed_s=round(elapsed_s, 3), seconds_since_alert=None if seconds_since_alert is None
          else round(seconds_since_alert, 3))


def first_post(trigger: str, *, incident: str, seconds_since_alert: float) -> None:
    trigger = _bounded(trigger, TRIGGERS)
    metrics.ALERT_TO_FIRST_POST.labels(trigger=trigger).observe(max(seconds_since_alert, 0.0))
    event("placeholder_posted", incident=incident, trigger=trigger,
          seconds_since_alert=round(seconds_since_alert, 3))


APPROVAL_OUTCOMES = ("filed", "already_filed", "waiting_for_approver", "lost_race", "preview", "refused",
                     "failed", "uncertain", "expired", "rejected")


def approval(outcome: str, *, approval_id: str, incident: str | None = None) -> None:
    outcome = _bounded(outcome, APPROVAL_OUTCOMES)
    metrics.APPROVALS.labels(outcome=outcome).inc()
    annotate(outcome=outcome)
    event("approval", incident=incident, approval_id=approval_id, outcome=outcome)


def feedback(vote: str, *, incident: str, version: int) -> None:
    metrics.FEEDBACK.labels(vote=_bounded(vote, ("up", "down"))).inc()
    event("feedback", incident=incident, version=version, vote=vote)


WEBHOOK_OUTCOMES = ("accepted", "duplicate", "recorded", "unreadable", "bad_signature", "malformed", "too_large",
                    "not_configured", "unavailable", "store_busy")


def webhook(source: str, outcome: str) -> None:
    outcome = _bounded(outcome, WEBHOOK_OUTCOMES)
    metrics.WEBHOOK_DELIVERIES.labels(source=source, outcome=outcome).inc()
    annotate(outcome=outcome)
    event("webhook", source=source, outcome=outcome)


NOT_POSTED_REASONS = ("no_channel",)


def alert_not_posted(reason: str, *, incident: str, service: str) -> None:
    """An alert the bot accepted and posted nowhere (`bot.app.web`): counted, never silent."""
    reason = _bounded(reason, NOT_POSTED_REASONS)
    metrics.ALERTS_NOT_POSTED.labels(reason=reason).inc()
    annotate(outcome="not_posted")
    event("alert_not_posted", incident=incident, service=service, reason=reason)
