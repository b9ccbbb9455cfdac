"""What to read for an alert, decided from the alert and the catalog before any evidence is read.

The workflow, not a model, chooses every tool call: `plan_reads` from the alert and the
service's catalog entry, `plan_follow_ups` from the first round's evidence (a dependency the
analysis recognises by name, never free text from the logs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.analyse.vocabulary import DEPENDENCY_METRIC_PREFIXES, find_upstream
from bot.core.log_status import ERROR_STATUSES, WARNING_STATUSES
from bot.core.models import Alert, Evidence, EvidenceKind, ServiceEntry, Source, TimeWindow
from bot.gather.connectors import Connectors

INCIDENT_LOOKBACK = timedelta(minutes=60)
BASELINE_SPAN = timedelta(hours=3)
MAX_FOLLOW_UPS = 2

# (tool name, source, the call, its arguments for the audit row)
Planned = tuple[str, Source, Callable[[], Awaitable[list[Evidence]]], dict[str, Any]]


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
        # One read per dashboard: one the catalog names but Datadog no longer has (deleted,
        # renamed) is its own gap, and the others' widgets and metrics still arrive.
        for dashboard_id in dict.fromkeys(dd.dashboards):
            plan.append(("datadog.get_dashboard", Source.DATADOG,
                         partial(datadog.get_dashboards, [dashboard_id], window), {"id": dashboard_id}))
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
        if item.kind != EvidenceKind.LOG_PATTERN or str(item.data.get("status", "")).lower() not in (
                ERROR_STATUSES | WARNING_STATUSES):
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
