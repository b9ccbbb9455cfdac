"""The one choke point for every tool call: policy, step cap, timeout, redaction, audit, telemetry
(a span per call, the tool-call metrics and one event, from the audit record itself).

Nothing in the bot calls a connector except through `ToolRunner`. A read returns evidence
or a `SourceGap` (never raises for a source problem); a write runs only with an approval
record that was claimed for execution, and in ``dry_run`` mode only previews. Evidence is
redacted here, on the way in, so no secret or PII reaches the model, Slack, the store or
the logs downstream. A `lookup` is a read whose answer is a typed model rather than evidence
(``doctor``'s list of PagerDuty services): the same guards, and the model redacted the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from bot.core.audit import AuditSink, ToolCallRecord
from bot.core.errors import ApprovalRequired, PolicyDenied, SourceUnavailable
from bot.core.models import Evidence, Source, SourceGap
from bot.core.policy import Decision, Policy
from bot.core.redaction import redact, redact_obj
from bot.telemetry import record as telemetry
from bot.telemetry.tracing import span

ReadCall = Callable[[], Awaitable[list[Evidence]]]
WriteCall = Callable[[], Awaitable[dict[str, Any]]]
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class ApprovedAction(Protocol):
    """What a write needs to show: an approval claimed for execution of this very tool."""

    @property
    def id(self) -> str: ...

    @property
    def tool(self) -> str: ...

    @property
    def state(self) -> str: ...


@dataclass
class ReadOutcome:
    tool: str
    evidence: list[Evidence] = field(default_factory=list)
    gap: SourceGap | None = None


@dataclass
class LookupOutcome(Generic[M]):
    tool: str
    value: M | None = None
    gap: SourceGap | None = None


@dataclass(frozen=True)
class _Ran(Generic[T]):
    """A call the runner let through and that answered: what it said, and what to audit it with."""

    answer: T
    decision: Decision
    started: float


@dataclass
class WriteOutcome:
    tool: str
    executed: bool
    preview: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


def redact_evidence(item: Evidence) -> Evidence:
    """Mask secrets and PII in every free-text field an outside system gave us."""
    return item.model_copy(update={
        "title": redact(item.title),
        "excerpt": redact(item.excerpt),
        "ref": {k: redact(v) for k, v in item.ref.items()},
        "data": redact_obj(item.data),
    })


def redact_model(value: M) -> M:
    """Every text field of a typed answer masked, then validated again as its own type: a mask
    that broke one of its constraints raises rather than passing unchecked."""
    return type(value).model_validate(redact_obj(value.model_dump()))


class ToolRunner:
    """Runs tool calls for one brief (or one approval) on behalf of one actor."""

    def __init__(
        self,
        *,
        policy: Policy,
        audit: AuditSink,
        brief_key: str | None = None,
        actor: str | None = None,
        timeout_s: float = 20.0,
        catalog_projects: Collection[str] = (),
        source_timeouts: Mapping[str, float] | None = None,
        max_calls: int | None = None,
    ) -> None:
        self.policy = policy
        self.catalog_projects = catalog_projects  # where a ticket may go (`Policy.jira_projects`)
        self.audit = audit
        self.brief_key = brief_key
        self.actor = actor
        self.timeout_s = timeout_s
        # Per source (the policy's `timing.source_timeout_s`); `timeout_s` for a source not named.
        self.source_timeouts = dict(source_timeouts or {})
        self.calls = 0
        # The policy's cap is per brief; a caller checking many things at once (doctor's catalog
        # references) sets its own, bounded the same way.
        self.max_calls = policy.steps.max_tool_calls_per_brief if max_calls is None else max_calls

    async def read(self, tool: str, source: Source, call: ReadCall, *,
                   args: dict[str, Any] | None = None, timeout_s: float | None = None) -> ReadOutcome:
        with span("tool_call", **{"incident.key": self.brief_key, "tool.name": tool, "tool.source": source.value}):
            return await self._read(tool, source, call, args=args, timeout_s=timeout_s)

    async def _read(self, tool: str, source: Source, call: ReadCall, *,
                    args: dict[str, Any] | None, timeout_s: float | None) -> ReadOutcome:
        ran = await self._guarded(tool, source, call, args or {}, timeout_s)
        if isinstance(ran, SourceGap):
            return ReadOutcome(tool, gap=ran)
        evidence = [redact_evidence(item) for item in ran.answer]
        await self._audit(tool, ran.decision, "ok", f"{len(evidence)} items", args or {},
                          started=ran.started, count=len(evidence))
        return ReadOutcome(tool, evidence=evidence)

    async def lookup(self, tool: str, source: Source, call: Callable[[], Awaitable[M]], *,
                     count: Callable[[M], int], args: dict[str, Any] | None = None,
                     timeout_s: float | None = None) -> LookupOutcome[M]:
        """A read whose answer is a typed model, not evidence (nothing cites it): policy, step
        cap, timeout, redaction and audit as for `read`; `count` says how many items it holds."""
        with span("tool_call", **{"incident.key": self.brief_key, "tool.name": tool, "tool.source": source.value}):
            ran = await self._guarded(tool, source, call, args or {}, timeout_s)
            if isinstance(ran, SourceGap):
                return LookupOutcome(tool, gap=ran)
            try:
                value = redact_model(ran.answer)
            except Exception as exc:  # masked text that no longer validates: a gap, never a crash
                reason = f"failed unexpectedly ({type(exc).__name__})"
                gap = await self._gap(tool, source, ran.decision, reason, args or {}, ran.started, outcome="error")
                return LookupOutcome(tool, gap=gap)
            items = count(value)
            await self._audit(tool, ran.decision, "ok", f"{items} items", args or {}, started=ran.started,
                              count=items)
            return LookupOutcome(tool, value=value)

    async def _guarded(self, tool: str, source: Source, call: Callable[[], Awaitable[T]], args: dict[str, Any],
                       timeout_s: float | None) -> _Ran[T] | SourceGap:
        """Decide, count, call within the time limit: the answer, or the gap (already audited)."""
        decision = self._decide(tool, args)
        if decision.outcome != "allow":
            reason = f"not permitted by policy: {decision.reason}"
            await self._audit(tool, decision, "denied", reason, args)
            return SourceGap(source=source, tool=tool, reason=reason)
        if self.calls >= self.max_calls:
            reason = f"step cap reached ({self.max_calls} tool calls per brief)"
            await self._audit(tool, decision, "denied", reason, args)
            return SourceGap(source=source, tool=tool, reason=reason)
        self.calls += 1
        started = time.perf_counter()
        limit = timeout_s or self.source_timeouts.get(source.value, self.timeout_s)
        try:
            answer = await asyncio.wait_for(call(), timeout=limit)
        except SourceUnavailable as exc:
            return await self._gap(tool, source, decision, redact(exc.reason), args, started)
        except TimeoutError:
            return await self._gap(tool, source, decision, f"no answer within {limit:g}s", args, started)
        except Exception as exc:  # a connector bug must not sink the brief: show it as a gap
            reason = f"failed unexpectedly ({type(exc).__name__})"
            return await self._gap(tool, source, decision, reason, args, started, outcome="error")
        return _Ran(answer, decision, started)

    async def write(self, tool: str, call: WriteCall, *, args: dict[str, Any],
                    approval: ApprovedAction | None, preview: dict[str, Any]) -> WriteOutcome:
        """Run a write tool. Requires an approval claimed for execution of this tool."""
        with span("tool_call", **{"incident.key": self.brief_key, "tool.name": tool,
                                  "tool.source": tool.split(".", 1)[0]}):
            return await self._write(tool, call, args=args, approval=approval, preview=preview)

    async def _write(self, tool: str, call: WriteCall, *, args: dict[str, Any],
                     approval: ApprovedAction | None, preview: dict[str, Any]) -> WriteOutcome:
        decision = self._decide(tool, args)
        if decision.outcome == "deny":
            await self._audit(tool, decision, "denied", decision.reason, args)
            raise PolicyDenied(tool, decision.reason)
        if decision.outcome == "needs_approval" and (
            approval is None or approval.tool != tool or approval.state != "executing"
        ):
            await self._audit(tool, decision, "denied", "no approval claimed for execution", args)
            raise ApprovalRequired(tool)
        if decision.preview_only:
            await self._audit(tool, decision, "preview", "dry run: request not sent", args)
            return WriteOutcome(tool, executed=False, preview=preview)
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(call(), timeout=self.timeout_s)
        except Exception as exc:
            await self._audit(tool, decision, "error", redact(str(exc))[:300], args, started=started)
            raise
        await self._audit(tool, decision, "ok", redact(str(result))[:300], args, started=started)
        return WriteOutcome(tool, executed=True, result=result)

    def _decide(self, tool: str, args: dict[str, Any]) -> Decision:
        return self.policy.decide(tool, self.actor, args, catalog_projects=self.catalog_projects)

    async def _gap(self, tool: str, source: Source, decision: Decision, reason: str,
                   args: dict[str, Any], started: float, outcome: str = "gap") -> SourceGap:
        await self._audit(tool, decision, outcome, reason, args, started=started)
        return SourceGap(source=source, tool=tool, reason=reason)

    async def _audit(self, tool: str, decision: Decision, outcome: str, detail: str,
                     args: dict[str, Any], *, started: float | None = None, count: int = 0) -> None:
        latency = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        record = ToolCallRecord(
            brief_key=self.brief_key, tool=tool, actor=self.actor, decision=decision.outcome,
            decision_reason=decision.reason, outcome=outcome,
            detail=redact(detail), evidence_count=count, latency_ms=latency,
            args=redact_obj(args),
        )
        telemetry.tool_call(record)
        await self.audit.tool_call(record)
