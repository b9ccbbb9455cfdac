"""No code path reaches a write tool without an approval record claimed for execution.

Dynamic: the choke point refuses every write without such an approval, in every mode, and
the sandbox's Jira receives nothing. Static: the only code that constructs the Jira writer
or calls `create_issue` is the ticketing flow, inside `ToolRunner.write`.
"""

from __future__ import annotations

import pytest

from bot.core.audit import MemoryAudit
from bot.core.errors import ApprovalRequired, PolicyDenied
from bot.core.policy import Policy, default_policy, read_only_policy
from bot.gather.tools import ToolRunner
from connectors.jira import JiraWriter
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.tools import FakeApproval

TOOL = "jira.create_issue"


def _runner(policy: Policy, audit: MemoryAudit) -> ToolRunner:
    return ToolRunner(policy=policy, audit=audit, brief_key="pd:TEST", actor="U0ONCALL1")


async def _attempt(sb: Sandbox, policy: Policy, approval: FakeApproval | None, audit: MemoryAudit) -> object:
    writer = JiraWriter(sb.settings().jira)
    try:
        return await _runner(policy, audit).write(
            TOOL, lambda: writer.create_issue("CHK", "checkout 5xx", "cited", "High", ["incident-brief"]),
            args={"project": "CHK"}, approval=approval, preview={"would": "POST /rest/api/2/issue"})
    finally:
        await writer.aclose()


@pytest.mark.parametrize("approval", [
    None,
    FakeApproval("a1", TOOL, "proposed"),
    FakeApproval("a1", TOOL, "approved"),  # approved but not claimed: someone else may be executing
    FakeApproval("a1", TOOL, "done"),
    FakeApproval("a1", "other.tool", "executing"),
], ids=["none", "proposed", "approved", "done", "other-tool"])
async def test_a_write_without_a_claimed_approval_never_leaves_the_process(
        checkout: Scenario, approval: FakeApproval | None) -> None:
    audit = MemoryAudit()
    with Sandbox(checkout, systems=["jira"]) as sb:
        with pytest.raises(ApprovalRequired):
            await _attempt(sb, default_policy(), approval, audit)
        assert sb.recorder.writes("jira") == []
    assert [(r.tool, r.outcome) for r in audit.tool_calls] == [(TOOL, "denied")]


async def test_read_only_mode_denies_the_write_even_with_an_approval(checkout: Scenario) -> None:
    audit = MemoryAudit()
    with Sandbox(checkout, systems=["jira"]) as sb:
        with pytest.raises(PolicyDenied, match="not listed in write_tools"):
            await _attempt(sb, read_only_policy(), FakeApproval("a1", TOOL, "executing"), audit)
        assert sb.recorder.writes("jira") == []


async def test_read_only_mode_writes_only_behind_an_approval(checkout: Scenario) -> None:
    # read_only: nothing is written by the bot itself; a listed write runs after a person approves.
    frozen = default_policy().model_copy(update={"default_mode": "read_only"})
    unattended = frozen.model_copy(update={"approvals": {TOOL: "none"}})
    with Sandbox(checkout, systems=["jira"]) as sb:
        with pytest.raises(ApprovalRequired):
            await _attempt(sb, frozen, None, MemoryAudit())
        with pytest.raises(PolicyDenied, match="read_only"):
            await _attempt(sb, unattended, FakeApproval("a1", TOOL, "executing"), MemoryAudit())
        assert sb.recorder.writes("jira") == []
        await _attempt(sb, frozen, FakeApproval("a1", TOOL, "executing"), MemoryAudit())
        assert len([r for r in sb.recorder.writes("jira") if r.method == "POST"]) == 1


async def test_a_disallowed_project_is_denied_by_policy(checkout: Scenario) -> None:
    policy = default_policy()
    assert policy.decide(TOOL, "U1", {"project": "PROD"}).outcome == "deny"
    assert policy.decide(TOOL, "U1", {"project": "CHK"}).outcome == "needs_approval"


async def test_dry_run_returns_the_preview_and_sends_nothing(checkout: Scenario) -> None:
    audit = MemoryAudit()
    dry = default_policy().model_copy(update={"default_mode": "dry_run"})
    with Sandbox(checkout, systems=["jira"]) as sb:
        outcome = await _attempt(sb, dry, FakeApproval("a1", TOOL, "executing"), audit)
        assert sb.recorder.writes("jira") == []
    assert outcome.executed is False
    assert outcome.preview == {"would": "POST /rest/api/2/issue"}
    assert audit.tool_calls[-1].outcome == "preview"


async def test_with_a_claimed_approval_exactly_one_ticket_is_filed(checkout: Scenario) -> None:
    audit = MemoryAudit()
    with Sandbox(checkout, systems=["jira"]) as sb:
        outcome = await _attempt(sb, default_policy(), FakeApproval("a1", TOOL, "executing"), audit)
        assert len([r for r in sb.recorder.writes("jira") if r.method == "POST"]) == 1
    assert outcome.executed is True
    assert audit.tool_calls[-1].decision == "needs_approval"
    assert audit.tool_calls[-1].outcome == "ok"
