"""The bounds of `doctor`'s catalog rows, with the connectors' checks replaced by counting
coroutines (the same rows over HTTP against the sandbox are in test_doctor.py): at most
`CONCURRENCY` checks in flight per source, at most `MAX_REFERENCES` in all, shared out among the
kinds, and what is left unchecked or unnamed is counted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from bot.app import doctor_catalog
from bot.app.doctor_catalog import KINDS, MAX_REFERENCES, Checked, Checks, catalog_rows, finding, shares
from bot.core.audit import MemoryAudit
from bot.core.models import DatadogRef, ReferenceCheck, ServiceEntry
from bot.core.policy import default_policy
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog

DASHBOARDS = KINDS[0]


@dataclass
class Answering:
    """A source's reference check: answers `found` after a short wait, noting how many it was
    asked and how many it was asked at once."""

    missing: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_at_once: int = 0

    async def __call__(self, ref: str) -> ReferenceCheck:
        self.asked.append(ref)
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return ReferenceCheck(state="missing" if ref in self.missing else "found", detail="HTTP 404: not found"
                              if ref in self.missing else "")


def only_dashboards(dd: Answering) -> Checks:
    return Checks(dd, Answering(), Answering(), Answering())


def runner() -> ToolRunner:
    return ToolRunner(policy=default_policy(), audit=MemoryAudit(), brief_key="doctor", actor="doctor",
                      max_calls=MAX_REFERENCES)


def services(count: int, *, repos: int = 0) -> list[ServiceEntry]:
    """`count` services, each with a dashboard of its own; the first `repos` with a repository too."""
    return [ServiceEntry(name=f"svc-{n:03}", datadog=DatadogRef(service=f"svc-{n:03}", dashboards=[f"d-{n:03}"]),
                         github_repo=f"acme/r-{n:03}" if n < repos else None) for n in range(count)]


async def test_at_most_four_references_of_a_source_are_checked_at_once() -> None:
    dd = Answering()
    [row, *_] = await catalog_rows(runner(), default_policy(), Catalog(services(12)),
                                   only_dashboards(dd))
    assert (row.status, len(dd.asked), dd.most_at_once) == ("ok", 12, doctor_catalog.CONCURRENCY)


async def test_past_the_cap_the_rest_are_counted_and_every_kind_gets_its_share() -> None:
    dd, gh = Answering(), Answering()
    rows = await catalog_rows(runner(), default_policy(), Catalog(services(250, repos=30)),
                              Checks(dd, gh, Answering(), Answering()))
    dashboards, repos = rows[0], rows[1]
    assert (len(dd.asked), len(gh.asked)) == (MAX_REFERENCES - 30, 30)
    assert dashboards.status == "warning"
    assert dashboards.detail.endswith("; 80 more not checked (at most 200 references a run)")
    assert repos.status == "ok"


@pytest.mark.parametrize(("sizes", "given"), [
    ([250, 30, 0, 2], [168, 30, 0, 2]),
    ([10, 10, 10, 10], [10, 10, 10, 10]),
    ([300, 300, 300, 300], [50, 50, 50, 50]),
    ([0, 0, 0, 0], [0, 0, 0, 0]),
])
def test_the_cap_is_dealt_out_one_reference_at_a_time(sizes: list[int], given: list[int]) -> None:
    assert shares(sizes, MAX_REFERENCES) == given


def test_at_most_five_references_are_named_grouped_by_what_the_source_said() -> None:
    checked = [Checked(f"d-{n}", ("a", "b", "c", "d") if n == 0 else ("a",), "missing", "HTTP 404: not found")
               for n in range(7)] + [Checked("d-ok", ("a",), "found", "title")]
    assert finding(DASHBOARDS, checked).detail == (
        "datadog.get_dashboard: 8 dashboard(s) checked; missing or unreadable: d-0 (a, b, c and 1 more), d-1 (a), "
        "d-2 (a), d-3 (a), d-4 (a): HTTP 404: not found and 2 more")


async def test_a_missing_reference_fails_its_row_and_names_each_service_using_it() -> None:
    dd = Answering(missing={"d-001"})
    catalog = Catalog([*services(3),
                       ServiceEntry(name="zeta", datadog=DatadogRef(service="zeta", dashboards=["d-001"]))])
    [row, *_] = await catalog_rows(runner(), default_policy(), catalog, only_dashboards(dd))
    assert row.status == "FAILED"
    assert row.detail.endswith("; missing or unreadable: d-001 (svc-001, zeta): HTTP 404: not found")
    assert sorted(dd.asked) == ["d-000", "d-001", "d-002"]
