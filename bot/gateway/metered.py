"""The seam around every model request: step cap, spend check, timeout, metering.

`MeteredModel` wraps the provider's pydantic-ai model, so a repair request pydantic-ai makes on
its own (after a schema failure) passes the same checks as the first one. Each request,
made or refused, leaves a `RequestLog` the gateway turns into an audit row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from bot.core.config import ModelPrice
from bot.core.errors import BudgetExceeded
from bot.draft.prompts import CHARS_PER_TOKEN
from bot.gateway.ledger import SpendLedger
from bot.gateway.pricing import cost_usd


class SpendLimitReached(BudgetExceeded):
    outcome = "budget"


class StepCapReached(BudgetExceeded):
    outcome = "step_cap"


class StepCounter:
    """Model requests left for one brief (`steps.max_model_calls_per_brief`)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0

    @property
    def left(self) -> int:
        return self.cap - self.used

    def take(self) -> None:
        if self.used >= self.cap:
            raise StepCapReached(f"the step cap of {self.cap} model call(s) per brief is reached")
        self.used += 1


@dataclass(frozen=True)
class Caller:
    """Who a model call is for: the audit's brief key and the ledger's user and workspace."""

    brief_key: str | None
    user: str | None
    workspace: str


@dataclass
class RequestLog:
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    outcome: str | None = None  # set here for refusals and transport errors; else by the gateway
    detail: str = ""


@dataclass
class Meter:
    """Per-run accounting shared by the gateway and its `MeteredModel`."""

    requests: list[RequestLog] = field(default_factory=list)
    ledger_ms: float = 0.0
    model_ms: float = 0.0


@dataclass
class RunState:
    """What one gateway run gives the (shared, long-lived) metered model and output validator."""

    steps: StepCounter
    caller: Caller
    meter: Meter
    system_chars: int
    validate: Callable[[Any], list[str]] | None = None
    validate_ms: float = 0.0


# Set by the gateway around each `agent.run`; a context variable, so concurrent runs in other
# tasks each see their own. Agents are built once per model and output type (building one
# costs milliseconds: the output schema), so per-run state cannot live on them.
CURRENT_RUN: ContextVar[RunState] = ContextVar("gateway_run")


def estimate_message_tokens(messages: list[ModelMessage], system_chars: int) -> int:
    chars = system_chars
    for message in messages:
        for part in message.parts:
            content = getattr(part, "content", None)
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(part, ToolCallPart):
                chars += len(part.args_as_json_str())
    return chars // CHARS_PER_TOKEN + 1


class MeteredModel(WrapperModel):
    def __init__(self, wrapped: Model, *, price: ModelPrice, ledger: SpendLedger, timeout_s: float,
                 max_output_tokens: int) -> None:
        super().__init__(wrapped)
        self.price = price
        self.ledger = ledger
        self.timeout_s = timeout_s
        self.max_output_tokens = max_output_tokens

    async def request(self, messages: list[ModelMessage], model_settings: ModelSettings | None,
                      model_request_parameters: ModelRequestParameters) -> ModelResponse:
        run = CURRENT_RUN.get()
        try:
            run.steps.take()
            await self._check_spend(run, messages)
        except BudgetExceeded as refusal:
            run.meter.requests.append(RequestLog(outcome=refusal.outcome, detail=str(refusal)))
            raise
        log = RequestLog()
        run.meter.requests.append(log)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self.wrapped.request(messages, model_settings, model_request_parameters)
        except TimeoutError:
            log.outcome, log.detail = "timeout", f"no answer within {self.timeout_s:g}s"
            raise
        except Exception as exc:
            log.outcome, log.detail = "http_error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            log.latency_ms = (time.perf_counter() - started) * 1000
            run.meter.model_ms += log.latency_ms
        log.input_tokens = response.usage.input_tokens
        log.output_tokens = response.usage.output_tokens
        log.cost_usd = cost_usd(self.price, log.input_tokens, log.output_tokens)
        charged = time.perf_counter()
        await self.ledger.charge(user=run.caller.user, workspace=run.caller.workspace, usd=log.cost_usd,
                                 tokens=log.input_tokens + log.output_tokens)
        run.meter.ledger_ms += (time.perf_counter() - charged) * 1000
        return response

    async def _check_spend(self, run: RunState, messages: list[ModelMessage]) -> None:
        started = time.perf_counter()
        estimate = cost_usd(self.price, estimate_message_tokens(messages, run.system_chars),
                            self.max_output_tokens)
        reason = await self.ledger.refusal(user=run.caller.user, workspace=run.caller.workspace,
                                           estimate_usd=estimate, incident=run.caller.brief_key)
        run.meter.ledger_ms += (time.perf_counter() - started) * 1000
        if reason is not None:
            raise SpendLimitReached(reason)
