"""The one flow: resolve -> gather -> analyse/draft -> validate. Reads top to bottom.

The workflow chooses every tool call from the alert and the catalog before any evidence
text is read (the model never chooses tools). Sources are fetched concurrently through the
`ToolRunner` choke point, so the slowest source, not the sum, sets the latency, and a
failing source becomes a `SourceGap` in the brief.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from bot.analysis import find_upstream
from bot.audit import BriefCheckRecord, MemoryAudit
from bot.catalog import Catalog
from bot.citations import validate_brief
from bot.drafting import Drafter, OfflineDrafter
from bot.models import Alert, BriefResult, Evidence, EvidenceKind, ServiceEntry, Source, SourceGap, TimeWindow
from bot.redaction import redact
from bot.tools import ReadOutcome, ToolRunner

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.scenario import Scenario
    from connectors.confluence import ConfluenceConnector
    from connectors.datadog import DatadogConnector
    from connectors.github import GitHubConnector
    from connectors.jira import JiraReader
    from connectors.pagerduty import PagerDutyConnector
    from sandbox.core import RecordedRequest

INCIDENT_LOOKBACK = timedelta(minutes=60)
BASELINE_SPAN = timedelta(hours=3)


def incident_window(alert: Alert, now: datetime) -> TimeWindow:
    """An hour before the alert is "the incident"; three hours before that is "normal"."""
    start = alert.triggered_at - INCIDENT_LOOKBACK
    return TimeWindow(alert_at=alert.triggered_at, start=start, end=max(now, alert.triggered_at),
                      baseline_start=start - BASELINE_SPAN)


def apm_queries(service: str, env: str) -> list[str]:
    """The standard APM series every traced HTTP service has: errors, latency, traffic."""
    scope = f"service:{service},env:{env}"
    return [
        f"sum:trace.http.request.errors{{{scope}}}.as_rate()",
        f"p95:trace.http.request.duration{{{scope}}}",
        f"sum:trace.http.request.hits{{{scope}}}.as_rate()",
    ]


@dataclass
class Connectors:
    """The read connectors for one run. Any may be absent (not configured)."""

    datadog: DatadogConnector | None = None
    github: GitHubConnector | None = None
    confluence: ConfluenceConnector | None = None
    pagerduty: PagerDutyConnector | None = None
    jira: JiraReader | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Connectors:
        from connectors.confluence import ConfluenceConnector
        from connectors.datadog import DatadogConnector
        from connectors.github import GitHubConnector
        from connectors.jira import JiraReader
        from connectors.pagerduty import PagerDutyConnector

        return cls(
            datadog=DatadogConnector(settings.datadog),
            github=GitHubConnector(settings.github),
            confluence=ConfluenceConnector(settings.confluence),
            pagerduty=PagerDutyConnector(settings.pagerduty),
            jira=JiraReader(settings.jira),
        )

    async def aclose(self) -> None:
        for connector in (self.datadog, self.github, self.confluence, self.pagerduty, self.jira):
            close = getattr(connector, "aclose", None)
            if close is not None:
                await close()


Planned = tuple[str, Source, Callable[[], Awaitable[list[Evidence]]], dict[str, Any]]


def plan_reads(alert: Alert, service: ServiceEntry, window: TimeWindow, c: Connectors) -> list[Planned]:
    """Every read this alert needs, decided from the alert and the catalog alone."""
    plan: list[Planned] = []
    dd = service.datadog
    if c.datadog and dd:
        datadog = c.datadog
        monitor_id = alert.details.get("monitor_id")
        if isinstance(monitor_id, int | str) and str(monitor_id).isdigit():
            plan.append(("datadog.get_monitor", Source.DATADOG,
                         lambda: datadog.get_monitor(int(monitor_id)), {"monitor_id": int(monitor_id)}))
        if dd.dashboards:
            plan.append(("datadog.get_dashboard", Source.DATADOG,
                         lambda: datadog.get_dashboards(dd.dashboards, window), {"ids": dd.dashboards}))
        queries = apm_queries(dd.service, dd.env)
        plan.append(("datadog.query_metrics", Source.DATADOG,
                     lambda: datadog.query_metrics(queries, window), {"queries": queries}))
        plan.append(("datadog.search_logs", Source.DATADOG,
                     lambda: datadog.search_logs(dd.service, dd.env, window), {"service": dd.service}))
        plan.append(("datadog.list_events", Source.DATADOG,
                     lambda: datadog.list_events(dd.service, window), {"service": dd.service}))
    if c.github and service.github_repo:
        github, repo = c.github, service.github_repo
        plan.append(("github.list_deployments", Source.GITHUB,
                     lambda: github.recent_deploys(repo, window), {"repo": repo}))
    if c.confluence and (service.confluence_space or service.confluence_labels):
        confluence = c.confluence
        plan.append(("confluence.search", Source.CONFLUENCE,
                     lambda: confluence.find_runbooks(service.confluence_space, service.confluence_labels,
                                                      alert.title),
                     {"space": service.confluence_space, "labels": service.confluence_labels}))
    if c.pagerduty and alert.incident_id:
        pagerduty, incident_id = c.pagerduty, alert.incident_id
        plan.append(("pagerduty.get_incident", Source.PAGERDUTY,
                     lambda: pagerduty.incident(incident_id), {"incident_id": incident_id}))
        if service.pagerduty_service_id:
            service_id = service.pagerduty_service_id
            plan.append(("pagerduty.list_incidents", Source.PAGERDUTY,
                         lambda: pagerduty.recent_incidents(service_id, window, exclude=incident_id),
                         {"service_id": service_id}))
    if c.jira and service.jira_project:
        jira, project = c.jira, service.jira_project
        plan.append(("jira.search", Source.JIRA, lambda: jira.open_issues(project, service.name),
                     {"project": project}))
    return plan


# Metric name prefixes of common dependencies, for the follow-up read when logs blame one.
DEPENDENCY_METRIC_PREFIXES: dict[str, list[str]] = {
    "Elasticsearch": ["elasticsearch."], "OpenSearch": ["opensearch."], "PostgreSQL": ["postgresql."],
    "MySQL": ["mysql."], "Redis": ["redis."], "Memcached": ["memcache."], "Kafka": ["kafka."],
    "RabbitMQ": ["rabbitmq."], "Cassandra": ["cassandra."], "MongoDB": ["mongodb."],
}
MAX_FOLLOW_UPS = 2


def plan_follow_ups(evidence: list[Evidence], window: TimeWindow, c: Connectors) -> list[Planned]:
    """Reads decided from the first round's evidence: when error logs blame a dependency whose
    metrics were not gathered, fetch its saturation metrics. The workflow decides, not a model;
    the trigger is a dependency name the analysis recognises, never free text from the logs."""
    if c.datadog is None:
        return []
    datadog = c.datadog
    have = " ".join(str(e.data.get("query", "")) for e in evidence if e.kind == EvidenceKind.METRIC).lower()
    blamed: list[str] = []
    for item in evidence:
        if item.kind != EvidenceKind.LOG_PATTERN or str(item.data.get("status", "")).lower() not in {
                "error", "critical", "warn", "warning"}:
            continue
        name = find_upstream(f"{item.title} {item.data.get('template', '')}")
        prefixes = DEPENDENCY_METRIC_PREFIXES.get(name or "")
        if name and prefixes and name not in blamed and not any(p in have for p in prefixes):
            blamed.append(name)
    plan: list[Planned] = []
    for name in blamed[:MAX_FOLLOW_UPS]:
        plan.append(("datadog.query_metrics", Source.DATADOG,
                     partial(datadog.dependency_metrics, name, DEPENDENCY_METRIC_PREFIXES[name], window),
                     {"dependency": name}))
    return plan


async def _run(plan: list[Planned], runner: ToolRunner) -> list[ReadOutcome]:
    return list(await asyncio.gather(*(runner.read(tool, source, call, args=args)
                                       for tool, source, call, args in plan)))


async def gather(alert: Alert, service: ServiceEntry, window: TimeWindow, runner: ToolRunner,
                 connectors: Connectors) -> tuple[list[Evidence], list[SourceGap]]:
    """Every planned read concurrently; the follow-ups start as soon as the reads they depend
    on (Datadog's) are in, so they overlap the slower sources instead of waiting for them.
    Evidence is folded in plan order, whatever order the answers arrive in."""
    plan = plan_reads(alert, service, window, connectors)
    datadog_reads = [item for item in plan if item[1] == Source.DATADOG]
    other_reads = [item for item in plan if item[1] != Source.DATADOG]

    async def datadog_then_follow_ups() -> tuple[list[ReadOutcome], list[ReadOutcome]]:
        first = await _run(datadog_reads, runner)
        seen = [item for outcome in first for item in outcome.evidence]
        follow_ups = plan_follow_ups(seen, window, connectors)
        return first, (await _run(follow_ups, runner) if follow_ups else [])

    (datadog_first, follow_up_outcomes), others = await asyncio.gather(
        datadog_then_follow_ups(), _run(other_reads, runner))
    by_plan_order = {id(item): outcome for item, outcome in zip(datadog_reads, datadog_first, strict=True)}
    by_plan_order.update({id(item): outcome for item, outcome in zip(other_reads, others, strict=True)})
    outcomes = [by_plan_order[id(item)] for item in plan] + follow_up_outcomes
    evidence: dict[str, Evidence] = {}
    gaps: list[SourceGap] = []
    for outcome in outcomes:
        if outcome.gap is not None:
            gaps.append(outcome.gap)
        for found in outcome.evidence:
            evidence.setdefault(found.id, found)
    return list(evidence.values()), gaps


async def build_brief(
    alert: Alert,
    service: ServiceEntry,
    *,
    runner: ToolRunner,
    connectors: Connectors,
    now: datetime,
    drafter: Drafter | None = None,
) -> BriefResult:
    """Gather, draft and validate one brief. Never raises for a source problem."""
    window = incident_window(alert, now)
    evidence, gaps = await gather(alert, service, window, runner, connectors)
    brief = await (drafter or OfflineDrafter()).draft(alert, service, window, evidence, gaps)
    checked = validate_brief(brief, evidence)
    # The note on the brief tells the reader; this row tells the platform team which drafter
    # (and which model) claimed what the evidence did not support.
    await runner.audit.brief_check(BriefCheckRecord(
        brief_key=runner.brief_key, actor=runner.actor, drafter=brief.draft.drafter, model=brief.draft.model,
        outcome="fixed" if checked.problems else "ok", coverage=round(checked.coverage, 4),
        problems=[redact(problem) for problem in checked.problems]))
    return BriefResult(brief=checked.brief, evidence=evidence, gaps=gaps)


@dataclass
class ScenarioRun:
    """One scenario drafted end to end in the sandbox: what the evals and `draft` use."""

    result: BriefResult
    writes: list[RecordedRequest]
    requests: list[RecordedRequest]
    audit: MemoryAudit | None = None  # the tool calls (and, for a model drafter, its model calls)


async def draft_for_scenario(scenario: Scenario, *, drafter: str | Drafter = "offline") -> ScenarioRun:
    """Start the scenario's sandbox, run the workflow against it, stop the sandbox."""
    from bot.drafting import drafter_for
    from bot.policy import default_policy
    from sandbox.server import Sandbox

    alert = scenario.alert.to_alert()
    service = Catalog(scenario.service_entries()).resolve(alert.service)
    policy = default_policy()
    with Sandbox(scenario) as sandbox:
        settings = sandbox.settings()
        audit = MemoryAudit()
        if drafter == "llm":
            # The model is this sandbox's own model server: no second sandbox, one audit trail.
            from bot.gateway.factory import llm_drafter

            chosen: Drafter = llm_drafter(settings.llm, policy, audit=audit)
        else:
            chosen = drafter_for(drafter, scenario=scenario) if isinstance(drafter, str) else drafter
        connectors = Connectors.from_settings(settings)
        runner = ToolRunner(policy=policy, audit=audit, brief_key=f"scenario:{scenario.id}",
                            actor=alert.requested_by, timeout_s=settings.source_timeout_s)
        try:
            result = await build_brief(alert, service, runner=runner, connectors=connectors,
                                       now=scenario.now, drafter=chosen)
        finally:
            await connectors.aclose()
        requests = sandbox.recorder.requests()
        writes = sandbox.recorder.writes()
    model_audit = getattr(chosen, "audit", None)
    if isinstance(model_audit, MemoryAudit) and model_audit is not audit:
        audit.model_calls.extend(model_audit.model_calls)
    return ScenarioRun(result=result, writes=writes, requests=requests, audit=audit)


def brief_json(result: BriefResult) -> str:
    """The CLI's documented JSON: {"brief": ..., "evidence": [...], "gaps": [...]}."""
    return json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False)
