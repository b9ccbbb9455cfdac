"""The only way to a model: route (and canary), cache, redact, budget, cap, call, repair, fall back,
audit, telemetry.

`Gateway.run(task, prompt, output_type, ...)` walks the task's chain (its route, then the
configured fallbacks). For each model: an exact cache lookup keyed on the pinned model, the
prompt version and the packed request; then a pydantic-ai run whose requests all pass through
`MeteredModel` (step cap, spend check before, metering and charge after); a typed output with
one repair attempt on a schema or validation failure. A failure moves to the next model; the
caller gets `output=None` with the reason when the chain is exhausted, and falls back itself
(the brief drafter to the offline drafter).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.instrumentation import Instrumentation
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.models import Model
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.settings import ModelSettings

from bot.core.audit import AuditSink, ModelCallRecord
from bot.core.config import LlmSettings, ModelPrice
from bot.core.errors import BudgetExceeded, ConfigError
from bot.core.policy import Policy, SpendLimits
from bot.core.redaction import redact, redact_obj
from bot.draft.prompts import RenderedPrompt
from bot.gateway.canary import Arm, CanaryStates, MemoryCanaryStates, arm_for
from bot.gateway.ledger import SpendLedger
from bot.gateway.metered import (
    CURRENT_RUN,
    Caller,
    Meter,
    MeteredModel,
    RequestLog,
    RunState,
    StepCounter,
)
from bot.gateway.pricing import price_for
from bot.gateway.providers import build_model
from bot.gateway.refs import ModelRef
from bot.gateway.store import GatewayStore
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import annotate, span
from bot.telemetry.tracing import provider as tracing_provider

T = TypeVar("T", bound=BaseModel)
Validator = Callable[[Any], list[str]]
OUTPUT_REPAIRS = 1  # one repair attempt on a schema failure, then the next model


class GatewayConfigError(ConfigError, ValueError):
    """A route or fallback that cannot be used (not pinned, or no price to budget it by)."""


@dataclass(frozen=True)
class GatewayRules:
    """The policy's part in model calls (`bot.core.policy.Policy`: pii, spend_limits, steps)."""

    redact_prompts: bool
    limits: SpendLimits
    max_model_calls_per_brief: int

    @classmethod
    def from_policy(cls, policy: Policy) -> GatewayRules:
        return cls(
            redact_prompts=policy.pii.redact_prompts,
            limits=policy.spend_limits,
            max_model_calls_per_brief=policy.steps.max_model_calls_per_brief,
        )


@dataclass(frozen=True)
class Attempt:
    model: str
    outcome: str  # ok | repaired | cache_hit | schema_error | http_error | timeout | budget | step_cap
    detail: str = ""


@dataclass
class GatewayResult(Generic[T]):
    output: T | None
    model: str | None  # the model that answered (or was last tried)
    prompt_version: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    fallback_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    arm: Arm | None = None  # the canary side of this run, when the route has a live canary

    def notes(self) -> list[str]:
        """What a reader of the brief should know about how the model path went."""
        return [f"model {a.model}: {a.outcome}{f' ({a.detail})' if a.detail else ''}"
                for a in self.attempts if a.outcome not in {"ok", "cache_hit"}]


def cache_key(ref: ModelRef, prompt_version: str, output_type: type[BaseModel], sent_user: str) -> str:
    digest = hashlib.sha256(sent_user.encode()).hexdigest()
    return f"llm:{ref}:{prompt_version}:{output_type.__name__}:{digest}"


class Gateway:
    def __init__(self, settings: LlmSettings, *, store: GatewayStore, audit: AuditSink, rules: GatewayRules,
                 models: Mapping[str, Model] | None = None, canary_states: CanaryStates | None = None) -> None:
        """`models` maps a pinned reference to a ready model (tests: pydantic-ai `FunctionModel`);
        any other reference is built from `settings` (OpenAI- or Anthropic-compatible HTTP).
        `canary_states` says which canary candidates were switched off (the store's, shared by
        every replica; in memory by default)."""
        self.settings = settings
        self.store = store
        self.audit = audit
        self.rules = rules
        self.ledger = SpendLedger(store, rules.limits)
        self._models: dict[str, Model] = dict(models or {})
        self._prices: dict[str, ModelPrice] = {}
        self._agents: dict[tuple[str, type[BaseModel], str], Any] = {}
        self.canary_states: CanaryStates = canary_states or MemoryCanaryStates()
        for task in settings.routes:
            arms: tuple[Arm, ...] = ("baseline", "canary") if task in settings.canary.routes else ("baseline",)
            for ref in (ref for arm in arms for ref in self.chain(task, arm)):
                price = price_for(ref, settings.prices)
                if price is None:
                    raise GatewayConfigError(f"model {ref} (task {task}) has no entry in llm.prices: "
                                             "without a price the spend limits cannot hold")
                self._prices[str(ref)] = price

    def chain(self, task: str, arm: Arm = "baseline") -> list[ModelRef]:
        """The task's route (after its canary candidate, on the canary side), then the
        fallbacks, each once."""
        if task not in self.settings.routes:
            raise GatewayConfigError(f"no model route for task {task!r}; routes: {sorted(self.settings.routes)}")
        candidate = self.settings.canary.routes.get(task) if arm == "canary" else None
        refs: list[ModelRef] = []
        for raw in [*([candidate.model] if candidate else []), self.settings.routes[task], *self.settings.fallbacks]:
            try:
                ref = ModelRef.parse(raw)
            except ValueError as exc:
                raise GatewayConfigError(str(exc)) from exc
            if ref not in refs:
                refs.append(ref)
        return refs

    def model(self, ref: ModelRef) -> Model:
        key = str(ref)
        if key not in self._models:
            self._models[key] = build_model(ref, self.settings)
        return self._models[key]

    async def run(self, task: str, prompt: RenderedPrompt, output_type: type[T], *, caller: Caller,
                  steps: StepCounter | None = None, validate: Validator | None = None) -> GatewayResult[T]:
        """The task's answer as `output_type`, or `output=None` with `fallback_reason`."""
        started = time.perf_counter()
        steps = steps or StepCounter(self.rules.max_model_calls_per_brief)
        result: GatewayResult[T] = GatewayResult(output=None, model=None, prompt_version=prompt.version)
        timings = result.timings_ms
        mark = time.perf_counter()
        sent_user = redact(prompt.user) if self.rules.redact_prompts else prompt.user
        timings["redact"] = _ms(mark)
        result.arm = await self.arm(task, caller.brief_key)
        for ref in self.chain(task, result.arm or "baseline"):
            result.model = str(ref)
            with span("model_call", **{"incident.key": caller.brief_key, "gen_ai.operation.name": task,
                                       "gen_ai.request.model": str(ref), "canary.arm": result.arm}):
                spent = (result.input_tokens, result.output_tokens, result.cost_usd)
                mark = time.perf_counter()
                key = cache_key(ref, prompt.version, output_type, sent_user)
                cached = await self.store.cache_get(key)
                timings["cache"] = timings.get("cache", 0.0) + _ms(mark)
                telemetry.cache_lookup(task, hit=cached is not None)
                if cached is not None:
                    result.output, result.cache_hit = output_type.model_validate(cached["output"]), True
                    result.attempts.append(Attempt(str(ref), "cache_hit"))
                    annotate(outcome="cache_hit")
                    await self._audit(task, ref, prompt, caller, [RequestLog(outcome="cache_hit")], timings,
                                      result.arm)
                    break
                output, attempt = await self._call(task, ref, prompt, sent_user, output_type, caller, steps,
                                                   validate, result)
                result.attempts.append(attempt)
                annotate(outcome=attempt.outcome, **{
                    "gen_ai.usage.input_tokens": result.input_tokens - spent[0],
                    "gen_ai.usage.output_tokens": result.output_tokens - spent[1],
                    "cost.usd": round(result.cost_usd - spent[2], 6)})
                if output is not None:
                    mark = time.perf_counter()
                    result.output = output
                    await self.store.cache_put(key, {"output": output.model_dump(mode="json")},
                                               ttl=timedelta(seconds=self.settings.cache_ttl_s))
                    timings["cache"] = timings.get("cache", 0.0) + _ms(mark)
                    break
                if attempt.outcome == "step_cap":
                    break  # every later model would be refused the same way
        if result.output is None:
            result.fallback_reason = _fallback_reason(result.attempts)
        _record_fallbacks(task, result, caller.brief_key)
        timings["total"] = _ms(started)
        return result

    async def arm(self, task: str, incident_key: str | None) -> Arm | None:
        """The canary side this incident is on for `task`, or None when the route has no
        canary (or its candidate was switched off: every brief is baseline again)."""
        candidate = self.settings.canary.routes.get(task)
        if candidate is None:
            return None
        if await self.canary_states.switched_off(task, candidate.model):
            return None
        return arm_for(incident_key, task, candidate.share)

    async def _call(self, task: str, ref: ModelRef, prompt: RenderedPrompt, sent_user: str,
                    output_type: type[T], caller: Caller, steps: StepCounter, validate: Validator | None,
                    result: GatewayResult[T]) -> tuple[T | None, Attempt]:
        meter = Meter()
        run_state = RunState(steps=steps, caller=caller, meter=meter, system_chars=len(prompt.system),
                             validate=validate)
        agent = self._agent(ref, output_type, prompt.system)
        output: T | None = None
        attempt: Attempt
        token = CURRENT_RUN.set(run_state)
        try:
            run = await agent.run(sent_user)
            mark = time.perf_counter()
            output = self._redacted(run.output, output_type)
            result.timings_ms["output_redact"] = _ms(mark)
            repaired = sum(1 for r in meter.requests if r.outcome is None) > 1
            attempt = Attempt(str(ref), "repaired" if repaired else "ok")
        except BudgetExceeded as refusal:
            attempt = Attempt(str(ref), refusal.outcome, str(refusal))
        except UnexpectedModelBehavior as exc:
            attempt = Attempt(str(ref), "schema_error", redact(_short(str(exc))))
        except TimeoutError:
            attempt = Attempt(str(ref), "timeout", f"no answer within {self.settings.timeout_s:g}s")
        except Exception as exc:  # a provider or transport failure: the next model may work
            attempt = Attempt(str(ref), "http_error", redact(_short(f"{type(exc).__name__}: {exc}")))
        finally:
            CURRENT_RUN.reset(token)
        result.timings_ms["validate"] = result.timings_ms.get("validate", 0.0) + run_state.validate_ms
        _settle_outcomes(meter.requests, attempt.outcome)
        for log in meter.requests:
            result.input_tokens += log.input_tokens
            result.output_tokens += log.output_tokens
            result.cost_usd += log.cost_usd
        result.timings_ms["model"] = result.timings_ms.get("model", 0.0) + meter.model_ms
        result.timings_ms["ledger"] = result.timings_ms.get("ledger", 0.0) + meter.ledger_ms
        await self._audit(task, ref, prompt, caller, meter.requests, result.timings_ms, result.arm)
        return output, attempt

    def _agent(self, ref: ModelRef, output_type: type[T], system: str) -> Agent[None, T]:
        """One agent per model, output type and system prompt, built on first use: building
        one costs milliseconds (the output schema), so the hot path must not."""
        key = (str(ref), output_type, system)
        agent = self._agents.get(key)
        if agent is None:
            model = MeteredModel(self.model(ref), price=self._prices[str(ref)], ledger=self.ledger,
                                 timeout_s=self.settings.timeout_s, max_output_tokens=self.settings.max_output_tokens)
            agent = Agent(model, output_type=output_type, instructions=system, retries={"output": OUTPUT_REPAIRS},
                          model_settings=ModelSettings(max_tokens=self.settings.max_output_tokens, temperature=0.0),
                          capabilities=_instrumentation())
            agent.output_validator(_run_validator)
            self._agents[key] = agent
        return agent

    @staticmethod
    def _redacted(output: T, output_type: type[T]) -> T:
        """Model text is stored and posted: mask secrets it may have echoed from evidence."""
        return output_type.model_validate(redact_obj(output.model_dump(mode="json")))

    async def _audit(self, task: str, ref: ModelRef, prompt: RenderedPrompt, caller: Caller,
                     logs: list[RequestLog], timings: dict[str, float], arm: Arm | None) -> None:
        mark = time.perf_counter()
        for log in logs:
            record = ModelCallRecord(
                brief_key=caller.brief_key, actor=caller.user, task=task, model=str(ref),
                prompt_version=prompt.version, input_tokens=log.input_tokens, output_tokens=log.output_tokens,
                cost_usd=log.cost_usd, latency_ms=round(log.latency_ms, 3), cache_hit=log.outcome == "cache_hit",
                outcome=log.outcome or "ok", detail=redact(_short(log.detail)), arm=arm,
            )
            telemetry.model_call(record, workspace=caller.workspace)
            await self.audit.model_call(record)
        timings["audit"] = timings.get("audit", 0.0) + _ms(mark)


def _instrumentation() -> list[AbstractCapability[Any]]:
    """pydantic-ai's own spans (the agent run and each model request, with the GenAI
    attributes) when tracing is on, without prompts, answers or request parameters: those
    carry evidence text."""
    traces = tracing_provider()
    if traces is None:
        return []
    return [Instrumentation(settings=InstrumentationSettings(
        tracer_provider=traces, include_content=False, include_binary_content=False,
        include_model_request_parameters=False))]


def _record_fallbacks(task: str, result: GatewayResult[Any], incident: str | None) -> None:
    """Each failed attempt: the next model took over, or (the last one, with no answer) the
    caller's offline path."""
    for attempt in result.attempts:
        if attempt.outcome in {"ok", "repaired", "cache_hit"}:
            continue
        to = "offline" if result.output is None and attempt is result.attempts[-1] else "next_model"
        telemetry.fallback(task, attempt.outcome, to=to, incident=incident)


def _run_validator(answer: Any) -> Any:
    """The output validator of every agent: this run's check; a failure is sent back for repair."""
    run = CURRENT_RUN.get()
    if run.validate is None:
        return answer
    mark = time.perf_counter()
    problems = run.validate(answer)
    run.validate_ms += _ms(mark)
    if problems:
        raise ModelRetry("Fix these problems and answer again: " + "; ".join(problems))
    return answer


def _settle_outcomes(logs: list[RequestLog], run_outcome: str) -> None:
    """Requests the gateway did not already label: the last one carries the run's outcome,
    earlier ones were answers that failed validation and were sent back for repair."""
    unlabelled = [log for log in logs if log.outcome is None]
    for log in unlabelled:
        log.outcome = "schema_error"
    if unlabelled and run_outcome in {"ok", "repaired"}:
        unlabelled[-1].outcome = run_outcome


def _fallback_reason(attempts: list[Attempt]) -> str:
    if not attempts:
        return "no model is configured for this task"
    last = attempts[-1]
    tried = ", ".join(f"{a.model} ({a.outcome})" for a in attempts)
    if last.outcome in {"budget", "step_cap"}:
        return f"{last.detail}; models tried: {tried}"
    return f"every model in the chain failed: {tried}"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


