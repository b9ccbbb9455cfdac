"""Settings: where each outside system lives and how to authenticate.

Production points these at the real hosts; the sandbox and tests point them at 127.0.0.1.
Environment variables use the prefix ``IB_`` and ``__`` for nesting
(``IB_DATADOG__BASE_URL``). Secrets are never logged (pydantic ``SecretStr``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConnectorSettings(BaseModel):
    base_url: str
    web_url: str | None = None  # where deep links a person clicks should point
    token: SecretStr = SecretStr("")
    timeout_s: float = 8.0  # one HTTP call
    max_retries: int = 2  # on 429 and 5xx, honouring Retry-After
    max_pages: int = 5  # bounded pagination

    @property
    def link_base(self) -> str:
        return (self.web_url or self.base_url).rstrip("/")


class DatadogSettings(ConnectorSettings):
    base_url: str = "https://api.datadoghq.com"
    web_url: str | None = "https://app.datadoghq.com"
    app_key: SecretStr = SecretStr("")


class GitHubSettings(ConnectorSettings):
    base_url: str = "https://api.github.com"
    web_url: str | None = "https://github.com"


class ConfluenceSettings(ConnectorSettings):
    base_url: str = "https://example.atlassian.net/wiki"
    username: str = ""


class JiraSettings(ConnectorSettings):
    base_url: str = "https://example.atlassian.net"
    username: str = ""


class PagerDutySettings(ConnectorSettings):
    base_url: str = "https://api.pagerduty.com"
    web_url: str | None = "https://example.pagerduty.com"
    webhook_secrets: list[SecretStr] = Field(default_factory=list)  # several: rotation


class SlackSettings(BaseModel):
    api_base_url: str = "https://slack.com/api/"
    bot_token: SecretStr = SecretStr("")
    signing_secret: SecretStr = SecretStr("")
    socket_mode: bool = False
    app_token: SecretStr = SecretStr("")
    default_channel: str | None = None


class ModelProviderSettings(BaseModel):
    """One model provider's endpoint. ``base_url`` None means the provider's public host."""

    base_url: str | None = None
    api_key: SecretStr = SecretStr("")


# The model tasks of the workflow, each routed to a model in `LlmSettings.routes`.
MODEL_TASKS = ("brief", "ticket")


class ModelPrice(BaseModel):
    """USD per million tokens, as the provider bills them."""

    input_per_mtok: float
    output_per_mtok: float


class CanaryRoute(BaseModel):
    """A candidate model for one route and the share of incidents it drafts."""

    model: str  # pinned provider:model@version, priced in llm.prices like every routed model
    share: float = Field(default=0.1, ge=0.0, le=1.0)


class CanarySettings(BaseModel):
    """Canary model upgrades (docs/observability.md): per route, a candidate model drafts a
    share of incidents (the same incident always gets the same model); the clock compares it
    with the baseline over `window_hours` and switches it off when it does worse beyond the
    margins, once each side has `min_briefs`."""

    routes: dict[str, CanaryRoute] = Field(default_factory=dict)
    window_hours: float = Field(default=24.0, gt=0)
    min_briefs: int = Field(default=20, ge=1)
    # Absolute increase allowed in a rate (validation failures, fallbacks, thumbs-down): 0.1 is
    # ten points, e.g. 5 % -> 15 % is worse. Small sets swing more, hence `min_briefs`.
    max_rate_increase: float = Field(default=0.10, ge=0.0, le=1.0)
    # Latency and cost per brief may grow by this factor before the canary counts as worse.
    max_ratio: float = Field(default=1.5, ge=1.0)
    channel: str | None = None  # where the switch-off is announced (else slack.default_channel)


class LlmSettings(BaseModel):
    """The gateway's models (see docs/gateway.md). Model references are pinned
    ``provider:model@version``; the wire name is ``model-version`` unless ``wire_names`` says
    otherwise (an OpenAI-compatible server may call it ``llama3.1:8b``)."""

    routes: dict[str, str] = Field(default_factory=lambda: {
        "brief": "openai:gpt-4.1@2025-04-14",
        "ticket": "openai:gpt-4.1-mini@2025-04-14",  # a small model: fields from an already cited brief
    })
    fallbacks: list[str] = Field(default_factory=lambda: ["anthropic:claude-haiku-4-5@20251001"])
    wire_names: dict[str, str] = Field(default_factory=dict)
    openai: ModelProviderSettings = Field(default_factory=ModelProviderSettings)
    anthropic: ModelProviderSettings = Field(default_factory=ModelProviderSettings)
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: {
        "openai:gpt-4.1@2025-04-14": ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0),
        "openai:gpt-4.1-mini@2025-04-14": ModelPrice(input_per_mtok=0.4, output_per_mtok=1.6),
        "anthropic:claude-haiku-4-5@20251001": ModelPrice(input_per_mtok=1.0, output_per_mtok=5.0),
    })
    cache_ttl_s: int = 86_400
    timeout_s: float = 60.0  # one model request
    max_output_tokens: int = 2_048
    evidence_token_budget: int = 3_000
    workspace: str = "default"  # the spend ledger's workspace (the Slack team id in production)
    canary: CanarySettings = Field(default_factory=CanarySettings)

    @model_validator(mode="after")
    def _every_task_routed(self) -> LlmSettings:
        missing = [task for task in MODEL_TASKS if task not in self.routes]
        if missing:
            raise ValueError(f"llm.routes has no model for task(s) {', '.join(missing)}; "
                             f"every task needs one: {', '.join(MODEL_TASKS)}")
        unknown = [route for route in self.canary.routes if route not in MODEL_TASKS]
        if unknown:
            raise ValueError(f"llm.canary.routes names unknown route(s) {', '.join(unknown)}; "
                             f"routes: {', '.join(MODEL_TASKS)}")
        return self


class TelemetrySettings(BaseModel):
    """What the bot tells the people who run it (docs/observability.md). Traces are configured
    by the standard ``OTEL_*`` variables, not here."""

    events: bool = True  # one structured event per step, in `serve` and `clock`
    log_format: Literal["console", "json"] = "console"
    digest_channel: str | None = None  # the daily digest of the report's headline numbers; None: off
    digest_hour_utc: int = Field(default=9, ge=0, le=23)
    # The clock has no web server: its own /metrics (approvals expired, canaries switched off)
    # are served on this port when set. The web process serves them on its HTTP port.
    clock_metrics_port: int | None = Field(default=None, ge=1, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IB_", env_nested_delimiter="__", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///incident-brief.db"
    policy_file: Path | None = None
    catalog_file: Path | None = None
    source_timeout_s: float = 20.0  # a whole source, retries included
    datadog: DatadogSettings = Field(default_factory=DatadogSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    confluence: ConfluenceSettings = Field(default_factory=ConfluenceSettings)
    jira: JiraSettings = Field(default_factory=JiraSettings)
    pagerduty: PagerDutySettings = Field(default_factory=PagerDutySettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
