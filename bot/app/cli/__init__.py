"""`incident-brief`: the command line. Evals, benchmarks and reviewers rely on its contract."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, get_args

import typer

from bot.app.cli.canary import canary_app
from bot.app.cli.common import ENV_FILE, _fail, _settings, console, err, honour_columns
from bot.core.config import LogLevel, Settings
from bot.core.errors import ConfigError
from bot.core.models import BriefResult
from bot.telemetry.logs import configure_logging
from sandbox.scenario import ScenarioError, bundled_scenarios_dir, load_scenario

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Cited incident briefs in Slack, from read-only evidence.")
policy_app = typer.Typer(no_args_is_help=True, help="Inspect an agent policy file.")
app.add_typer(policy_app, name="policy")
app.add_typer(canary_app, name="canary")
sandbox_app = typer.Typer(no_args_is_help=True, help=(
    "The local sandbox on its own (fake Slack, vendors and model provider) for a bot run with "
    "`--env-file .sandbox/.env`."))
app.add_typer(sandbox_app, name="sandbox")


@app.callback()
def _options(env_file: Annotated[Path, typer.Option(
        "--env-file", help="settings file read when it exists; the environment wins over it")] = Path(".env"),
             ) -> None:
    ENV_FILE["path"] = env_file
    honour_columns()


def _log_to(settings: Settings, default_level: str) -> None:
    """Servers log at INFO unless told otherwise; one-shot commands at WARNING."""
    configure_logging(settings.log_level or default_level, settings.log_format)


DEMO_SCENARIO = "checkout-5xx-after-deploy.yaml"
DrafterOpt = Annotated[str, typer.Option("--drafter", help="offline (no model) or llm (through the gateway)")]


def brief_json(result: BriefResult) -> str:
    """The documented JSON of `draft --json`: {"brief": ..., "evidence": [...], "gaps": [...]}."""
    return json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False)


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
    scenarios: Annotated[Path | None, typer.Option("--scenarios", help="folder of the development set")] = None,
    heldout: Annotated[Path | None, typer.Option(
        "--heldout", help="folder of the held-out set (default: the heldout/ subfolder of --scenarios)")] = None,
    no_heldout: Annotated[bool, typer.Option("--no-heldout", help="run the development set only")] = False,
    drafter: DrafterOpt = "offline",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="scenarios run at once")] = None,
    compare: Annotated[tuple[Path, Path] | None, typer.Option("--compare", metavar="BASE NEW", help=(
        "BASE.json NEW.json: show what changed between two reports; exit 1 on a regression"))] = None,
    tolerance: Annotated[float, typer.Option(
        "--tolerance", help="with --compare: the largest drop of a score that is not a regression")] = 0.0,
    canary: Annotated[bool, typer.Option("--canary", help="with --drafter llm: baseline vs canary candidates "
                                         "(the sandbox model is simulated)")] = False,
    candidate: Annotated[list[str] | None, typer.Option(
        "--candidate", help="ROUTE=provider:model@version for --canary (else llm.canary.routes)")] = None,
) -> None:
    """Run the eval suite (development and held-out sets); exit non-zero when a threshold in
    evals/thresholds.toml is missed, or, with --compare, when NEW regressed from BASE."""
    from evals.cli import run_from_cli

    raise typer.Exit(run_from_cli(
        scenarios=scenarios or bundled_scenarios_dir(), heldout=heldout, no_heldout=no_heldout, drafter=drafter,
        json_out=json_out, concurrency=concurrency, compare=compare, tolerance=tolerance, canary=canary,
        candidates=candidate or []))


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="agent_policy YAML")],
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", envvar="IB_CATALOG_FILE",
        help="the service catalog: its Jira projects are where tickets may go unless jira.allowed_projects "
             "narrows them")] = None,
) -> None:
    """Validate a policy file, print what each known tool would get, and warn about choices
    that are legal but surprising."""
    from bot.core.policy import load_policy, warnings
    from bot.intake.catalog import load_catalog

    try:
        policy = load_policy(file)
        projects = load_catalog(catalog).jira_projects() if catalog else None
    except ConfigError as exc:
        _fail(str(exc))
        return
    typer.echo(policy.describe(projects))
    for warning in warnings(policy, projects):
        typer.echo(f"warning: {warning}")


@app.command()
def demo(
    scenario: Annotated[Path | None, typer.Option("--scenario", help="defaults to the bundled deploy regression")]
    = None,
    model: Annotated[bool, typer.Option("--model", help="draft with the sandbox's simulated model "
                                                        "(default: the offline drafter)")] = False,
) -> None:
    """Run one incident end to end in the sandbox: webhook in, brief posted, ticket approved and filed."""
    from bot.app.demo import run_demo

    path = scenario or bundled_scenarios_dir() / DEMO_SCENARIO
    try:
        code = asyncio.run(run_demo(load_scenario(path), console, model=model))
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

    try:
        if sandbox is None:
            settings = _settings()
            _log_to(settings, "INFO")
            asyncio.run(serve_settings(settings, host, port))
            return
        from sandbox.server import Sandbox
        from sandbox.standalone import CATALOG_FILE, at_now, catalog_yaml

        loaded = at_now(load_scenario(_scenario_path(str(sandbox))))
        with Sandbox(loaded) as sb, tempfile.TemporaryDirectory() as tmp:
            catalog = Path(tmp) / CATALOG_FILE
            catalog.write_text(catalog_yaml(loaded))
            settings = sb.settings(catalog_file=catalog)
            _log_to(settings, "INFO")
            console.print(f"sandbox up: {sb.urls}")
            asyncio.run(serve_settings(settings, host, port))
    except (ScenarioError, ConfigError) as exc:
        _fail(str(exc))


@app.command("config")
def config_command(
    reference: Annotated[bool, typer.Option("--reference", help="print the settings reference (Markdown)")] = False,
    env_example: Annotated[bool, typer.Option("--env-example", help="print .env.example")] = False,
) -> None:
    """The effective settings (secrets masked), and per feature what is still missing."""
    from bot.core.settings_env import env_example as example_text
    from bot.core.settings_env import reference_markdown

    if reference or env_example:
        sys.stdout.write(reference_markdown() if reference else example_text())
        return
    from bot.app.config_report import print_report, sources

    try:
        settings = _settings()
    except ConfigError as exc:
        _fail(str(exc))
        return
    print_report(settings, sources(ENV_FILE["path"]), console)


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
    from bot.core.policy import default_policy
    from bot.intake.catalog import Catalog

    try:
        if sandbox is None and not use_sandbox:
            rows = asyncio.run(run_doctor(_settings()))
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

    async def run() -> list[str] | None:
        async with open_reports(_settings()) as reports:
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
    from bot.core.policy import load_policy, read_only_policy

    async def run() -> None:
        settings = _settings()
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

    try:
        window = parse_since(since)
    except ValueError as exc:
        _fail(str(exc))
        return

    async def run() -> None:
        until = datetime.now(UTC)
        async with open_reports(_settings()) as reports:
            found = await reports.trust_report(since=until - window, until=until)
        render_report(found, console)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(dataclasses.asdict(found), indent=2, default=str) + "\n")

    try:
        asyncio.run(run())
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def clock() -> None:
    """Start the clock process: retention purge, approval recovery and expiry, scheduled refresh."""
    from bot.app.serve import clock_settings

    try:
        settings = _settings()
        _log_to(settings, "INFO")
        asyncio.run(clock_settings(settings))
    except ConfigError as exc:
        _fail(str(exc))


@sandbox_app.command("up")
def sandbox_up(
    scenario: Annotated[str, typer.Option(
        "--scenario", help="a scenario file, or a bundled scenario's name")] = DEMO_SCENARIO,
    folder: Annotated[Path, typer.Option("--dir", help="where to write .env, catalog.yaml and scenario.yaml")]
    = Path(".sandbox"),
    model: Annotated[str | None, typer.Option(
        "--model-behaviour", help="make the simulated model misbehave: http_500, slow, invalid_json, ...")] = None,
) -> None:
    """Run the sandbox until Ctrl-C, write the env file a bot needs to use it, and show each
    message the bot posts in the fake Slack."""
    from sandbox.standalone import run_up

    try:
        run_up(_scenario_path(scenario), folder, model, console)
    except (ScenarioError, ValueError) as exc:  # a bad scenario file, an unknown model behaviour
        _fail(str(exc))


@sandbox_app.command("trigger")
def sandbox_trigger(
    folder: Annotated[Path, typer.Option("--dir", help="the folder `sandbox up` wrote")] = Path(".sandbox"),
    bot_url: Annotated[str, typer.Option("--bot-url", help="where `serve` listens")] = "http://127.0.0.1:8000",
    mention: Annotated[bool, typer.Option(
        "--mention", help="a person asks in Slack instead (their day's budget pays, with their team's month)")] = False,
) -> None:
    """Fire the running sandbox's trigger at the bot: a signed PagerDuty webhook, or a Slack mention."""
    import httpx

    from sandbox.standalone import SCENARIO_FILE, fire

    try:
        loaded = load_scenario(folder / SCENARIO_FILE)
        response = asyncio.run(fire(loaded, bot_url, mention=mention))
    except ScenarioError as exc:
        _fail(f"{exc} (run `incident-brief sandbox up --dir {folder}` first)")
        return
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the bot at {bot_url}: {exc}", code=1)
        return
    console.print(f"the bot answered HTTP {response.status_code}: {response.text}", markup=False)
    if response.status_code >= 300:
        raise typer.Exit(1)


def _env_level() -> str:
    level = os.environ.get("IB_LOG_LEVEL", "").strip().upper()
    return level if level in get_args(LogLevel) else "WARNING"


def main() -> None:
    # Every process the CLI starts (serve, clock, demo, draft…) logs through the redactor: a
    # secret in an exception message or a library's log line is masked before any handler.
    # serve and clock configure again from their settings (level, text or JSON).
    configure_logging(_env_level(), "json" if os.environ.get("IB_LOG_FORMAT", "").lower() == "json" else "text")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
