"""The tool choke point, driven directly: `ToolRunner` decides (policy, step cap), calls, times
out, redacts and audits every tool call, and turns every read failure into a `SourceGap`.

The connector side of each call is a counting coroutine (`Connector`), so a test can say that
a denied or capped call was never made; the runner itself is the real one. What a write looks
like on the wire (the sandbox's Jira receiving nothing) is in `test_write_paths.py`; here each
path is pinned by its outcome, its audit row and whether the call was reached at all.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel, Field

from bot.core.audit import MemoryAudit, ToolCallRecord
from bot.core.errors import ApprovalRequired, PolicyDenied, SourceUnavailable, WireRefused
from bot.core.models import Source
from bot.core.policy import JiraRules, Policy, default_policy, parse_policy, read_only_policy
from bot.gather.tools import ToolRunner
from tests.helpers.evidence import log
from tests.helpers.tools import FakeApproval

KEY, ACTOR = "pd:Q1", "U0ONCALL1"
METRICS, DEPLOYS, WRITE = "datadog.query_metrics", "github.list_deployments", "jira.create_issue"
EMAIL = "jane.doe@example.com"
API_KEY = "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123"
PLANTED = (EMAIL, API_KEY)


@dataclass
class Connector:
    """The connector side of one tool: answers with `answer` (or raises it) after `delay_s`,
    counting its calls and noting when it was abandoned mid-call."""

    answer: Any = field(default_factory=list)
    delay_s: float = 0.0
    calls: int = 0
    cancelled: bool = False

    async def __call__(self) -> Any:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def policy(*allowed: str, max_calls: int = 25) -> Policy:
    return parse_policy({"agent_policy": {"allowed_tools": list(allowed),
                                          "steps": {"max_tool_calls_per_brief": max_calls}}}, "test")


def runner(chosen: Policy, audit: MemoryAudit, *, timeout_s: float = 20.0) -> ToolRunner:
    return ToolRunner(policy=chosen, audit=audit, brief_key=KEY, actor=ACTOR, timeout_s=timeout_s)


def only_row(audit: MemoryAudit) -> ToolCallRecord:
    [row] = audit.tool_calls
    assert (row.brief_key, row.actor) == (KEY, ACTOR), "every row is filed under the brief and its actor"
    return row


# --- reads: denied, capped ---------------------------------------------------------------


@pytest.mark.parametrize(("tool", "why"), [
    (DEPLOYS, "read tool not listed in allowed_tools"),
    ("github.delete_repository", "unknown tool 'github.delete_repository'"),
], ids=["not-allowed", "unknown"])
async def test_a_read_the_policy_denies_is_a_gap_and_is_never_called(tool: str, why: str) -> None:
    audit, connector = MemoryAudit(), Connector()
    outcome = await runner(policy(METRICS), audit).read(tool, Source.GITHUB, connector, args={"repo": "acme/x"})

    assert connector.calls == 0
    assert outcome.evidence == []
    assert outcome.gap is not None
    assert (outcome.gap.source, outcome.gap.tool, outcome.gap.reason) == (
        Source.GITHUB, tool, f"not permitted by policy: {why}")
    row = only_row(audit)
    assert (row.tool, row.decision, row.outcome, row.decision_reason) == (tool, "deny", "denied", why)
    assert row.detail == outcome.gap.reason
    assert row.args == {"repo": "acme/x"}
    assert (row.evidence_count, row.latency_ms) == (0, 0.0)


async def test_past_the_step_cap_reads_are_gaps_that_are_never_called() -> None:
    audit = MemoryAudit()
    run = runner(policy(METRICS, DEPLOYS, max_calls=2), audit)
    denied, failing, answering, capped = (Connector(), Connector(SourceUnavailable("datadog", "HTTP 500")),
                                          Connector([log("boom", 3, -2)]), Connector())

    # A read the policy denies is never made, so it does not use up the cap...
    await run.read("jira.search", Source.JIRA, denied)
    # ...a read that fails was made, so it does.
    assert (await run.read(METRICS, Source.DATADOG, failing)).gap is not None
    assert (await run.read(DEPLOYS, Source.GITHUB, answering)).evidence
    over = [await run.read(tool, source, capped) for tool, source in
            ((METRICS, Source.DATADOG), (DEPLOYS, Source.GITHUB))]

    assert (denied.calls, failing.calls, answering.calls, capped.calls) == (0, 1, 1, 0)
    reason = "step cap reached (2 tool calls per brief)"
    assert [(o.gap.source, o.gap.tool, o.gap.reason) for o in over if o.gap] == [
        (Source.DATADOG, METRICS, reason), (Source.GITHUB, DEPLOYS, reason)]
    assert [(r.tool, r.decision, r.outcome) for r in audit.tool_calls] == [
        ("jira.search", "deny", "denied"), (METRICS, "allow", "gap"), (DEPLOYS, "allow", "ok"),
        (METRICS, "allow", "denied"), (DEPLOYS, "allow", "denied")]
    assert [r.detail for r in audit.tool_calls[-2:]] == [reason, reason]


async def test_a_caller_may_set_its_own_step_cap() -> None:
    audit, connector = MemoryAudit(), Connector()
    run = ToolRunner(policy=policy(METRICS, max_calls=1), audit=audit, brief_key=KEY, actor=ACTOR, max_calls=3)
    outcomes = [await run.read(METRICS, Source.DATADOG, connector) for _ in range(4)]

    assert connector.calls == 3
    assert [o.gap.reason if o.gap else "ok" for o in outcomes] == ["ok", "ok", "ok",
                                                                    "step cap reached (3 tool calls per brief)"]


# --- reads: slow, unavailable, crashing -------------------------------------------------


async def test_a_call_slower_than_the_timeout_is_abandoned_as_a_gap() -> None:
    audit, slow = MemoryAudit(), Connector([log("late", 1, -1)], delay_s=30)
    outcome = await runner(policy(METRICS), audit, timeout_s=1.0).read(METRICS, Source.DATADOG, slow)

    assert outcome.gap is not None
    assert outcome.gap.reason == "no answer within 1s"
    assert outcome.evidence == []
    assert slow.cancelled, "the slow call is cancelled, not left running behind the brief"
    row = only_row(audit)
    assert (row.decision, row.outcome, row.detail) == ("allow", "gap", "no answer within 1s")
    assert 900 <= row.latency_ms < 10_000, "the audit row shows how long the source was waited for"


async def test_a_timeout_given_for_one_call_wins_over_the_runners() -> None:
    audit, slow = MemoryAudit(), Connector(delay_s=30)
    outcome = await runner(policy(METRICS), audit, timeout_s=60.0).read(METRICS, Source.DATADOG, slow,
                                                                         timeout_s=1.0)
    assert outcome.gap is not None
    assert outcome.gap.reason == "no answer within 1s"


@pytest.mark.parametrize(("error", "shown"), [
    (SourceUnavailable("datadog", f"HTTP 401: token {API_KEY} rejected for {EMAIL}", tool=METRICS),
     "HTTP 401: token [REDACTED:api_key] rejected for [REDACTED:email]"),
    (WireRefused("datadog", "POST", f"/api/v1/users/{EMAIL}"),
     "refused POST /api/v1/users/[REDACTED:email]: not in the read-only allowlist"),
], ids=["unavailable", "refused-at-the-wire"])
async def test_an_unavailable_source_is_a_gap_with_its_reason_redacted(error: SourceUnavailable,
                                                                        shown: str) -> None:
    audit, connector = MemoryAudit(), Connector(error)
    outcome = await runner(policy(METRICS), audit).read(METRICS, Source.DATADOG, connector)

    assert connector.calls == 1
    assert outcome.gap is not None
    assert (outcome.gap.source, outcome.gap.tool, outcome.gap.reason) == (Source.DATADOG, METRICS, shown)
    row = only_row(audit)
    assert (row.decision, row.outcome, row.detail) == ("allow", "gap", shown)
    assert row.latency_ms > 0


@pytest.mark.parametrize("error", [KeyError(EMAIL), ZeroDivisionError(), RuntimeError(f"bad json for {EMAIL}")],
                         ids=["KeyError", "ZeroDivisionError", "RuntimeError"])
async def test_a_connector_bug_is_a_gap_never_an_exception(error: Exception) -> None:
    audit, connector = MemoryAudit(), Connector(error)
    outcome = await runner(policy(METRICS), audit).read(METRICS, Source.DATADOG, connector)

    name = type(error).__name__
    assert outcome.gap is not None
    assert outcome.gap.reason == f"failed unexpectedly ({name})", "the type is shown, never the message"
    row = only_row(audit)
    assert (row.decision, row.outcome, row.detail) == ("allow", "error", f"failed unexpectedly ({name})")
    assert EMAIL not in row.model_dump_json()


async def test_cancelling_the_brief_is_not_swallowed_into_a_gap() -> None:
    audit, slow = MemoryAudit(), Connector(delay_s=30)
    task = asyncio.create_task(runner(policy(METRICS), audit).read(METRICS, Source.DATADOG, slow))
    while slow.calls == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.cancelled


# --- redaction ---------------------------------------------------------------------------


async def test_evidence_and_args_come_back_and_are_audited_redacted() -> None:
    audit = MemoryAudit()
    planted = log(f"login failed for {EMAIL} with key {API_KEY}", 12, -3)
    connector = Connector([planted])
    outcome = await runner(policy(METRICS), audit).read(
        METRICS, Source.DATADOG, connector, args={"query": f"user:{EMAIL}", "tags": [f"key:{API_KEY}"]})

    assert outcome.gap is None
    [item] = outcome.evidence
    assert item.id == planted.id, "the id still names the same record"
    assert item.data["count"] == 12, "what is not secret is kept"
    assert "[REDACTED:email]" in item.excerpt
    row = only_row(audit)
    assert (row.decision, row.outcome, row.evidence_count) == ("allow", "ok", 1)
    assert row.args == {"query": "user:[REDACTED:email]", "tags": ["key:[REDACTED:api_key]"]}
    seen = item.model_dump_json() + row.model_dump_json()
    for secret in PLANTED:
        assert secret in planted.model_dump_json(), "the connector did hand over the secret"
        assert secret not in seen


# --- lookups: a typed answer through the same guards ---------------------------------------


class Listing(BaseModel):
    names: list[str]
    owner: str = Field(default="", pattern=r"^[^\[]*$")  # no brackets, as a mask has


async def test_a_lookup_answers_its_model_redacted_and_audited_with_its_count() -> None:
    audit = MemoryAudit()
    connector = Connector(Listing(names=["billing", f"owned by {EMAIL}"]))
    outcome = await runner(policy(METRICS), audit).lookup(METRICS, Source.DATADOG, connector,
                                                          count=lambda found: len(found.names))
    assert outcome.gap is None
    assert outcome.value == Listing(names=["billing", "owned by [REDACTED:email]"])
    row = only_row(audit)
    assert (row.decision, row.outcome, row.detail, row.evidence_count) == ("allow", "ok", "2 items", 2)


async def test_a_lookup_the_policy_denies_is_a_gap_and_is_never_called() -> None:
    audit, connector = MemoryAudit(), Connector(Listing(names=[]))
    outcome = await runner(policy(METRICS), audit).lookup(DEPLOYS, Source.GITHUB, connector,
                                                          count=lambda found: len(found.names))
    assert (outcome.value, connector.calls) == (None, 0)
    assert outcome.gap is not None
    assert outcome.gap.reason == "not permitted by policy: read tool not listed in allowed_tools"
    assert only_row(audit).outcome == "denied"


@pytest.mark.parametrize(("answer", "outcome"), [
    (SourceUnavailable("datadog", "HTTP 500", tool=METRICS), ("gap", "HTTP 500")),
    (KeyError(EMAIL), ("error", "failed unexpectedly (KeyError)")),
    # The mask breaks a constraint the address met: the model refuses it, the caller gets a gap.
    (Listing(names=[], owner=EMAIL), ("error", "failed unexpectedly (ValidationError)")),
], ids=["unavailable", "connector-bug", "mask-breaks-the-model"])
async def test_a_failed_lookup_is_a_gap_never_an_exception(answer: Any, outcome: tuple[str, str]) -> None:
    audit = MemoryAudit()
    found = await runner(policy(METRICS), audit).lookup(METRICS, Source.DATADOG, Connector(answer),
                                                        count=lambda listing: len(listing.names))
    assert found.value is None
    assert found.gap is not None
    assert found.gap.reason == outcome[1]
    row = only_row(audit)
    assert (row.outcome, row.detail) == outcome
    assert EMAIL not in row.model_dump_json()


# --- writes ------------------------------------------------------------------------------


async def _write(chosen: Policy, audit: MemoryAudit, connector: Connector, approval: FakeApproval | None,
                 project: str = "CHK") -> Any:
    return await runner(chosen, audit).write(
        WRITE, connector, args={"project": project, "reporter": EMAIL}, approval=approval,
        preview={"would": "POST /rest/api/2/issue"})


CLAIMED = FakeApproval("a1", WRITE, "executing")


@pytest.mark.parametrize(("chosen", "why"), [
    (read_only_policy(), "write tool not listed in write_tools"),
    (default_policy().model_copy(update={"default_mode": "read_only", "approvals": {WRITE: "none"}}),
     "policy is in read_only mode: a write needs an approval, and approvals is none"),
], ids=["read-only-file", "read-only-without-approval"])
async def test_in_read_only_a_write_is_denied_audited_and_never_called(chosen: Policy, why: str) -> None:
    audit, connector = MemoryAudit(), Connector({"key": "CHK-1"})
    with pytest.raises(PolicyDenied, match=why):
        await _write(chosen, audit, connector, CLAIMED)
    assert connector.calls == 0
    row = only_row(audit)
    assert (row.tool, row.decision, row.outcome, row.detail) == (WRITE, "deny", "denied", why)
    assert row.args["reporter"] == "[REDACTED:email]"


async def test_in_read_only_a_listed_write_runs_only_with_a_claimed_approval() -> None:
    audit, connector = MemoryAudit(), Connector({"key": "CHK-1"})
    chosen = default_policy().model_copy(update={"default_mode": "read_only"})
    outcome = await _write(chosen, audit, connector, CLAIMED)
    assert (outcome.executed, connector.calls) == (True, 1)
    assert (only_row(audit).decision, only_row(audit).outcome) == ("needs_approval", "ok")


async def test_without_allowed_projects_a_ticket_goes_only_to_a_catalog_project() -> None:
    chosen = default_policy().model_copy(update={"jira": JiraRules()})
    for project, catalog, executed in (("CHK", ["CHK"], True), ("PROD", ["CHK"], False), ("CHK", [], False)):
        audit, connector = MemoryAudit(), Connector({"key": f"{project}-1"})
        writer = ToolRunner(policy=chosen, audit=audit, brief_key="pd:P1", actor="U0ONCALL1",
                            catalog_projects=catalog)
        call = writer.write(WRITE, connector, args={"project": project}, approval=CLAIMED, preview={})
        if executed:
            assert (await call).executed
        else:
            with pytest.raises(PolicyDenied, match="not the project of any service in the catalog"):
                await call
        assert connector.calls == int(executed)


async def test_a_project_outside_the_allowed_list_is_denied_even_with_a_claimed_approval() -> None:
    audit, connector = MemoryAudit(), Connector({"key": "PROD-1"})
    with pytest.raises(PolicyDenied, match=r"'PROD' is not in jira\.allowed_projects"):
        await _write(default_policy(), audit, connector, CLAIMED, project="PROD")
    assert connector.calls == 0
    assert (only_row(audit).decision, only_row(audit).outcome) == ("deny", "denied")


@pytest.mark.parametrize("approval", [
    None, FakeApproval("a1", WRITE, "approved"), FakeApproval("a1", "other.tool", "executing")],
    ids=["none", "approved-not-claimed", "claimed-for-another-tool"])
@pytest.mark.parametrize("mode", ["execute", "dry_run", "read_only"])
async def test_without_an_approval_claimed_for_this_tool_a_write_needs_one(
        approval: FakeApproval | None, mode: str) -> None:
    """Dry run included: even a preview is shown only to someone holding a claimed approval."""
    audit, connector = MemoryAudit(), Connector({"key": "CHK-1"})
    chosen = default_policy().model_copy(update={"default_mode": mode})
    with pytest.raises(ApprovalRequired):
        await _write(chosen, audit, connector, approval)
    assert connector.calls == 0
    row = only_row(audit)
    assert (row.decision, row.outcome, row.detail) == ("needs_approval", "denied",
                                                       "no approval claimed for execution")


async def test_dry_run_previews_and_never_calls() -> None:
    audit, connector = MemoryAudit(), Connector({"key": "CHK-1"})
    dry = default_policy().model_copy(update={"default_mode": "dry_run"})
    outcome = await _write(dry, audit, connector, CLAIMED)
    assert connector.calls == 0
    assert (outcome.executed, outcome.preview, outcome.result) == (False, {"would": "POST /rest/api/2/issue"}, None)
    row = only_row(audit)
    assert (row.decision, row.outcome) == ("needs_approval", "preview")


async def test_a_claimed_write_runs_once_and_its_answer_is_audited_redacted() -> None:
    audit, connector = MemoryAudit(), Connector({"key": "CHK-1", "reporter": EMAIL})
    outcome = await _write(default_policy(), audit, connector, CLAIMED)
    assert connector.calls == 1
    assert (outcome.executed, outcome.result) == (True, {"key": "CHK-1", "reporter": EMAIL})
    row = only_row(audit)
    assert (row.decision, row.outcome) == ("needs_approval", "ok")
    assert "CHK-1" in row.detail
    assert EMAIL not in json.dumps(row.model_dump(mode="json"))


async def test_a_failing_write_raises_and_is_audited_as_an_error() -> None:
    """Unlike a read, a write that fails is not a gap: the ticketing flow must know it failed."""
    audit, connector = MemoryAudit(), Connector(SourceUnavailable("jira", f"HTTP 500 for {EMAIL}"))
    with pytest.raises(SourceUnavailable):
        await _write(default_policy(), audit, connector, CLAIMED)
    assert connector.calls == 1
    row = only_row(audit)
    assert (row.decision, row.outcome) == ("needs_approval", "error")
    assert "HTTP 500 for [REDACTED:email]" in row.detail
