"""What the settings add up to: the effective values (secrets masked) and, per feature, what is
still missing. `incident-brief config` prints it; `serve` and `clock` log the gaps at start-up,
so a half-configured bot says so instead of failing later (a webhook answering 503).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from bot.core.config import DEFAULT_PRICES, ConnectorSettings, Settings
from bot.core.errors import ConfigError
from bot.core.policy import Policy, load_policy, read_only_policy, warnings
from bot.core.redaction import redact
from bot.core.settings_env import PREFIX, SettingSpec, env_text, setting_specs, value_of
from bot.gateway.drafter import describe_drafting
from bot.gateway.pricing import price_for
from bot.gateway.refs import ModelRef
from bot.intake.catalog import Catalog, load_catalog, unpostable, unpostable_problem


@dataclass(frozen=True)
class Feature:
    name: str
    ready: bool
    detail: str
    missing: list[str] = field(default_factory=list)  # each: what to set, and what happens until then


def masked(spec: SettingSpec, value: object) -> str:
    """A value as `config` shows it: secrets as "set (…abcd)" or "not set", passwords in URLs masked."""
    if spec.kind == "secret" and isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return f"set (…{secret[-4:]})" if len(secret) >= 12 else ("set" if secret else "not set")
    if spec.secret and isinstance(value, list):
        return f"{len(value)} set" if value else "not set"
    if spec.default.startswith("(") and isinstance(value, dict) and value.keys() == DEFAULT_PRICES.keys():
        return spec.default  # the built-in table, unchanged
    return redact(env_text(value)) or "(none)"


def sources(env_file: Path) -> dict[str, str]:
    """Where each set ``IB_`` variable came from: the env file, or the environment (which wins)."""
    from_file = dotenv_values(env_file) if env_file.is_file() else {}
    found = {key.upper(): str(env_file) for key, value in from_file.items() if value}
    found.update({key.upper(): "environment" for key, value in os.environ.items()
                  if key.upper().startswith(PREFIX) and value})
    return found


def effective_rows(settings: Settings, sources: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(variable, value as shown, where it came from) for every setting."""
    return [(spec.env, masked(spec, value_of(settings, spec)), sources.get(spec.env, "default"))
            for spec in setting_specs()]


def _connector(name: str, settings: ConnectorSettings, needs: list[tuple[str, str | None]], what: str) -> Feature:
    """`needs`: (variable, None when fine, else what is wrong with it)."""
    missing = [f"{variable}: {problem}; every brief shows {name} ({what}) as a source gap"
               for variable, problem in needs if problem]
    return Feature(name, not missing, settings.base_url if not missing else "not configured", missing)


def _unset(value: object) -> str | None:
    return None if value else "not set"


def _placeholder(url: str) -> str | None:
    return "still the example host" if "example.atlassian.net" in url else None


def connector_features(settings: Settings) -> list[Feature]:
    dd, gh, cf, jr, pd = settings.datadog, settings.github, settings.confluence, settings.jira, settings.pagerduty
    return [
        _connector("Datadog", dd, [("IB_DATADOG__TOKEN", _unset(dd.token.get_secret_value())),
                                   ("IB_DATADOG__APP_KEY", _unset(dd.app_key.get_secret_value()))],
                   "monitors, metrics, logs, events"),
        _connector("GitHub", gh, [("IB_GITHUB__TOKEN", _unset(gh.token.get_secret_value()))], "deploys"),
        _connector("Confluence", cf, [("IB_CONFLUENCE__BASE_URL", _placeholder(cf.base_url)),
                                      ("IB_CONFLUENCE__TOKEN", _unset(cf.token.get_secret_value()))], "runbooks"),
        _connector("Jira", jr, [("IB_JIRA__BASE_URL", _placeholder(jr.base_url)),
                                ("IB_JIRA__TOKEN", _unset(jr.token.get_secret_value()))],
                   "open issues; approved tickets fail too"),
        _connector("PagerDuty API", pd, [("IB_PAGERDUTY__TOKEN", _unset(pd.token.get_secret_value()))],
                   "the incident, past incidents"),
    ]


def slack_feature(settings: Settings) -> Feature:
    slack = settings.slack
    missing = [] if slack.bot_token.get_secret_value() else ["IB_SLACK__BOT_TOKEN: serve refuses to start"]
    if slack.socket_mode and not slack.app_token.get_secret_value():
        missing.append("IB_SLACK__APP_TOKEN: Socket Mode needs the app-level token; serve refuses to start")
    if not slack.socket_mode and not slack.signing_secret.get_secret_value():
        missing.append("IB_SLACK__SIGNING_SECRET: requests from Slack cannot be verified; serve refuses to start")
    mode = "Socket Mode" if slack.socket_mode else "HTTP (/slack/events)"
    return Feature("Slack", not missing, f"{mode} via {slack.api_base_url}", missing)


def webhook_feature(settings: Settings, catalog: Catalog | None) -> Feature:
    missing = []
    if not settings.pagerduty.webhook_secrets:
        missing.append("IB_PAGERDUTY__WEBHOOK_SECRETS: /webhooks/pagerduty refuses every delivery (503)")
    channels = [name for name in catalog.names() if catalog.resolve(name).slack_channel] if catalog else []
    if not settings.slack.default_channel and not channels:
        missing.append("IB_SLACK__DEFAULT_CHANNEL (or a slack_channel in the catalog): PagerDuty briefs have "
                       "no channel to go to and are not posted")
    detail = f"{len(settings.pagerduty.webhook_secrets)} signing secret(s)" if not missing else "incomplete"
    return Feature("PagerDuty webhook", not missing, detail, missing)


def model_feature(settings: Settings) -> Feature:
    # Without a provider the detail says what to set (and start-up says it once, in bootstrap).
    llm = settings.llm
    broken: list[str] = []  # serve refuses to start with these
    notes: list[str] = []
    for ref in [*llm.routes.values(), *llm.fallbacks]:
        try:
            parsed = ModelRef.parse(ref)
        except ConfigError as exc:
            broken.append(f"IB_LLM__ROUTES / IB_LLM__FALLBACKS: {exc}")
            continue
        if price_for(parsed, llm.prices) is None:
            broken.append(f"IB_LLM__PRICES: no price for {ref}; serve refuses to start (spend limits need it)")
        endpoint = llm.provider_settings(parsed.provider)
        if llm.drafts_with_model() and ref in llm.fallbacks and endpoint is not None and not endpoint.configured:
            notes.append(f"IB_LLM__{parsed.provider.upper()}__API_KEY: fallback {ref} has no provider "
                         "configured and will fail at once")
    return Feature("Model", llm.drafts_with_model() and not broken, describe_drafting(llm), broken + notes)


def catalog_feature(settings: Settings) -> tuple[Feature, Catalog | None]:
    if settings.catalog_file is None:
        return Feature("Catalog", False, "none", [
            "IB_CATALOG_FILE: no service catalog: briefs only for services named in a request, with no "
            "dashboards, repos, runbooks or channels"]), None
    try:
        catalog = load_catalog(settings.catalog_file)
    except ConfigError as exc:
        return Feature("Catalog", False, str(settings.catalog_file), [f"IB_CATALOG_FILE: {exc}"]), None
    return catalog_row(settings, catalog), catalog


def catalog_row(settings: Settings, catalog: Catalog, where: str | None = None) -> Feature:
    """The catalog as `config` shows it, and as `serve` and `clock` log it at start-up."""
    unrouted = unpostable(catalog, settings.slack.default_channel)
    notes = [f"IB_CATALOG_FILE: {unpostable_problem(unrouted)}"] if unrouted else []
    return Feature("Catalog", bool(len(catalog)) and not notes,
                   f"{where or settings.catalog_file}: {len(catalog)} service(s)", notes)


def policy_feature(settings: Settings, catalog: Catalog | None) -> tuple[Feature, Policy | None]:
    try:
        policy = load_policy(settings.policy_file) if settings.policy_file else read_only_policy()
    except ConfigError as exc:
        return Feature("Policy", False, str(settings.policy_file), [f"IB_POLICY_FILE: {exc}"]), None
    where = str(settings.policy_file) if settings.policy_file else "none set: the bundled read-only policy"
    notes = [f"policy: {w}" for w in warnings(policy, catalog.jira_projects() if catalog else None)]
    if settings.policy_file is None:
        notes.append("IB_POLICY_FILE: no write tool is reachable (no Jira tickets) until a policy allows one")
    return Feature("Policy", True, f"{where} ({policy.default_mode})", notes), policy


def database_feature(settings: Settings) -> Feature:
    url = settings.database_url
    if url.startswith("postgresql"):
        return Feature("Database", True, redact(url))
    where = url.split(":///", 1)[1]
    if where in ("", ":memory:"):
        return Feature("Database", False, url, ["IB_DATABASE_URL: an in-memory database is lost at exit and "
                                                "not shared by web and clock"])
    note = ("IB_DATABASE_URL: SQLite serves one host (web and clock on the same machine, one web "
            "process); several web replicas, or web and clock on separate hosts, need PostgreSQL")
    relative = "" if where.startswith("/") else f", relative to the working directory ({where})"
    return Feature("Database", True, f"SQLite{relative}", [note])


def features(settings: Settings, catalog: Catalog | None = None) -> list[Feature]:
    """Every feature; `catalog`: the one in use, when it did not come from ``IB_CATALOG_FILE``."""
    if catalog is None:
        catalog_entry, catalog = catalog_feature(settings)
    else:
        catalog_entry = catalog_row(settings, catalog, where="the catalog in use")
    policy_row, _ = policy_feature(settings, catalog)
    return [slack_feature(settings), webhook_feature(settings, catalog), *connector_features(settings),
            model_feature(settings), catalog_entry, policy_row, database_feature(settings)]


def print_report(settings: Settings, sources: Mapping[str, str], console: Console) -> None:
    table = Table(title="Effective settings (secrets masked)")
    for column in ("setting", "value", "from"):
        table.add_column(column, overflow="fold")
    for name, value, source in effective_rows(settings, sources):
        table.add_row(name, value, source, style=None if source != "default" else "dim")
    console.print(table)
    console.print("\n[bold]Features[/bold] (what is configured, and what is missing or worth knowing)")
    for row in features(settings):
        mark = "[green]ready[/green]     " if row.ready else "[yellow]incomplete[/yellow]"
        console.print(f"{mark} [bold]{row.name}[/bold]: ", end="")
        console.print(row.detail, markup=False, highlight=False)
        for note in row.missing:
            console.print(f"           - {note}", markup=False, highlight=False)
