"""Finding 10: a Jira create whose answer never came. Jira (the sandbox, over real HTTP) files
the issue after the client has given up; the bot must look for it before saying anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.errors import SourceUnavailable, WireRefused
from bot.core.policy import default_policy
from bot.runtime import Runtime
from bot.store.approvals import ApprovalState
from bot.tickets import filing
from bot.tickets.filing import TicketFields, approve_and_file
from sandbox.scenario import Scenario
from sandbox.server import Sandbox
from tests.helpers.faults import quick
from tests.helpers.scenarios import with_faults
from tests.helpers.slack_app import sandboxed_runtime

KEY = "pd:UNCERTAIN"


@pytest.fixture
async def world(request: pytest.FixtureRequest, checkout: Scenario,
                tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Runtime]]:
    scenario = with_faults(checkout, **request.param)
    async with sandboxed_runtime(scenario, tmp_path / "filing.db", policy=default_policy()) as (sb, rt):
        # One attempt, one second: the client gives up long before the slow create lands.
        rt.settings = rt.settings.model_copy(update={"jira": quick(sb, "jira", max_retries=0)})
        await rt.store.claim_incident(key=KEY, service="checkout-api", title="t", channel="C0INCCHK")
        yield sb, rt


async def _file(rt: Runtime) -> filing.FileOutcome:
    approval = await rt.approvals.propose(incident_key=KEY, brief_version=1, requested_by="U0ONCALL1",
                                          proposal={"project": "CHK", "summary": "checkout-api 5xx",
                                                    "description": "cited", "priority": "High"})
    fields = TicketFields.from_proposal(approval.proposal)
    return await approve_and_file(rt, approval.id, "U0ONCALL1", fields)


@pytest.mark.parametrize("world", [{"latency_ms": {"jira.create_issue": 2500}}], indirect=True)
async def test_a_create_that_lands_after_the_timeout_is_reported_as_filed(world: tuple[Sandbox, Runtime]) -> None:
    sb, rt = world
    outcome = await _file(rt)
    created = sb.system("jira").created
    assert len(created) == 1, "one ticket, filed once"
    assert (outcome.status, outcome.key) == ("filed", created[0]["key"]), outcome.message
    [approval] = await rt.approvals.list_for_incident(KEY)
    assert (approval.state, approval.jira_key) == (ApprovalState.DONE, created[0]["key"])


@pytest.mark.parametrize("world", [{"errors": {"jira.create_issue": "timeout"}}], indirect=True)
async def test_a_create_with_no_answer_says_it_may_have_been_created(world: tuple[Sandbox, Runtime],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sb, rt = world
    monkeypatch.setattr(filing, "LANDED_CHECKS_S", (0.0, 0.2))  # a shorter look: it never lands here
    outcome = await _file(rt)
    assert outcome.status == "uncertain"
    assert "may have been created" in outcome.message
    assert "did not accept" not in outcome.message
    [approval] = await rt.approvals.list_for_incident(KEY)
    assert approval.state is ApprovalState.EXECUTING, "left for recovery, which looks for the label first"
    assert [r for r in sb.ctx.recorder.writes("jira") if r.method == "POST"], "the create was sent"


def test_an_unknown_outcome_is_not_reported_as_a_refusal() -> None:
    """The classification behind the two tests above, for the cases the sandbox cannot stage."""
    assert filing._definitely_not_created(ValueError("not a Jira project key"))
    assert filing._definitely_not_created(WireRefused("jira", "POST", "/rest/api/2/search"))
    assert filing._definitely_not_created(SourceUnavailable("jira", "HTTP 400: summary is required"))
    assert filing._definitely_not_created(SourceUnavailable("jira", "HTTP 429"))
    assert not filing._definitely_not_created(SourceUnavailable("jira", "timed out"))
    assert not filing._definitely_not_created(SourceUnavailable("jira", "HTTP 503"))
    assert not filing._definitely_not_created(TimeoutError())
