"""World items and evidence: which world item a piece of evidence was derived from.

A citation counts for a world item when the cited evidence was derived from it; the mapping
uses `Evidence.ref`, following the conventions in `bot.core.models` (a deploy by sha, a runbook
by page id, a monitor by id, a metric by query, a log pattern by its sample or mined template,
an event by id or title, a Jira issue by key).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.core.models import BriefResult, Evidence, EvidenceKind
from sandbox.scenario import (
    Dashboard,
    Deploy,
    Event,
    JiraIssue,
    LogEntry,
    MetricSeries,
    Monitor,
    Runbook,
    Scenario,
)

WorldItem = Monitor | Dashboard | MetricSeries | LogEntry | Event | Deploy | Runbook | JiraIssue

# A short sha shorter than git's usual abbreviation could collide with an unrelated commit.
MIN_SHA_PREFIX = 7


# --- world item <-> evidence -------------------------------------------------------------


def world_items(scenario: Scenario) -> dict[str, WorldItem]:
    """Every world item that `expect` can name, by its id (monitors by their numeric id as
    text, Jira issues by key)."""
    world = scenario.world
    out: dict[str, WorldItem] = {}
    for monitor in world.monitors:
        out[str(monitor.id)] = monitor
    for dashboard in world.dashboards:
        out[dashboard.id] = dashboard
    for issue in world.jira.existing_issues:
        out[issue.key] = issue
    named: list[MetricSeries | LogEntry | Event | Deploy | Runbook] = [
        *world.metrics, *world.logs, *world.events, *world.deploys, *world.runbooks]
    for item in named:
        if item.id:
            out[item.id] = item
    return out


def derived_from(evidence: Evidence, item: WorldItem) -> bool:
    """Whether this evidence was derived from this world item, judged by `Evidence.ref`."""
    ref = evidence.ref
    kind = evidence.kind
    if isinstance(item, Deploy):
        return kind == EvidenceKind.DEPLOY and _sha_match(ref.get("sha", ""), item.sha)
    if isinstance(item, Runbook):
        return kind == EvidenceKind.RUNBOOK and ref.get("page_id") == item.page_id
    if isinstance(item, Monitor):
        return kind == EvidenceKind.MONITOR and ref.get("monitor_id") == str(item.id)
    if isinstance(item, Dashboard):
        return kind == EvidenceKind.DASHBOARD and ref.get("dashboard_id") == item.id
    if isinstance(item, MetricSeries):
        return kind == EvidenceKind.METRIC and _metric_match(ref.get("query", ""), item.query)
    if isinstance(item, LogEntry):
        return kind == EvidenceKind.LOG_PATTERN and _log_match(evidence, item.message)
    if isinstance(item, Event):
        return kind == EvidenceKind.EVENT and (
            (bool(item.id) and ref.get("event_id") == item.id)
            or _squash(ref.get("title", "")) == _squash(item.title) != "")
    return kind == EvidenceKind.JIRA_ISSUE and ref.get("key") == item.key


def _metric_match(cited: str, world: str) -> bool:
    """Same query, or `agg:metric{*}`: the aggregate over every scope includes the world's series."""
    a, b = _squash(cited), _squash(world)
    if not a:
        return False
    return a == b or (a.endswith("{*}") and b.startswith(a[:-2]))


def _sha_match(cited: str, world: str) -> bool:
    a, b = cited.strip().lower(), world.strip().lower()
    if min(len(a), len(b)) < MIN_SHA_PREFIX:
        return a == b != ""
    return a.startswith(b) or b.startswith(a)


def _squash(text: str) -> str:
    return "".join(text.split())


# Drain's wildcard and our masks (<*>, <NUM>, <EMAIL>, <:NUM:>...) stand for variable text.
_PLACEHOLDER = re.compile(r"<\*>|<:?[A-Z][A-Z_]*:?>")


def _log_match(evidence: Evidence, message: str) -> bool:
    sample = evidence.ref.get("sample", "")
    if sample and (sample == message or message in sample):
        return True
    template = evidence.data.get("template")
    return isinstance(template, str) and template_matches(template, message)


def template_matches(template: str, message: str) -> bool:
    """Whether a mined log template (with placeholders) describes this raw message's first
    line. A template with no literal word of 3+ characters matches nothing: it says nothing."""
    parts = _PLACEHOLDER.split(template)
    if not any(len(word) >= 3 for part in parts for word in re.findall(r"\w+", part)):
        return False
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    pattern = ".+?".join(re.escape(part) for part in parts)
    return re.fullmatch(pattern, first_line.strip(), flags=re.DOTALL) is not None


def items_cited(scenario: Scenario, result: BriefResult, citation_ids: Sequence[str]) -> set[str]:
    """The world item ids that these citations count for."""
    by_id = {e.id: e for e in result.evidence}
    cited = [by_id[cid] for cid in citation_ids if cid in by_id]
    return {item_id for item_id, item in world_items(scenario).items()
            if any(derived_from(e, item) for e in cited)}
