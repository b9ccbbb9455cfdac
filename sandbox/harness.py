"""One scenario drafted end to end against its sandbox: what `draft`, the evals, the snapshot
tests and the benchmarks run.

The harness plays production's part with production's code: it starts the scenario's
sandbox, points real connectors at it, keys a tool runner by the incident (`bot.core.keys`)
and runs `bot.draft.flow.build_brief`. Only the CLI's scenario commands and the test and
eval harnesses reach it; the bot itself never imports the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.core.audit import MemoryAudit
from bot.core.config import Settings
from bot.core.keys import incident_key
from bot.core.models import BriefResult, ServiceEntry
from bot.core.policy import TIMED_SOURCES, default_policy
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.draft.flow import build_brief
from bot.gateway.drafter import llm_drafter
from bot.gather.connectors import Connectors
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog
from bot.slack.payload import brief_payload
from sandbox.core import RecordedRequest
from sandbox.scenario import Scenario
from sandbox.server import Sandbox

DrafterChoice = Literal["offline", "llm"]

# A scenario's run must not depend on how busy the machine is: its slowness is injected as
# explicit faults. So a system the scenario does not mean to time out gets patient timeouts (on
# a saturated 2-core CI machine a 5 s read, or a 10 s model call, to this in-process sandbox
# was seen to run out, turning evidence into a gap and failing the eval gate); one it does
# (a `timeout` fault, or a latency past the sandbox's own client timeout) keeps the sandbox's.
PATIENT_HTTP_S = 60.0
PATIENT_SOURCE_S = 120.0
PATIENT_MODEL_S = 120.0


@dataclass
class ScenarioRun:
    """What one run of a scenario produced, and what the sandbox saw of it."""

    result: BriefResult
    key: str  # the incident key every audit row of this brief is filed under
    writes: list[RecordedRequest]
    requests: list[RecordedRequest]
    audit: MemoryAudit  # the tool calls, the citation check and, for a model drafter, its model calls


def scenario_service(scenario: Scenario) -> ServiceEntry:
    return Catalog(scenario.service_entries()).resolve(scenario.alert.service)


def scenario_incident_key(scenario: Scenario) -> str:
    """The key the bot would file this scenario's incident under, asked in its service's channel."""
    return incident_key(scenario.alert.to_alert(), channel=scenario_service(scenario).slack_channel)


def meant_to_time_out(scenario: Scenario, system: str, client_timeout_s: float) -> bool:
    """Whether the scenario's faults make `system` (or one of its tools) time out on purpose."""
    faults = scenario.world.faults
    timed_out = any(fault == "timeout" for name, fault in faults.errors.items()
                    if name.split(".", 1)[0] == system)
    slow = any(ms >= client_timeout_s * 1000 for name, ms in faults.latency_ms.items()
               if name.split(".", 1)[0] == system)
    return timed_out or slow


def patient_settings(settings: Settings, scenario: Scenario) -> tuple[Settings, dict[str, float]]:
    """`settings` with patient client timeouts for every system the scenario does not time out on
    purpose, and each source's whole-read timeout for the tool runner."""
    update: dict[str, Any] = {}
    source_timeouts: dict[str, float] = {}
    for source in TIMED_SOURCES:
        current = getattr(settings, source)
        if meant_to_time_out(scenario, source, current.timeout_s):
            source_timeouts[source] = settings.source_timeout_s
        else:
            update[source] = current.model_copy(update={"timeout_s": PATIENT_HTTP_S})
            source_timeouts[source] = PATIENT_SOURCE_S
    if not meant_to_time_out(scenario, "llm", settings.llm.timeout_s):
        update["llm"] = settings.llm.model_copy(update={"timeout_s": PATIENT_MODEL_S})
    return settings.model_copy(update=update), source_timeouts


def scenario_payload(result: BriefResult, scenario: Scenario) -> dict[str, Any]:
    """The exact `chat.update` payload the bot would post for this scenario's brief."""
    channel = scenario_service(scenario).slack_channel or "C0INCIDENT"
    return brief_payload(result, incident_key=scenario_incident_key(scenario), channel=channel)


async def run_scenario(scenario: Scenario, *, drafter: DrafterChoice | Drafter = "offline",
                       llm_update: dict[str, Any] | None = None) -> ScenarioRun:
    """Start the scenario's sandbox, run the flow against it, stop the sandbox.

    ``"llm"`` drafts through the gateway against this sandbox's own (simulated) model server,
    so its model calls land in the same audit trail as the tool calls; `llm_update` changes its
    model settings (the eval's canary compare routes a task to its candidate)."""
    alert = scenario.alert.to_alert()
    service = scenario_service(scenario)
    policy = default_policy()
    key = scenario_incident_key(scenario)
    audit = MemoryAudit()
    with Sandbox(scenario) as sandbox:
        settings, source_timeouts = patient_settings(sandbox.settings(), scenario)
        chosen: Drafter
        if drafter == "llm":
            chosen = llm_drafter(settings.llm.model_copy(update=llm_update or {}), policy, audit=audit)
        elif drafter == "offline":
            chosen = OfflineDrafter()
        elif isinstance(drafter, str):
            raise ValueError(f"unknown drafter {drafter!r}: expected 'offline' or 'llm'")
        else:
            chosen = drafter
        connectors = Connectors.from_settings(settings)
        runner = ToolRunner(policy=policy, audit=audit, brief_key=key, actor=alert.requested_by,
                            timeout_s=settings.source_timeout_s, source_timeouts=source_timeouts)
        try:
            result = await build_brief(alert, service, runner=runner, connectors=connectors,
                                       now=scenario.now, drafter=chosen)
        finally:
            await connectors.aclose()
        requests = sandbox.recorder.requests()
        writes = sandbox.recorder.writes()
    # A drafter handed in with an audit sink of its own (a test's model drafter): one trail.
    gateway = getattr(chosen, "gateway", None)
    own = getattr(gateway, "audit", None)
    if isinstance(own, MemoryAudit) and own is not audit:
        audit.model_calls.extend(own.model_calls)
    return ScenarioRun(result=result, key=key, writes=writes, requests=requests, audit=audit)
