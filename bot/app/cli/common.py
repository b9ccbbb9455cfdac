"""What every `incident-brief` command shares: the consoles, the settings it reads, how it fails."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from bot.core.config import Settings
from bot.core.settings_env import load_settings

console = Console()
err = Console(stderr=True)
ENV_FILE = {"path": Path(".env")}  # set by the --env-file option before any command runs


def honour_columns() -> None:
    """The consoles are built at import; a COLUMNS set for this invocation (a wide pager, a
    test runner's captured output) still sets the width tables wrap at."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        console.width = err.width = int(columns)


def _settings() -> Settings:
    """The settings from the environment and the env file; a wrong one is a ConfigError line."""
    return load_settings(ENV_FILE["path"])


def _fail(message: str, code: int = 2) -> None:
    """One line per problem, never wrapped (a log collector or a person greps for the setting)."""
    for line in message.splitlines() or [""]:
        err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)
