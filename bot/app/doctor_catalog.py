"""`doctor`'s catalog rows: every reference in the service catalog resolves at its source.

A catalog rots: a dashboard deleted in Datadog, a repository renamed, a space key or a project
key mistyped. Each then turns every brief of its services into a gap, found at 3 a.m. One row per
kind of reference (`datadog dashboards`, `github repos`, `confluence spaces`, `jira projects`;
the catalog's PagerDuty ids have their own `pagerduty services` row) checks each distinct
reference once, whichever services name it, through the tool choke point under the tool name a
brief's read of it has (policy, timeout, audit), by the connectors' reference checks.

What a row says, per reference: *missing or unreadable* (the source says it does not have it, or
the token may not read it) fails; *could not check* (the source did not answer: an outage, a
timeout) fails too, since nothing was proved, and reads differently so nobody edits a catalog
over an outage; a Confluence space whose search finds no pages is a warning (Confluence does
not say whether the space is missing or merely empty or hidden from the token).

Bounded: at most `CONCURRENCY` checks at a time per source, at most `MAX_REFERENCES` in all
(shared out among the kinds, the rest counted as not checked), and once a source has not
answered, its remaining references are not tried: an outage costs one timeout, not one each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core.models import ReferenceCheck, ServiceEntry, Source
from bot.core.policy import Policy
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog

MAX_REFERENCES = 200  # per doctor run, across the kinds
CONCURRENCY = 4  # checks in flight per source: a doctor must not hammer a vendor
MAX_NAMED = 5  # references named per finding; the rest are counted
MAX_SERVICES = 3  # services named per reference

Check = Callable[[str], Awaitable[ReferenceCheck]]


@dataclass(frozen=True)
class Checks:
    """Each connector's reference check (`DatadogConnector.dashboard_check` and the like)."""

    dashboard: Check
    repo: Check
    space: Check
    project: Check


@dataclass(frozen=True)
class Kind:
    """One kind of catalog reference: its row, the tool that reads it and what a pass says."""

    row: str
    tool: str
    source: Source
    noun: str
    arg: str  # the audit row's argument name
    named: Callable[[ServiceEntry], list[str]]
    pick: Callable[[Checks], Check]
    passed: str


KINDS: tuple[Kind, ...] = (
    Kind("datadog dashboards", "datadog.get_dashboard", Source.DATADOG, "dashboard", "dashboard_id",
         lambda e: list(e.datadog.dashboards) if e.datadog else [], lambda c: c.dashboard, "each exists"),
    Kind("github repos", "github.list_deployments", Source.GITHUB, "repository", "repo",
         lambda e: [e.github_repo] if e.github_repo else [], lambda c: c.repo,
         "the token can list each one's deployments"),
    Kind("confluence spaces", "confluence.search", Source.CONFLUENCE, "space", "space",
         lambda e: [e.confluence_space] if e.confluence_space else [], lambda c: c.space,
         "a search of each finds pages"),
    Kind("jira projects", "jira.search", Source.JIRA, "project", "project",
         lambda e: [e.jira_project] if e.jira_project else [], lambda c: c.project, "each exists"),
)
NO_PAGES = ("(a space that does not exist, that the token cannot see, or that has no pages: runbook "
            "searches there find nothing)")


@dataclass(frozen=True)
class Finding:
    """One catalog row: its name, status ("ok", "warning", "FAILED", "skipped") and detail."""

    row: str
    status: str
    detail: str


@dataclass(frozen=True)
class Checked:
    """One reference's outcome: a `ReferenceCheck` state, "unchecked" (the source did not
    answer) or "untried" (its source had already not answered)."""

    ref: str
    services: tuple[str, ...]
    state: str
    detail: str


async def catalog_rows(runner: ToolRunner, policy: Policy, catalog: Catalog, checks: Checks) -> list[Finding]:
    """One finding per kind of reference, the kinds checked concurrently."""
    if not len(catalog):
        return [Finding(kind.row, "skipped", "no catalog") for kind in KINDS]
    wanted = [references(catalog, kind) for kind in KINDS]
    allowed = [policy.decide(kind.tool).outcome == "allow" for kind in KINDS]
    quotas = shares([len(refs) if ok else 0 for refs, ok in zip(wanted, allowed, strict=True)], MAX_REFERENCES)
    return list(await asyncio.gather(*(
        _kind_row(runner, policy, kind, refs, quota, kind.pick(checks))
        for kind, refs, quota in zip(KINDS, wanted, quotas, strict=True))))


def references(catalog: Catalog, kind: Kind) -> dict[str, tuple[str, ...]]:
    """Each distinct reference of `kind` in the catalog, sorted, with the services naming it."""
    found: dict[str, list[str]] = {}
    for name in catalog.names():
        entry = catalog.get(name)
        for ref in dict.fromkeys(kind.named(entry)) if entry else ():
            found.setdefault(ref, []).append(name)
    return {ref: tuple(found[ref]) for ref in sorted(found)}


def shares(sizes: list[int], cap: int) -> list[int]:
    """How many references of each kind are checked: `cap` in all, dealt one at a time, so a
    catalog with hundreds of dashboards still has its repositories checked."""
    given = [0] * len(sizes)
    while cap > 0 and any(g < n for g, n in zip(given, sizes, strict=True)):
        for index, size in enumerate(sizes):
            if cap > 0 and given[index] < size:
                given[index] += 1
                cap -= 1
    return given


async def _kind_row(runner: ToolRunner, policy: Policy, kind: Kind, refs: dict[str, tuple[str, ...]],
                    quota: int, check: Check) -> Finding:
    if not refs:
        return Finding(kind.row, "skipped", f"no catalog service names a {kind.noun}")
    decision = policy.decide(kind.tool)
    if decision.outcome != "allow":
        # A brief could not read them either: the policy, not the catalog, is what to look at.
        return Finding(kind.row, "skipped", f"{kind.tool}: {decision.reason}; the catalog's {kind.row} "
                       "were not checked")
    started = time.perf_counter()
    checked = await _check_each(runner, kind, list(refs.items())[:quota], check)
    took = f"{(time.perf_counter() - started) * 1000:.0f} ms"
    return finding(kind, checked, len(refs) - quota, took)


async def _check_each(runner: ToolRunner, kind: Kind, refs: list[tuple[str, tuple[str, ...]]],
                      check: Check) -> list[Checked]:
    limit = asyncio.Semaphore(CONCURRENCY)
    outage: list[str] = []  # why the source did not answer, once it has not

    async def one(ref: str, services: tuple[str, ...]) -> Checked:
        async with limit:
            # Looked at once a slot is free: checks queued behind a failed one are not tried.
            if outage:
                return Checked(ref, services, "untried", outage[0])
            outcome = await runner.lookup(kind.tool, kind.source, lambda: check(ref), args={kind.arg: ref},
                                          count=lambda answer: int(answer.state == "found"))
            if outcome.value is None:
                reason = outcome.gap.reason if outcome.gap else "no answer"
                outage.append(reason)
                return Checked(ref, services, "unchecked", reason)
            return Checked(ref, services, outcome.value.state, outcome.value.detail)

    return list(await asyncio.gather(*(one(ref, services) for ref, services in refs)))


def finding(kind: Kind, checked: list[Checked], past_cap: int = 0, took: str = "") -> Finding:
    """What the checks of one kind say: FAILED for any reference missing or not checked,
    a warning for Confluence's no-pages or references past the cap, else ok."""
    of = {state: [c for c in checked if c.state == state] for state in ("missing", "unchecked", "untried", "empty")}
    parts = [f"{kind.tool}: {len(checked)} {kind.noun}(s) checked" + (f" in {took}" if took else "")]
    if of["missing"]:
        parts.append(f"missing or unreadable: {_named(of['missing'])}")
    if of["unchecked"]:
        parts.append(f"could not check: {_named(of['unchecked'])}")
    if of["untried"]:
        parts.append(f"{len(of['untried'])} more not tried once {kind.source.value} had not answered")
    if of["empty"]:
        parts.append(f"no pages found in {_named(of['empty'], with_detail=False)} {NO_PAGES}")
    if past_cap:
        parts.append(f"{past_cap} more not checked (at most {MAX_REFERENCES} references a run)")
    failed = of["missing"] or of["unchecked"] or of["untried"]
    status = "FAILED" if failed else "warning" if of["empty"] or past_cap else "ok"
    if status == "ok":
        parts.append(kind.passed)
    return Finding(kind.row, status, "; ".join(parts))


def _named(items: list[Checked], *, with_detail: bool = True) -> str:
    """At most `MAX_NAMED` references with their services, grouped by what the source said."""
    groups: dict[str, list[str]] = {}
    for item in items[:MAX_NAMED]:
        groups.setdefault(item.detail if with_detail else "", []).append(f"{item.ref} ({_few(item.services)})")
    text = "; ".join(", ".join(labels) + (f": {detail}" if detail else "") for detail, labels in groups.items())
    return text + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def _few(services: tuple[str, ...]) -> str:
    shown = ", ".join(services[:MAX_SERVICES])
    return shown + (f" and {len(services) - MAX_SERVICES} more" if len(services) > MAX_SERVICES else "")
