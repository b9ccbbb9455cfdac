"""`incident-brief canary`: each canary model against its baseline, and switching one back on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from bot.app.cli.common import _fail, _settings, console
from bot.core.errors import ConfigError

canary_app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                         help="Canary model upgrades: the compare, and switching a candidate back on.")


@canary_app.callback()
def canary_status(ctx: typer.Context) -> None:
    """Each configured canary against its baseline over the window, and whether it is live."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.app.reports import open_reports, render_canary
    from bot.store.canary import CanaryStore

    async def run() -> None:
        settings = _settings()
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
    from bot.store.canary import CanaryStore

    try:
        settings = _settings()
    except ConfigError as exc:
        _fail(str(exc))
        return
    candidate = settings.llm.canary.routes.get(route)
    if candidate is None:
        _fail(f"no canary configured for route {route!r}")
        return

    async def run() -> bool:
        async with open_reports(settings) as reports:
            return await CanaryStore(reports.sessions).switch_on(route, candidate.model, actor=by)

    on = asyncio.run(run())
    console.print(f"{route}: {candidate.model} " + ("switched back on" if on else "was not switched off"))
