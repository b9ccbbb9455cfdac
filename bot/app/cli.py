"""`incident-brief`: the command line. Evals, benchmarks and reviewers rely on its contract."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.core.errors import ConfigError
from bot.core.models import BriefResult
from bot.core.redaction import install_logging_redaction
from sandbox.scenario import ScenarioError, bundled_scenarios_dir, load_scenario

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Cited incident briefs in Slack, from read-only evidence.")
policy_app = typer.Typer(no_args_is_help=True, help="Inspect an agent policy file.")
app.add_typer(policy_app, name="policy")
canary_app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                         help="Canary model upgrades: the compare, and switching a candidate back on.")
app.add_typer(canary_app, name="canary")
console = Console()
err = Console(stderr=True)

DEMO_SCENARIO = "checkout-5xx-after-deploy.yaml"
DrafterOpt = Annotated[str, typer.Option("--drafter", help="offline (no model) or llm (through the gateway)")]


def brief_json(result: BriefResult) -> str:
    """The documented JSON of `draft --json`: {"brief": ..., "evidence": [...], "gaps": [...]}."""
    return json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def draft(
    scenario: Annotated[Path, typer.Option("--scenario", help="a scenario file (format v1)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write {brief, evidence, gaps} here")] = None,
    blocks_out: Annotated[Path | None, typer.Option(
        "--blocks", help="write the exact Block Kit payload the bot would post here")] = None,
    drafter: DrafterOpt = "offline",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="do not print the brief")] = False,
    audit: Annotated[bool, typer.Option("--audit", help="print the audit trail: tool and model calls")] = False,
) -> None:
    """Draft one brief for a scenario, against the sandbox."""
    from bot.app.terminal import render_brief
    from bot.slack.payload import payload_json
    from sandbox.harness import run_scenario, scenario_payload

    if drafter not in ("offline", "llm"):
        _fail(f"unknown drafter {drafter!r}: expected 'offline' or 'llm'")
        return
    try:
        loaded = load_scenario(scenario)
        run = asyncio.run(run_scenario(loaded, drafter="llm" if drafter == "llm" else "offline"))
    except (ScenarioError, ConfigError) as exc:
        _fail(str(exc))
        return
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(brief_json(run.result) + "\n")
    if blocks_out is not None:
        blocks_out.parent.mkdir(parents=True, exist_ok=True)
        blocks_out.write_text(payload_json(scenario_payload(run.result, loaded)) + "\n")
    if not quiet:
        render_brief(run.result, console, title=f"Brief · {loaded.title}")
        if json_out is not None:
            console.print(f"[dim]JSON written to {json_out}[/dim]")
    if audit:
        from bot.app.terminal import render_audit

        render_audit(run.audit, console)


@app.command("eval")
def run_eval(
    scenarios: Annotated[Path | None, typer.Option("--scenarios", help="folder of scenario files")] = None,
    drafter: DrafterOpt = "offline",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    canary: Annotated[bool, typer.Option("--canary", help="with --drafter llm: baseline vs canary candidates "
                                         "(the sandbox model is simulated)")] = False,
    candidate: Annotated[list[str] | None, typer.Option(
        "--candidate", help="ROUTE=provider:model@version for --canary (else llm.canary.routes)")] = None,
) -> None:
    """Run the eval suite; exit non-zero when a threshold in evals/thresholds.toml is missed."""
    from evals.runner import main as eval_main

    argv = ["--scenarios", str(scenarios or bundled_scenarios_dir()), "--drafter", drafter]
    if json_out is not None:
        argv += ["--json", str(json_out)]
    if canary or candidate:
        from evals.canary import main as canary_main

        for item in candidate or []:
            argv += ["--candidate", item]
        raise typer.Exit(canary_main(argv))
    raise typer.Exit(eval_main(argv))


@policy_app.command("check")
def policy_check(file: Annotated[Path, typer.Argument(help="agent_policy YAML")]) -> None:
    """Validate a policy file and print what each known tool would get."""
    from bot.core.policy import load_policy

    try:
        policy = load_policy(file)
    except ConfigError as exc:
        _fail(str(exc))
        return
    console.print(policy.describe(), markup=False, highlight=False)


@app.command()
def demo(
    scenario: Annotated[Path | None, typer.Option("--scenario", help="defaults to the bundled deploy regression")]
    = None,
) -> None:
    """Run one incident end to end in the sandbox: webhook in, brief posted, ticket approved and filed."""
    from bot.app.demo import run_demo

    path = scenario or bundled_scenarios_dir() / DEMO_SCENARIO
    try:
        code = asyncio.run(run_demo(load_scenario(path), console))
    except (ScenarioError, ConfigError) as exc:
        _fail(str(exc))
        return
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    sandbox: Annotated[Path | None, typer.Option(
        "--sandbox", help="run against a local sandbox rendered from this scenario (no credentials)")] = None,
) -> None:
    """Start the web process: Slack events and interactivity, the PagerDuty webhook, health, metrics."""
    from bot.app.serve import serve_settings
    from bot.core.config import Settings

    try:
        if sandbox is None:
            asyncio.run(serve_settings(Settings(), host, port))
            return
        from bot.intake.catalog import Catalog
        from sandbox.server import Sandbox

        loaded = load_scenario(sandbox)
        with Sandbox(loaded) as sb:
            console.print(f"sandbox up: {sb.urls}")
            asyncio.run(serve_settings(sb.settings(), host, port, catalog=Catalog(loaded.service_entries())))
    except (ScenarioError, ConfigError) as exc:
        _fail(str(exc))


@app.command()
def doctor(
    sandbox: Annotated[str | None, typer.Option(
        "--sandbox", metavar="SCENARIO",
        help="check against a local sandbox of this scenario (a file, or a bundled scenario's name)")] = None,
    use_sandbox: Annotated[bool, typer.Option(
        "--demo-sandbox", help="check against the sandbox of the bundled demo scenario")] = False,
) -> None:
    """Per connector: a read works and a write is refused at the wire. Non-zero exit otherwise."""
    from bot.app.doctor import doctor_table, run_doctor
    from bot.core.config import Settings
    from bot.core.policy import default_policy
    from bot.intake.catalog import Catalog

    try:
        if sandbox is None and not use_sandbox:
            rows = asyncio.run(run_doctor(Settings()))
        else:
            from sandbox.server import Sandbox

            loaded = load_scenario(_scenario_path(sandbox) if sandbox else bundled_scenarios_dir() / DEMO_SCENARIO)
            with Sandbox(loaded) as sb:
                rows = asyncio.run(run_doctor(sb.settings(), default_policy(),
                                              Catalog(loaded.service_entries()), now=loaded.now))
    except (ScenarioError, ConfigError) as exc:
        _fail(str(exc))
        return
    console.print(doctor_table(rows))
    failed = [row.connector for row in rows if row.failed]
    if failed:
        err.print(f"[red]doctor: problems with {', '.join(failed)}[/red]")
        raise typer.Exit(1)


def _scenario_path(name: str) -> Path:
    """A scenario file as given, else the bundled scenario of that name (with or without .yaml)."""
    given = Path(name)
    if given.exists():
        return given
    bundled = bundled_scenarios_dir() / (name if name.endswith(".yaml") else f"{name}.yaml")
    return bundled if bundled.exists() else given


@app.command()
def audit(
    incident: Annotated[str, typer.Argument(help="the incident key, e.g. pd:Q1CHK5XX (as the card and logs show it)")],
) -> None:
    """Everything the bot did for one incident: brief versions, every tool and model call with its
    decision, latency, tokens and cost, the citation checks, the approval trail and the ticket."""
    from bot.app.reports import open_reports, render_incident_audit
    from bot.core.config import Settings

    async def run() -> list[str] | None:
        async with open_reports(Settings()) as reports:
            found = await reports.incident_audit(incident)
            if found is None:
                return [match.key for match in await reports.find_incidents(incident)]
        render_incident_audit(found, console)
        return None

    try:
        similar = asyncio.run(run())
        if similar is not None:
            hint = (f"; did you mean {', '.join(similar)}?" if similar else
                    " (keys look like pd:<incident id> or slack:<channel>:<thread>:<service>)")
            _fail(f"no incident {incident!r} in the store{hint}", code=1)
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def spend(
    workspace: Annotated[str | None, typer.Option("--workspace", help="one workspace (its month)")] = None,
    user: Annotated[str | None, typer.Option("--user", help="one user (their day)")] = None,
    day: Annotated[str | None, typer.Option("--day", help="another UTC day than today, YYYY-MM-DD")] = None,
) -> None:
    """Model spend today (per user) and this month (per workspace), against the policy's limits."""
    try:
        on = date.fromisoformat(day) if day else datetime.now(UTC).date()
    except ValueError:
        _fail(f"--day {day!r}: expected YYYY-MM-DD")
        return
    from bot.app.reports import open_reports, render_spend
    from bot.core.config import Settings
    from bot.core.policy import load_policy, read_only_policy

    async def run() -> None:
        settings = Settings()
        limits = (load_policy(settings.policy_file) if settings.policy_file else read_only_policy()).spend_limits
        async with open_reports(settings) as reports:
            lines = await reports.spend_report(day=on, workspace=workspace, user=user,
                                               per_user_limit=limits.per_user_usd_per_day,
                                               per_workspace_limit=limits.per_workspace_usd_per_month)
        render_spend(lines, console)

    try:
        asyncio.run(run())
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def report(
    since: Annotated[str, typer.Option("--since", help="how far back: 7d, 24h, 90m, 2w")] = "7d",
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the numbers here")] = None,
) -> None:
    """The measures of trust over a period: briefs, cause mix, citation coverage, schema pass
    rate, tool failures per source, fallbacks, latency, cost per brief, feedback, human override."""
    from bot.app.reports import open_reports, parse_since, render_report
    from bot.core.config import Settings

    try:
        window = parse_since(since)
    except ValueError as exc:
        _fail(str(exc))
        return

    async def run() -> None:
        until = datetime.now(UTC)
        async with open_reports(Settings()) as reports:
            found = await reports.trust_report(since=until - window, until=until)
        render_report(found, console)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(dataclasses.asdict(found), indent=2, default=str) + "\n")

    try:
        asyncio.run(run())
    except ConfigError as exc:
        _fail(str(exc))


@canary_app.callback()
def canary_status(ctx: typer.Context) -> None:
    """Each configured canary against its baseline over the window, and whether it is live."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.app.reports import open_reports, render_canary
    from bot.core.config import Settings
    from bot.store.canary import CanaryStore

    async def run() -> None:
        settings = Settings()
        canary = settings.llm.canary
        if not canary.routes:
            console.print("no canary configured (IB_LLM__CANARY__ROUTES, see docs/observability.md)")
            return
        async with open_reports(settings) as reports:
            states = CanaryStore(reports.sessions)
            since = datetime.now(UTC) - timedelta(hours=canary.window_hours)
            for route, candidate in canary.routes.items():
                stats = await states.arm_stats(route, since=since, models={
                    "canary": candidate.model, "baseline": settings.llm.routes[route]})
                state = "switched off" if await states.switched_off(route, candidate.model) else \
                    f"live, {candidate.share:.0%} of incidents"
                render_canary(route, candidate.model, state, stats["baseline"], stats["canary"], console)
            for event in await states.events():
                console.print(f"{event.at:%Y-%m-%d %H:%M} {event.kind} {event.subject} by {event.actor}: "
                              f"{event.detail}", markup=False, highlight=False)

    try:
        asyncio.run(run())
    except ConfigError as exc:
        _fail(str(exc))


@canary_app.command("on")
def canary_on(route: Annotated[str, typer.Argument(help="the route whose switched-off candidate comes back")],
              by: Annotated[str, typer.Option("--by", help="who decided (for the audit row)")] = "operator") -> None:
    """Switch a canary that was switched off back on (after fixing what made it worse)."""
    from bot.app.reports import open_reports
    from bot.core.config import Settings
    from bot.store.canary import CanaryStore

    settings = Settings()
    candidate = settings.llm.canary.routes.get(route)
    if candidate is None:
        _fail(f"no canary configured for route {route!r}")
        return

    async def run() -> bool:
        async with open_reports(settings) as reports:
            return await CanaryStore(reports.sessions).switch_on(route, candidate.model, actor=by)

    on = asyncio.run(run())
    console.print(f"{route}: {candidate.model} " + ("switched back on" if on else "was not switched off"))


@app.command()
def clock() -> None:
    """Start the clock process: retention purge, approval recovery and expiry, scheduled refresh."""
    from bot.app.serve import clock_settings
    from bot.core.config import Settings

    try:
        asyncio.run(clock_settings(Settings()))
    except ConfigError as exc:
        _fail(str(exc))


def main() -> None:
    # Every process the CLI starts (serve, clock, demo, draft…) logs through the redactor:
    # a secret in an exception message or a library's log line is masked before any handler.
    level = os.environ.get("IB_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_logging_redaction()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
