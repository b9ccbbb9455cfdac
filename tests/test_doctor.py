"""`doctor` against the sandbox: every read works, every write is refused before it is sent."""

from __future__ import annotations

from bot.catalog import Catalog
from bot.doctor import run_doctor
from bot.policy import default_policy
from bot.scenario import Scenario
from sandbox.server import Sandbox


async def test_doctor_reads_everything_and_no_write_reaches_the_sandbox(checkout: Scenario) -> None:
    with Sandbox(checkout) as sb:
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
        writes = {system: sb.recorder.writes(system) for system in ("datadog", "github", "confluence",
                                                                    "pagerduty", "jira")}
    by_name = {row.connector: row for row in rows}
    assert set(by_name) == {"datadog", "github", "confluence", "pagerduty", "jira (read)", "jira (writer)",
                            "slack"}
    assert not [row for row in rows if row.failed]
    assert all(row.write == "refused" for name, row in by_name.items() if name != "slack")
    assert writes == {system: [] for system in writes}


async def test_doctor_reports_a_source_that_is_down(checkout: Scenario) -> None:
    systems = ["datadog", "confluence", "jira", "pagerduty", "slack"]  # GitHub is not running
    with Sandbox(checkout, systems=systems) as sb:
        rows = await run_doctor(sb.settings(), default_policy(), Catalog(checkout.service_entries()),
                                now=checkout.now)
    github = next(row for row in rows if row.connector == "github")
    assert github.failed
    assert github.read == "FAILED"
    assert github.write == "refused", "the guard refuses the write even when the host is down"
