"""Settings: where each outside system lives and how to authenticate.

Production points these at the real hosts; the sandbox and tests point them at 127.0.0.1.
Environment variables use the prefix ``IB_`` and ``__`` for nesting
(``IB_DATADOG__BASE_URL``); `bot.core.settings_env.load_settings` also reads a ``.env`` file
and refuses unknown keys. Every field carries its description: the settings reference
(``docs/settings.md``) and ``.env.example`` are generated from them. Secrets are never logged
(pydantic ``SecretStr``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConnectorSettings(BaseModel):
    base_url: str = Field(description="API base URL")
    web_url: str | None = Field(default=None, description="where deep links a person clicks point (default: base_url)")
    token: SecretStr = Field(default=SecretStr(""), description="API token")
    timeout_s: float = Field(default=8.0, gt=0, description="seconds for one HTTP call")
    max_retries: int = Field(default=2, ge=0, le=10, description="retries on 429 and 5xx, honouring Retry-After")
    max_pages: int = Field(default=5, ge=1, le=100, description="pages read at most per paginated call")

    @property
    def link_base(self) -> str:
        return (self.web_url or self.base_url).rstrip("/")

    @property
    def configured(self) -> bool:
        return bool(self.token.get_secret_value())


class DatadogSettings(ConnectorSettings):
    base_url: str = Field(default="https://api.datadoghq.com",
                          description="your site's API host (api.datadoghq.eu, api.us5.datadoghq.com, ...)")
    web_url: str | None = Field(default="https://app.datadoghq.com", description="your site's web app, for links")
    token: SecretStr = Field(default=SecretStr(""), description="API key (DD-API-KEY)")
    app_key: SecretStr = Field(default=SecretStr(""), description=(
        "application key (DD-APPLICATION-KEY), scoped to monitors_read, dashboards_read, timeseries_query, "
        "metrics_read, logs_read_data, events_read"))

    @property
    def configured(self) -> bool:
        return bool(self.token.get_secret_value() and self.app_key.get_secret_value())


class GitHubSettings(ConnectorSettings):
    base_url: str = Field(default="https://api.github.com",
                          description="API base (GitHub Enterprise: https://HOST/api/v3)")
    web_url: str | None = Field(default="https://github.com", description="web host, for links")
    token: SecretStr = Field(default=SecretStr(""), description=(
        "fine-grained token on the catalog's repos, read-only: Metadata, Contents, Deployments, Pull requests"))


class ConfluenceSettings(ConnectorSettings):
    base_url: str = Field(default="https://example.atlassian.net/wiki",
                          description="your Confluence, with /wiki for Atlassian Cloud")
    username: str = Field(default="", description=(
        "the Atlassian account the API token belongs to (Cloud); empty for a Server/Data Center personal access token"))
    token: SecretStr = Field(default=SecretStr(""), description=(
        "API token of an account that can only read the runbook spaces"))

    @property
    def configured(self) -> bool:
        # A username makes it Cloud's basic auth (e-mail and API token); without one the token is a
        # Server/Data Center personal access token, sent as a bearer token (the connector does both).
        return bool(self.token.get_secret_value()) and "example.atlassian.net" not in self.base_url


class JiraSettings(ConnectorSettings):
    base_url: str = Field(default="https://example.atlassian.net", description="your Jira site")
    username: str = Field(default="", description=(
        "the Atlassian account the API token belongs to (Cloud); empty for a Server/Data Center personal access token"))
    token: SecretStr = Field(default=SecretStr(""), description=(
        "API token of an account that may browse and create issues in the catalog's projects, nothing more"))

    @property
    def configured(self) -> bool:
        # A username makes it Cloud's basic auth (e-mail and API token); without one the token is a
        # Server/Data Center personal access token, sent as a bearer token (the connector does both).
        return bool(self.token.get_secret_value()) and "example.atlassian.net" not in self.base_url


class PagerDutySettings(ConnectorSettings):
    base_url: str = Field(default="https://api.pagerduty.com", description="REST API base (EU: https://api.eu.pagerduty.com)")
    web_url: str | None = Field(default="https://example.pagerduty.com", description="your subdomain, for links")
    token: SecretStr = Field(default=SecretStr(""), description="REST API key, read-only")
    webhook_secrets: list[SecretStr] = Field(default_factory=list, description=(
        'the v3 webhook subscription\'s signing secrets as a JSON list, e.g. ["secret"]; '
        "two during a rotation"))


class SlackSettings(BaseModel):
    api_base_url: str = Field(default="https://slack.com/api/", description="Web API base")
    bot_token: SecretStr = Field(default=SecretStr(""), description=(
        "bot token (xoxb-...) of the app created from bot/slack/manifest.yaml"))
    signing_secret: SecretStr = Field(default=SecretStr(""), description=(
        "signing secret (Basic Information page): verifies every request from Slack in HTTP mode"))
    socket_mode: bool = Field(default=False, description=(
        "receive events over Socket Mode (no public URL; app from manifest.socket-mode.yaml)"))
    app_token: SecretStr = Field(default=SecretStr(""), description=(
        "app-level token (xapp-...) with connections:write, for Socket Mode"))
    default_channel: str | None = Field(default=None, description=(
        "channel id for PagerDuty briefs of services the catalog gives no channel"))


class ModelProviderSettings(BaseModel):
    """One model provider's endpoint. ``base_url`` None means the provider's public host."""

    base_url: str | None = Field(default=None, description=(
        "endpoint (default: the provider's public API; an OpenAI-compatible server's /v1 URL)"))
    api_key: SecretStr = Field(default=SecretStr(""), description="API key")

    @property
    def configured(self) -> bool:
        return bool(self.api_key.get_secret_value() or self.base_url)


# The model tasks of the workflow, each routed to a model in `LlmSettings.routes`.
MODEL_TASKS = ("brief", "ticket")


class ModelPrice(BaseModel):
    """USD per million tokens, as the provider bills them."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


DEFAULT_ROUTES = {
    "brief": "openai:gpt-4.1@2025-04-14",
    "ticket": "openai:gpt-4.1-mini@2025-04-14",  # a small model: fields from an already cited brief
}
DEFAULT_PRICES = {
    "openai:gpt-4.1@2025-04-14": ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0),
    "openai:gpt-4.1-mini@2025-04-14": ModelPrice(input_per_mtok=0.4, output_per_mtok=1.6),
    "anthropic:claude-haiku-4-5@20251001": ModelPrice(input_per_mtok=1.0, output_per_mtok=5.0),
}


class CanaryRoute(BaseModel):
    """A candidate model for one route and the share of incidents it drafts."""

    model: str  # pinned provider:model@version, priced in llm.prices like every routed model
    share: float = Field(default=0.1, ge=0.0, le=1.0)


class CanarySettings(BaseModel):
    """Canary model upgrades (docs/observability.md): per route, a candidate model drafts a
    share of incidents (the same incident always gets the same model); the clock compares it
    with the baseline over `window_hours` and switches it off when it does worse beyond the
    margins, once each side has `min_briefs`."""

    routes: dict[str, CanaryRoute] = Field(default_factory=dict, description=(
        'a candidate model per route, as a JSON object, e.g. {"brief": {"model": "openai:gpt-5@2025-08-07", '
        '"share": 0.1}}; the candidate needs a price in IB_LLM__PRICES'))
    window_hours: float = Field(default=24.0, gt=0, description="hours of briefs the canary is compared over")
    min_briefs: int = Field(default=20, ge=1, description="briefs each side needs before the canary is judged")
    # Absolute increase allowed in a rate (validation failures, fallbacks, thumbs-down): 0.1 is
    # ten points, e.g. 5 % -> 15 % is worse. Small sets swing more, hence `min_briefs`.
    max_rate_increase: float = Field(default=0.10, ge=0.0, le=1.0, description=(
        "how much worse a rate (validation failures, fallbacks, thumbs-down) may be, absolute: 0.1 is ten points"))
    # Latency and cost per brief may grow by this factor before the canary counts as worse.
    max_ratio: float = Field(default=1.5, ge=1.0, description=(
        "how many times the baseline's latency and cost per brief the canary may take"))
    channel: str | None = Field(default=None, description=(
        "channel id where a switch-off is announced (default: IB_SLACK__DEFAULT_CHANNEL)"))


class LlmSettings(BaseModel):
    """The gateway's models (see docs/gateway.md). Model references are pinned
    ``provider:model@version``; the wire name is ``model-version`` unless ``wire_names`` says
    otherwise (an OpenAI-compatible server may call it ``llama3.1:8b``)."""

    enabled: bool = Field(default=True, description=(
        "false drafts every brief offline even when a provider is configured (a kill switch)"))
    routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ROUTES), description=(
        "the pinned model (provider:model@version) for each task"))
    fallbacks: list[str] = Field(default_factory=lambda: ["anthropic:claude-haiku-4-5@20251001"], description=(
        "models tried in order when a task's model fails, as a JSON list ([] for none)"))
    wire_names: dict[str, str] = Field(default_factory=dict, description=(
        'the name a server knows a pinned model by, as a JSON object, e.g. {"openai:llama3.1@8b": "llama3.1:8b"}'))
    openai: ModelProviderSettings = Field(default_factory=ModelProviderSettings)
    anthropic: ModelProviderSettings = Field(default_factory=ModelProviderSettings)
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES), description=(
        'USD per million tokens per model, as a JSON object merged over the built-in table, e.g. '
        '{"openai:llama3.1@8b": {"input_per_mtok": 0, "output_per_mtok": 0}}'))
    cache_ttl_s: int = Field(default=86_400, ge=0, description="seconds a model answer is reused for the same request")
    timeout_s: float = Field(default=60.0, gt=0, description="seconds for one model request")
    max_output_tokens: int = Field(default=2_048, gt=0, description="output tokens at most per model request")
    evidence_token_budget: int = Field(default=3_000, gt=0, description="tokens of evidence packed into a prompt")
    workspace: str = Field(default="default", description=(
        "the spend ledger's workspace for briefs nobody in Slack asked for (PagerDuty triggers): "
        "set your Slack team id (T...) so they count against the same monthly limit"))
    canary: CanarySettings = Field(default_factory=CanarySettings)

    @field_validator("prices", mode="before")
    @classmethod
    def _merge_prices(cls, value: Any) -> Any:
        # A price for your own model must not drop the built-in ones the fallbacks need.
        if isinstance(value, dict):
            return {**DEFAULT_PRICES, **value}
        return value

    @model_validator(mode="after")
    def _every_task_routed(self) -> LlmSettings:
        missing = [task for task in MODEL_TASKS if task not in self.routes]
        if missing:
            raise ValueError(f"llm.routes has no model for task(s) {', '.join(missing)}; "
                             f"every task needs one: {', '.join(MODEL_TASKS)}")
        unknown = sorted(set(self.routes) - set(MODEL_TASKS))
        if unknown:
            raise ValueError(f"llm.routes names unknown task(s) {', '.join(unknown)}; tasks: {', '.join(MODEL_TASKS)}")
        unknown = [route for route in self.canary.routes if route not in MODEL_TASKS]
        if unknown:
            raise ValueError(f"llm.canary.routes names unknown route(s) {', '.join(unknown)}; "
                             f"routes: {', '.join(MODEL_TASKS)}")
        return self

    def provider_of(self, task: str) -> str:
        """``openai`` or ``anthropic``: the provider prefix of the task's pinned model."""
        return self.routes[task].split(":", 1)[0].strip()

    def provider_settings(self, provider: str) -> ModelProviderSettings | None:
        return {"openai": self.openai, "anthropic": self.anthropic}.get(provider)

    def drafts_with_model(self) -> bool:
        """A provider is configured for the brief's model (an API key or a base URL) and the
        model is not switched off: `serve` then drafts through the gateway."""
        provider = self.provider_settings(self.provider_of("brief"))
        return self.enabled and provider is not None and provider.configured


DATABASE_SCHEMES = {
    "sqlite+aiosqlite": "sqlite+aiosqlite", "sqlite": "sqlite+aiosqlite",
    "postgresql+asyncpg": "postgresql+asyncpg", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
}
DATABASE_EXAMPLES = "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB or sqlite+aiosqlite:///PATH/incident-brief.db"


def normalise_database_url(value: str) -> str:
    """The async driver's URL for a database URL as platforms hand it out (``postgres://``)."""
    scheme, sep, rest = value.strip().partition("://")
    driver = DATABASE_SCHEMES.get(scheme.lower()) if sep else None
    if driver is None:
        raise ValueError(f"not a database URL this bot can use ({scheme or value!r}); expected {DATABASE_EXAMPLES}")
    url = f"{driver}://{rest}"
    if driver.startswith("postgresql") and not urlsplit(url).hostname:
        raise ValueError(f"a PostgreSQL URL needs a host; expected {DATABASE_EXAMPLES}")
    if driver.startswith("sqlite") and not rest.startswith("/"):
        raise ValueError(f"a SQLite URL needs a path after ':///'; expected {DATABASE_EXAMPLES}")
    return url


class TelemetrySettings(BaseModel):
    """What the bot tells the people who run it (docs/observability.md). Traces are configured
    by the standard ``OTEL_*`` variables, not here."""

    events: bool = Field(default=True, description="one structured event per step, in serve and clock")
    log_format: Literal["console", "json"] = Field(default="console", description=(
        "the events as key=value (console) or JSON; IB_LOG_FORMAT=json makes them JSON whatever this says"))
    digest_channel: str | None = Field(default=None, description=(
        "channel id for the daily digest of the report's headline numbers (unset: no digest)"))
    digest_hour_utc: int = Field(default=9, ge=0, le=23, description="the hour (UTC) the digest is posted")
    # The clock has no web server: its own /metrics (approvals expired, canaries switched off)
    # are served on this port when set. The web process serves them on its HTTP port.
    clock_metrics_port: int | None = Field(default=None, ge=1, le=65535, description=(
        "port for the clock's own /metrics (the web process serves them on its HTTP port)"))


class Settings(BaseSettings):
    # `.env` is read by `bot.core.settings_env.load_settings` (the CLI), never implicitly, so a
    # developer's .env cannot leak into tests or the sandbox. Blank values mean "not set".
    model_config = SettingsConfigDict(env_prefix="IB_", env_nested_delimiter="__", extra="ignore",
                                      env_ignore_empty=True)

    database_url: str = Field(default="sqlite+aiosqlite:///incident-brief.db", description=(
        "where incidents, briefs, approvals, audit, spend and the model cache live; SQLite (default, "
        "relative to the working directory) serves one host; web replicas and the clock on several "
        f"hosts need PostgreSQL: {DATABASE_EXAMPLES}"))
    policy_file: Path | None = Field(default=None, description=(
        "the agent_policy YAML (config/policy.yaml); unset: read-only, no write tool reachable"))
    catalog_file: Path | None = Field(default=None, description=(
        "the service catalog YAML (config/catalog.example.yaml, or Backstage catalog-info.yaml)"))
    source_timeout_s: float = Field(default=20.0, gt=0, description=(
        "seconds for a whole source, retries included, where the policy's timing.source_timeout_s names no default"))
    log_level: LogLevel | None = Field(default=None, description=(
        "DEBUG, INFO, WARNING or ERROR (default: INFO for serve and clock, WARNING for other commands)"))
    log_format: LogFormat = Field(default="text", description="text, or json for one JSON object per line")
    datadog: DatadogSettings = Field(default_factory=DatadogSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    confluence: ConfluenceSettings = Field(default_factory=ConfluenceSettings)
    jira: JiraSettings = Field(default_factory=JiraSettings)
    pagerduty: PagerDutySettings = Field(default_factory=PagerDutySettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value
