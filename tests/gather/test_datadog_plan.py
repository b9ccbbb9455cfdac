"""What the plan reads from Datadog: each dashboard the catalog names is its own read (one
Datadog no longer has is a gap that names it, and the other dashboards' widgets and metrics
still reach the brief), and a dependency blamed by a log of any error or warning class gets its
metrics read."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import cast

import pytest

from bot.core.models import EvidenceKind, Source
from bot.gather.connectors import Connectors
from bot.gather.plan import plan_follow_ups
from connectors.datadog import DatadogConnector
from sandbox.harness import run_scenario
from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario, parse_scenario
from tests.helpers.evidence import WINDOW, log

BASE = bundled_scenarios_dir() / "billing-invoice-cron-db-slots.yaml"  # catalogs dashboard bil-db-001
GONE = "gone-404"
# The plan only names the call; these tests never make it.
UNCALLED_DATADOG = cast(DatadogConnector, SimpleNamespace(dependency_metrics=print))


def with_dashboards(base: Scenario, ids: list[str]) -> Scenario:
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw["catalog"][0]["datadog"]["dashboards"] = ids
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} with dashboards {ids}")


async def test_a_missing_dashboard_is_its_own_gap_and_the_others_still_read() -> None:
    base = load_scenario(BASE)
    assert [d.id for d in base.world.dashboards] == ["bil-db-001"]
    run = await run_scenario(with_dashboards(base, [GONE, "bil-db-001"]))

    [gap] = [g for g in run.result.gaps if g.tool == "datadog.get_dashboard"]
    assert (gap.source, gap.reason) == (Source.DATADOG, f"dashboard {GONE}: HTTP 404: not found")
    dashboards = [e for e in run.result.evidence if e.kind == EvidenceKind.DASHBOARD]
    assert [e.ref.get("dashboard_id") for e in dashboards] == ["bil-db-001"]
    reads = [r for r in run.audit.tool_calls if r.tool == "datadog.get_dashboard"]
    assert sorted((r.args["id"], r.outcome) for r in reads) == [("bil-db-001", "ok"), (GONE, "gap")]


async def test_a_dashboard_named_twice_is_read_once() -> None:
    run = await run_scenario(with_dashboards(load_scenario(BASE), ["bil-db-001", "bil-db-001"]))
    reads = [r for r in run.audit.tool_calls if r.tool == "datadog.get_dashboard"]
    assert [r.args["id"] for r in reads] == ["bil-db-001"]
    assert not [g for g in run.result.gaps if g.tool == "datadog.get_dashboard"]


@pytest.mark.parametrize("status", ["fatal", "emerg", "emergency", "alert", "critical", "error", "warn"])
def test_an_error_class_log_blaming_a_dependency_gets_its_metrics_read(status: str) -> None:
    # The follow-up read used its own status list (error, critical, warn): a `fatal` or
    # `emergency` log blaming Redis fetched no Redis metrics.
    blaming = log("redis.exceptions.ConnectionError: Error connecting to checkout-redis:6379", 40, -2, status=status)
    connectors = Connectors(datadog=UNCALLED_DATADOG)
    [(tool, source, _call, args)] = plan_follow_ups([blaming], WINDOW, connectors)
    assert (tool, source, args) == ("datadog.query_metrics", Source.DATADOG, {"dependency": "Redis"})


def test_an_info_log_naming_a_dependency_reads_nothing_more() -> None:
    chatter = log("redis.exceptions.ConnectionError: Error connecting to checkout-redis:6379", 40, -2, status="info")
    assert plan_follow_ups([chatter], WINDOW, Connectors(datadog=UNCALLED_DATADOG)) == []
