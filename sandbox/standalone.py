"""The sandbox on its own, for a bot running in another process: `incident-brief sandbox up`.

docs/install.md's first run, and the tests of the real `serve` process, use it: the sandbox
plays Slack, the vendors and the model provider, and `serve` reads an env file that points
every setting at it, exactly as it would read a production ``.env``. The scenario is moved to
the present first (`at_now`): the bot judges webhook ages and incident windows by its own clock.

`prepare` writes, into one folder: ``.env`` (the settings), ``catalog.yaml`` (the scenario's
services) and ``scenario.yaml`` (the moved scenario, which ``sandbox trigger`` fires).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import yaml
from rich.console import Console

from bot.core.policy import BUNDLED_POLICY
from bot.core.settings_env import settings_env
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.scenario import ModelBehaviour, ModelSpec, Scenario, load_scenario
from sandbox.server import DEFAULT_SECRETS, Sandbox
from sandbox.slack import SlackMessage

ENV_FILE = ".env"
CATALOG_FILE = "catalog.yaml"
SCENARIO_FILE = "scenario.yaml"


def at_now(scenario: Scenario, now: datetime | None = None) -> Scenario:
    """The same scenario with every time moved so that its "now" is `now` (default: the clock)."""
    target = (now or datetime.now(UTC)).replace(microsecond=0)
    delta = target - scenario.now

    def move(value: Any) -> Any:
        if isinstance(value, datetime):
            return value + delta
        if isinstance(value, dict):
            return {key: move(item) for key, item in value.items()}
        if isinstance(value, list):
            return [move(item) for item in value]
        return value

    moved = move(scenario.model_dump(mode="python", by_alias=True, exclude={"path"}))
    return Scenario.model_validate(moved)


def catalog_yaml(scenario: Scenario) -> str:
    """The scenario's services as a catalog file (`bot.intake.catalog`'s own format)."""
    services = [entry.model_dump(mode="json", exclude_none=True) for entry in scenario.catalog]
    return yaml.safe_dump({"services": services}, sort_keys=False)


def scenario_yaml(scenario: Scenario) -> str:
    raw = scenario.model_dump(mode="json", by_alias=True, exclude={"path"}, exclude_none=True)
    return yaml.safe_dump(raw, sort_keys=False)


def bot_env(sandbox: Sandbox, *, catalog_file: Path, database_url: str,
            policy_file: Path = BUNDLED_POLICY) -> dict[str, str]:
    """The ``IB_`` settings of a bot served against this sandbox: every URL, token and secret,
    the model endpoint, the catalog, the store and the bundled policy."""
    settings = sandbox.settings(database_url=database_url, catalog_file=catalog_file, policy_file=policy_file)
    return settings_env(settings)


def env_file_text(env: dict[str, str]) -> str:
    lines = ["# Written by `incident-brief sandbox up`: settings pointing at the local sandbox."]
    lines += [f"{key}={_quoted(value)}" for key, value in sorted(env.items())]
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    # python-dotenv reads single-quoted values verbatim (JSON lists and objects carry double quotes)
    return f"'{value}'" if any(c in value for c in " \"#{}[]") else value


def prepare(sandbox: Sandbox, folder: Path, *, database_url: str | None = None) -> Path:
    """Write the env file, the catalog and the scenario for this running sandbox; returns the env file."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog = folder / CATALOG_FILE
    catalog.write_text(catalog_yaml(sandbox.scenario))
    (folder / SCENARIO_FILE).write_text(scenario_yaml(sandbox.scenario))
    database = database_url or f"sqlite+aiosqlite:///{(folder / 'incident-brief.db').resolve()}"
    env = folder / ENV_FILE
    env.write_text(env_file_text(bot_env(sandbox, catalog_file=catalog.resolve(), database_url=database)))
    return env


async def fire(scenario: Scenario, bot_url: str, *, mention: bool = False,
               slack_secret: str = DEFAULT_SECRETS["slack_signing_secret"],
               pagerduty_secret: str = DEFAULT_SECRETS["pagerduty_webhook_secret"]) -> httpx.Response:
    """The scenario's trigger, sent as its real sender would: a signed PagerDuty webhook (sent
    now) for an incident, else (or with `mention`) a signed Slack mention of the bot, naming the
    service, by the scenario's requester in the service's channel."""
    if scenario.alert.via == "pagerduty" and scenario.alert.incident_id and not mention:
        delivery, headers = build_webhook(scenario, "incident.triggered", secret=pagerduty_secret,
                                          occurred_at=datetime.now(UTC))
        return await send_webhook(f"{bot_url.rstrip('/')}/webhooks/pagerduty", delivery, headers)
    channel = next((s.slack_channel for s in scenario.catalog if s.slack_channel), None) or "C0DEMO"
    text = scenario.alert.mention_text or f"<@UBRIEFBOT> brief {scenario.alert.service}"
    body = slack_sender.app_mention_body(channel=channel, user=scenario.alert.requested_by or "U0ONCALL1", text=text)
    return await slack_sender.post_to_bot(f"{bot_url.rstrip('/')}/slack/events", body,
                                          slack_sender.signed_headers(slack_secret, body))


def message_line(message: SlackMessage) -> str:
    """One line for a message the bot posted or updated: where, and what it says."""
    where = f"{message.channel} {message.ts}" + (f" (thread {message.thread_ts})" if message.thread_ts else "")
    contexts = [element.get("text", "") for block in message.blocks if block.get("type") == "context"
                for element in block.get("elements", []) if isinstance(element, dict)]
    drafted = next((text for text in contexts if "drafter" in text), "")
    edits = f", edited {len(message.updates)}x" if message.updates else ""
    text = " ".join(message.text.split())[:160]
    return f"{where}{edits}: {text}" + (f"\n    {drafted[:300]}" if drafted else "")


def tail_slack(sandbox: Sandbox, emit: Callable[[str], None], *, stop: Callable[[], bool],
               interval_s: float = 0.3) -> None:
    """Report each message the bot posts or edits in the fake Slack until `stop()` says so."""
    seen: dict[tuple[str, str], int] = {}
    slack = sandbox.system("slack")
    while not stop():
        for message in list(slack.messages):
            key, version = (message.channel, message.ts), len(message.updates)
            if seen.get(key) != version:
                seen[key] = version
                emit(message_line(message))
        time.sleep(interval_s)


def run_up(scenario_path: Path, folder: Path, model_behaviour: str | None, console: Console) -> None:
    """`incident-brief sandbox up`: the scenario's sandbox, moved to now, until Ctrl-C; its env
    file written to `folder`; each message the bot posts in the fake Slack printed. A bad
    scenario is a `ScenarioError`, an unknown model behaviour a `ValueError`."""
    behaviours = get_args(ModelBehaviour)
    if model_behaviour is not None and model_behaviour not in behaviours:
        raise ValueError(f"--model-behaviour {model_behaviour!r}: expected one of {', '.join(behaviours)}")
    scenario = at_now(load_scenario(scenario_path))
    if model_behaviour is not None:
        scenario = scenario.model_copy(update={"model": ModelSpec.model_validate({"behaviour": model_behaviour})})
    with Sandbox(scenario) as sb:
        env = prepare(sb, folder)
        console.print(f"sandbox up for [bold]{scenario.title}[/bold] (model: {scenario.model.behaviour}, simulated)")
        for name, url in sb.urls.items():
            console.print(f"  {name:<10} {url}")
        console.print(f"settings written to {env}; next, in other terminals:\n"
                      f"  incident-brief --env-file {env} serve\n"
                      f"  incident-brief sandbox trigger --dir {folder}   (fires {folder / SCENARIO_FILE})\n"
                      "Messages the bot posts in the fake Slack appear below. Ctrl-C stops the sandbox.",
                      soft_wrap=True, highlight=False)
        tail_slack(sb, lambda line: console.print(f"[cyan]slack[/cyan] {line}", highlight=False), stop=lambda: False)
