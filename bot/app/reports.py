"""The operator's answers, printed: `audit`, `spend` and `report` at a terminal, and the daily
digest's headline numbers as one Slack message. The numbers come from `bot.store.reports`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.core.config import Settings
from bot.store.canary import ArmStats
from bot.store.db import create_engine_for, migrate, session_factory
from bot.store.reports import IncidentAudit, Reports, SpendLine, TrustReport

SINCE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@contextlib.asynccontextmanager
async def open_reports(settings: Settings) -> AsyncIterator[Reports]:
    """The configured store (migrated, as every process does at start), for reading."""
    await migrate(settings.database_url)
    engine = create_engine_for(settings.database_url)
    try:
        yield Reports(session_factory(engine))
    finally:
        await engine.dispose()


def parse_since(text: str) -> timedelta:
    """``7d``, ``24h``, ``90m``, ``2w``: how far back a report looks."""
    value, unit = text[:-1], text[-1:].lower()
    if unit not in SINCE_UNITS or not value.isdigit() or int(value) <= 0:
        raise ValueError(f"--since {text!r}: expected a positive number and a unit, e.g. 7d, 24h, 90m, 2w")
    return timedelta(**{SINCE_UNITS[unit]: int(value)})


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def _when(at: datetime | None) -> str:
    return "–" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


def render_incident_audit(audit: IncidentAudit, console: Console) -> None:
    incident = audit.incident
    console.print(f"[bold]{escape(incident.key)}[/bold] · {escape(incident.service)} · {escape(incident.status)} · "
                  f"opened {_when(incident.created_at)} UTC · model spend ${audit.cost_usd:.4f}", highlight=False)
    briefs = Table(title="Brief versions")
    for column in ("v", "at (UTC)", "trigger", "asked by", "drafter", "model", "top cause", "took", "cost $",
                   "votes"):
        briefs.add_column(column, overflow="fold")
    for brief in audit.briefs:
        votes = " ".join(("👍" if vote.vote == "up" else "👎") + vote.user for vote in brief.feedback) or "–"
        drafter = brief.drafter + (" (fallback)" if brief.fallback_reason else "")
        briefs.add_row(str(brief.version), _when(brief.created_at), brief.trigger or "–", brief.requested_by or "–",
                       drafter, brief.model or "–", brief.cause or "–", _ms(brief.latency_ms),
                       f"{brief.cost_usd:.4f}", votes)
    console.print(briefs)
    for brief in audit.briefs:
        if brief.fallback_reason:
            console.print(f"  v{brief.version} fell back: {escape(brief.fallback_reason)}", style="yellow")
    tools = Table(title="Tool calls")
    for column in ("at", "tool", "actor", "decision", "outcome", "items", "ms", "detail"):
        tools.add_column(column, overflow="fold")
    for call in audit.tool_calls:
        tools.add_row(f"{call.at:%H:%M:%S}", call.tool, call.actor or "–", call.decision, call.outcome,
                      str(call.evidence_count), f"{call.latency_ms:.0f}", escape(call.detail[:80]))
    console.print(tools)
    if audit.model_calls:
        models = Table(title="Model calls")
        for column in ("at", "task", "model", "arm", "tokens in/out", "cost $", "ms", "outcome", "detail"):
            models.add_column(column, overflow="fold")
        for m in audit.model_calls:
            models.add_row(f"{m.at:%H:%M:%S}", m.task, m.model, m.arm or "–", f"{m.input_tokens}/{m.output_tokens}",
                           f"{m.cost_usd:.5f}", f"{m.latency_ms:.0f}", m.outcome, escape(m.detail[:60]))
        console.print(models)
    else:
        console.print("[dim]no model calls (offline drafter)[/dim]")
    for check in audit.brief_checks:
        drafter = check.drafter + (f" ({check.model})" if check.model else "")
        console.print(escape(f"citation check {check.at:%H:%M:%S} · {drafter} · {check.outcome} · "
                             f"{check.coverage:.0%} of claims cited valid evidence"), highlight=False)
        for problem in check.problems:
            console.print(escape(f"  - {problem}"), style="yellow")
    if not audit.approvals:
        console.print("[dim]no ticket proposed for approval[/dim]")
    for approval in audit.approvals:
        summary = str(approval.proposal.get("summary", ""))
        console.print(f"[bold]approval {approval.id}[/bold] · {approval.tool} · {approval.state.value}"
                      f"{' · edited before approval' if approval.edited else ''}", highlight=False)
        console.print(f"  proposed by {approval.requested_by or '–'} at {_when(approval.created_at)} for brief "
                      f"v{approval.brief_version}: {escape(summary)}", highlight=False)
        console.print(f"  approved by {', '.join(approval.approvers) or '–'} at {_when(approval.approved_at)}; "
                      f"claimed {_when(approval.claimed_at)}; finished {_when(approval.finished_at)}", highlight=False)
        if approval.jira_key:
            console.print(f"  ticket [bold green]{approval.jira_key}[/bold green]")
        if approval.error:
            console.print(f"  {escape(approval.error)}", style="yellow")


def render_spend(lines: list[SpendLine], console: Console) -> None:
    table = Table(title="Model spend against the policy's limits (UTC)")
    for column, justify in (("scope", "left"), ("who", "left"), ("period", "left"), ("spent $", "right"),
                            ("limit $", "right"), ("used", "right"), ("tokens", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for line in lines:
        used = _pct(line.used)
        style = "red" if line.used >= 1 else "yellow" if line.used >= 0.8 else None
        table.add_row(line.scope, line.subject, line.period, f"{line.usd:.4f}", f"{line.limit_usd:.2f}",
                      f"[{style}]{used}[/{style}]" if style else used, str(line.tokens))
    if not lines:
        console.print("[dim]no model spend recorded for this day and month[/dim]")
        return
    console.print(table)


def render_report(report: TrustReport, console: Console) -> None:
    console.print(f"[bold]incident-brief report[/bold] · {_when(report.since)} → {_when(report.until)} UTC",
                  highlight=False)
    table = Table(show_header=False)
    table.add_column("measure")
    table.add_column("value", overflow="fold")
    for measure, value in report_lines(report):
        table.add_row(measure, value)
    console.print(table)
    if report.tool_sources:
        sources = Table(title="Tool calls per source")
        for column in ("source", "calls", "gaps", "errors", "denied", "failed"):
            sources.add_column(column, justify="left" if column == "source" else "right")
        for source in report.tool_sources:
            sources.add_row(source.source, str(source.calls), str(source.gaps), str(source.errors),
                            str(source.denied), _pct(source.failed / source.calls if source.calls else None))
        console.print(sources)


def report_lines(report: TrustReport) -> list[tuple[str, str]]:
    """The report's measures as (name, value) lines: the terminal table and the digest."""
    mix = ", ".join(f"{kind} {count}" for kind, count in sorted(report.causes.items(), key=lambda kv: -kv[1]))
    triggers = ", ".join(f"{name} {count}" for name, count in sorted(report.by_trigger.items()))
    reasons = ", ".join(f"{name} {count}" for name, count in sorted(report.fallback_reasons.items()))
    cost = "–" if report.cost_per_brief is None else f"${report.cost_per_brief:.4f}"
    unposted = ", ".join(f"{name} {count}" for name, count in sorted(report.alerts_not_posted.items()))
    return [
        ("briefs", f"{report.briefs} for {report.incidents} incidents" + (f" ({triggers})" if triggers else "")),
        ("cause mix", mix or "–"),
        ("citation coverage", f"{_pct(report.citation_coverage)} ({report.briefs_fixed_by_check} briefs fixed "
                              "by the check)"),
        ("schema pass rate", f"{_pct(report.schema_pass_rate)} of {report.schema_checked} model answers "
                             f"({report.model_requests} model calls)"),
        ("tool-call failures", ", ".join(f"{s.source} {s.failed}/{s.calls}" for s in report.tool_sources) or "–"),
        ("fallbacks to offline", f"{report.fallbacks}" + (f" ({reasons})" if reasons else "")),
        ("time to brief p50 / p95", f"{_ms(report.latency_p50_ms)} / {_ms(report.latency_p95_ms)}"),
        ("cost per brief", f"{cost} (${report.cost_usd:.4f} in all)"),
        ("feedback", f"👍 {report.votes_up} · 👎 {report.votes_down}"),
        ("human override", f"{_pct(report.override_rate)} of incidents: {report.tickets_edited} of "
                           f"{report.tickets_filed} tickets edited before filing, {report.tickets_rejected} "
                           f"rejected, {report.refreshed_incidents} incidents refreshed by a person"),
        ("alerts not posted", f"{sum(report.alerts_not_posted.values())} (no Slack channel: {unposted}; see "
                              "`incident-brief doctor`)" if unposted else "0"),
        ("briefs given up", f"{report.briefs_abandoned} (Slack refused every attempt; see `incident-brief audit`)"
                            if report.briefs_abandoned else "0"),
    ]


def digest_text(report: TrustReport) -> str:
    """The daily digest: the report's headline numbers as one Slack message (mrkdwn)."""
    lines = [f"*incident-brief · last 24 h* (to {report.until:%Y-%m-%d %H:%M} UTC)"]
    lines += [f"• {name}: {_slack_safe(value)}" for name, value in report_lines(report)]
    lines.append("_`incident-brief report --since 7d` for the week; `incident-brief audit <incident>` for one._")
    return "\n".join(lines)


def _slack_safe(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_canary(route: str, candidate: str, state: str, baseline: ArmStats, canary: ArmStats,
                  console: Console) -> None:
    table = Table(title=f"Canary · {route} · {candidate} ({state})")
    for column in ("side", "model", "briefs", "validation failures", "fallbacks", "latency", "cost/brief", "👎"):
        table.add_column(column, justify="left" if column in ("side", "model") else "right")
    for side, stats in (("baseline", baseline), ("canary", canary)):
        table.add_row(side, stats.model, str(stats.briefs), _pct(stats.validation_failure_rate),
                      _pct(stats.fallback_rate), _ms(stats.latency_ms), f"${stats.cost_per_brief:.4f}",
                      _pct(stats.down_rate if stats.voted else None))
    console.print(table)
