"""Audit records and the sink they go to. Every tool call and every model call leaves one, and
so does the citation check of every brief drafted, and every decision the bot takes about
itself (a canary model switched off).

The sink is a protocol so the core stays free of I/O: the store implements it for SQLite or
Postgres, tests use `MemoryAudit`. Records hold redacted text only: their free-text fields and
tool arguments are masked when the record is built, so no caller can forget it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, Field

from bot.core.redaction import redact, redact_obj


def _masked_data(value: dict[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = redact_obj(value)
    return masked


# Masked when a record is built, whoever builds it.
MaskedText = Annotated[str, AfterValidator(redact)]
MaskedData = Annotated[dict[str, Any], AfterValidator(_masked_data)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class ToolCallRecord(BaseModel):
    brief_key: str | None  # which brief this call belonged to (incident or request key)
    tool: str
    actor: str | None
    decision: Literal["allow", "needs_approval", "deny"]
    decision_reason: MaskedText
    outcome: Literal["ok", "gap", "denied", "error", "preview"]
    detail: MaskedText = ""  # a short, redacted reason or summary
    evidence_count: int = 0
    latency_ms: float = 0.0
    args: MaskedData = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)


class ModelCallRecord(BaseModel):
    brief_key: str | None
    actor: str | None
    task: str
    model: str
    prompt_version: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cache_hit: bool = False
    outcome: str = "ok"  # ok | schema_error | http_error | timeout | budget | repaired ...
    detail: MaskedText = ""
    arm: Literal["baseline", "canary"] | None = None  # a route with a canary model: which side served
    at: datetime = Field(default_factory=utcnow)


class BriefCheckRecord(BaseModel):
    """The citation check of one drafted brief: what the drafter (offline or a model) claimed
    that the gathered evidence did not support, and what the check removed or rewrote."""

    brief_key: str | None
    actor: str | None
    check: str = "citations"
    drafter: str  # offline | llm
    model: str | None = None
    outcome: Literal["ok", "fixed"]
    coverage: float  # share of the claims that had a valid citation
    problems: list[MaskedText] = Field(default_factory=list)
    at: datetime = Field(default_factory=utcnow)


ALERT_NOT_POSTED = "alert_not_posted"  # a ControlRecord kind: an accepted alert posted nowhere
BRIEF_ABANDONED = "brief_abandoned"  # a ControlRecord kind: publishing gave up after its last attempt


class ControlRecord(BaseModel):
    """A decision the bot took about itself rather than an incident: a canary model switched
    off (`kind` ``canary_switched_off``, `subject` ``route:model``), with the numbers behind it;
    an alert it could not post (`kind` ``alert_not_posted``, `subject` the service)."""

    kind: str
    subject: MaskedText
    actor: str  # who decided: ``canary-watch`` for the bot itself, else the operator
    detail: MaskedText = ""
    data: MaskedData = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)


class AuditSink(Protocol):
    async def tool_call(self, record: ToolCallRecord) -> None: ...

    async def model_call(self, record: ModelCallRecord) -> None: ...

    async def brief_check(self, record: BriefCheckRecord) -> None: ...


class MemoryAudit:
    """An in-process sink: the CLI's default when no database is wanted, and tests."""

    def __init__(self) -> None:
        self.tool_calls: list[ToolCallRecord] = []
        self.model_calls: list[ModelCallRecord] = []
        self.brief_checks: list[BriefCheckRecord] = []

    async def tool_call(self, record: ToolCallRecord) -> None:
        self.tool_calls.append(record)

    async def model_call(self, record: ModelCallRecord) -> None:
        self.model_calls.append(record)

    async def brief_check(self, record: BriefCheckRecord) -> None:
        self.brief_checks.append(record)
