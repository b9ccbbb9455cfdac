"""Every connector × every fault the sandbox injects, written once.

Each read connector makes its first read of the checkout incident against a sandbox whose
system answers with one fault. Whatever the client library underneath (httpx, requests, the
Datadog client), the failure must leave as a `SourceUnavailable` naming the source and the
tool, with the same readable reason, after exactly the attempts the one retry policy allows,
as the sandbox counted them; a 429 must be retried only after its ``Retry-After``. A slow
source inside its timeout is read, once. (`tests/app/test_fault_drills.py` runs the same matrix
end to end: each fault a posted brief that names the gap.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.core.errors import SourceUnavailable
from bot.gather.plan import incident_window
from connectors.confluence import ConfluenceConnector
from connectors.datadog import DatadogConnector
from connectors.github import GitHubConnector
from connectors.jira import JiraReader
from connectors.pagerduty import PagerDutyConnector
from sandbox.core import RETRY_AFTER_SECONDS
from sandbox.scenario import Scenario, parse_scenario
from sandbox.server import Sandbox
from tests.helpers.faults import FAULTS, quick, with_faults

ATTEMPTS = 2  # `quick` settings: one retry


async def _datadog(settings: Any, _scenario: Scenario) -> object:
    async with DatadogConnector(settings) as dd:
        return await dd.get_monitor(4101)


async def _github(settings: Any, scenario: Scenario) -> object:
    connector = GitHubConnector(settings)
    try:
        return await connector.recent_deploys("acme/checkout-api",
                                              incident_window(scenario.alert.to_alert(), scenario.now))
    finally:
        await connector.aclose()


async def _pagerduty(settings: Any, _scenario: Scenario) -> object:
    connector = PagerDutyConnector(settings)
    try:
        return await connector.incident("Q1CHK5XX")
    finally:
        await connector.aclose()


async def _pagerduty_services(settings: Any, _scenario: Scenario) -> object:
    connector = PagerDutyConnector(settings)
    try:
        return await connector.list_services()
    finally:
        await connector.aclose()


async def _confluence(settings: Any, _scenario: Scenario) -> object:
    connector = ConfluenceConnector(settings)
    try:  # no labels: one search, so the attempts counted are that search's
        return await connector.find_runbooks("OPS", [], "checkout-api 5xx rate above 5%")
    finally:
        await connector.aclose()


async def _jira(settings: Any, _scenario: Scenario) -> object:
    reader = JiraReader(settings)
    try:
        return await reader.open_issues("CHK", "checkout-api")
    finally:
        await reader.aclose()


@dataclass(frozen=True)
class Reader:
    """One read of a connector: the sandbox system and tool it meets, and how it says bad JSON."""

    system: str
    tool: str
    malformed: str
    read: Callable[[Any, Scenario], Awaitable[object]]


READERS = {
    "datadog": Reader("datadog", "datadog.get_monitor", "malformed JSON in response", _datadog),
    "github": Reader("github", "github.list_deployments", "malformed JSON in response", _github),
    "pagerduty": Reader("pagerduty", "pagerduty.get_incident", "malformed JSON in response", _pagerduty),
    "pagerduty services": Reader("pagerduty", "pagerduty.list_services", "malformed JSON in response",
                                 _pagerduty_services),
    "confluence": Reader("confluence", "confluence.search", "malformed JSON in search response", _confluence),
    "jira reader": Reader("jira", "jira.search", "malformed JSON in search response", _jira),
}


def expected(reader: Reader, fault: str) -> tuple[str, int]:
    """The reason the gap must give, and how many requests the sandbox must have received."""
    return {
        "http_429": (f"HTTP 429 after {ATTEMPTS} attempts", ATTEMPTS),
        "http_500": (f"HTTP 500 after {ATTEMPTS} attempts", ATTEMPTS),
        "timeout": (f"timed out after {ATTEMPTS} attempts", ATTEMPTS),
        "malformed": (reader.malformed, 1),  # a 200 with bad JSON: another try would read the same
        "refused": (f"connection refused after {ATTEMPTS} attempts", 0),  # nothing listens: nothing arrives
    }[fault]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", list(READERS))
async def test_a_fault_is_a_readable_gap_after_the_attempts_the_policy_allows(
        name: str, fault: str, checkout: Scenario) -> None:
    reader = READERS[name]
    reason, attempts = expected(reader, fault)
    with Sandbox(with_faults(checkout, {reader.system: fault}), systems=[reader.system]) as sb:
        # A short timeout only where it is the fault: elsewhere a slow machine must not cause one.
        settings = quick(sb, reader.system, timeout_s=0.5 if fault == "timeout" else 5.0)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as gap:
            await reader.read(settings, checkout)
        elapsed = time.monotonic() - started
        recorded = sb.recorder.requests(reader.system)
    assert (gap.value.source, gap.value.tool, gap.value.reason) == (reader.system, reader.tool, reason)
    assert [(r.tool, r.fault) for r in recorded] == [(reader.tool, fault)] * attempts
    if fault == "http_429":
        waited = recorded[1].at - recorded[0].at
        assert waited >= RETRY_AFTER_SECONDS - 0.05, "the retry came before the server's Retry-After"
    if fault == "timeout":  # each attempt gives up at timeout_s, not when the server would answer
        assert elapsed < 3.0


def _with_latency(base: Scenario, system: str, ms: int) -> Scenario:
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw.pop("path", None)
    raw["world"]["faults"] = {"latency_ms": {system: ms}}
    return parse_scenario(raw, f"{base.id} with a slow {system}")


SLOW_MS = 600


@pytest.mark.parametrize("name", list(READERS))
async def test_a_slow_source_within_its_timeout_is_read_once_not_retried(name: str, checkout: Scenario) -> None:
    # The sixth fault of the drill matrix: slower than usual, inside the timeout. No gap, one
    # request each (a slow answer is not a failure to retry), and the wait really happened.
    reader = READERS[name]
    with Sandbox(_with_latency(checkout, reader.system, SLOW_MS), systems=[reader.system]) as sb:
        settings = quick(sb, reader.system, timeout_s=5.0)
        started = time.monotonic()
        result = await reader.read(settings, checkout)
        elapsed = time.monotonic() - started
        recorded = sb.recorder.requests(reader.system)
    assert result is not None
    assert elapsed >= SLOW_MS / 1000 - 0.05
    assert all(r.fault is None and r.status == 200 for r in recorded)
    assert len({(r.method, r.path, json.dumps(r.query, sort_keys=True)) for r in recorded}) == len(recorded)
