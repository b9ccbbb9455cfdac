"""The approval state machine on SQLite and PostgreSQL: the database decides every race.

Concurrency is real: several coroutines on separate pooled connections (and, for the replica
cases, separate engines) hit the same row at once; exactly one of them may win.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.models import TicketProposal
from bot.store.approvals import (
    Approval,
    Approvals,
    ApprovalState,
    ApprovalStateError,
    SelfApprovalForbidden,
    UnknownApproval,
    idempotency_key,
    quorum_met,
)
from bot.store.db import create_engine_for, session_factory
from tests.helpers.db import Clock

PROPOSAL = TicketProposal(project="CHK", summary="checkout-api 5xx after v2.3.1", description="cited",
                          citations=["deploy-a5999c"])


@pytest.fixture
def machine(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> Approvals:
    return Approvals(sessions, clock=clock)


@pytest.fixture
async def replica(db_url: str, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> AsyncIterator[Approvals]:
    """A second process's view of the same database: its own engine and connection pool."""
    engine = create_engine_for(db_url)
    try:
        yield Approvals(session_factory(engine), clock=clock)
    finally:
        await engine.dispose()


async def _propose(machine: Approvals, incident: str = "pd:Q1", requested_by: str | None = "U1",
                   proposal: TicketProposal = PROPOSAL, version: int = 1) -> Approval:
    return await machine.propose(incident_key=incident, brief_version=version, proposal=proposal,
                                 requested_by=requested_by)


async def _approved(machine: Approvals) -> Approval:
    proposed = await _propose(machine)
    return await machine.approve(proposed.id, "U2", forbid_self_approval=True)


# --- propose ---------------------------------------------------------------------------------


async def test_a_proposal_starts_proposed_with_a_stable_idempotency_key(machine: Approvals) -> None:
    proposed = await _propose(machine)
    assert proposed.state is ApprovalState.PROPOSED
    assert proposed.approvers == []
    assert proposed.proposal == PROPOSAL.model_dump(mode="json")
    assert proposed.idempotency_key == idempotency_key("pd:Q1", 1)
    assert proposed.idempotency_key.startswith("ib-")
    assert " " not in proposed.idempotency_key, "it is also a Jira label"
    assert await machine.get(proposed.id) == proposed


async def test_concurrent_proposals_of_the_same_ticket_are_one_approval(machine: Approvals,
                                                                        replica: Approvals) -> None:
    proposals = await asyncio.gather(*(_propose(m) for m in (machine, replica) * 4))
    assert len({p.id for p in proposals}) == 1
    assert len(await machine.list_for_incident("pd:Q1")) == 1


async def test_another_brief_version_or_incident_is_a_different_approval(machine: Approvals) -> None:
    first = await _propose(machine)
    other_version = await _propose(machine, version=2)
    other_incident = await _propose(machine, incident="pd:Q2")
    assert len({first.id, other_version.id, other_incident.id}) == 3
    assert len({first.idempotency_key, other_version.idempotency_key, other_incident.idempotency_key}) == 3


async def test_other_content_for_the_same_brief_version_is_the_same_approval(machine: Approvals) -> None:
    """Finding 1: the approval's identity is the brief version's, not the editable text's."""
    first = await _propose(machine)
    other_summary = await _propose(machine, proposal=PROPOSAL.model_copy(update={"summary": "other"}))
    assert other_summary.id == first.id
    assert other_summary.proposal == first.proposal, "the first proposal is kept, not overwritten"


async def test_an_edited_then_filed_approval_is_found_by_a_stale_click(machine: Approvals) -> None:
    """Finding 1: edit in the modal, file; the original button (a stale client) proposes the
    original text again and finds the filed approval, not a fresh one to file twice."""
    proposed = await _propose(machine)
    await machine.revise(proposed.id, PROPOSAL.model_copy(update={"summary": "edited in the modal"}))
    approved = await machine.approve(proposed.id, "U2", forbid_self_approval=True)
    await machine.claim_for_execution(approved.id)
    await machine.complete(approved.id, "CHK-101")
    stale = await _propose(machine)
    assert stale.id == proposed.id
    assert (stale.state, stale.jira_key) == (ApprovalState.DONE, "CHK-101")


async def test_a_rejected_or_failed_proposal_can_be_proposed_again(machine: Approvals) -> None:
    first = await _propose(machine)
    await machine.reject(first.id, by="U2", reason="duplicate of CHK-7")
    second = await _propose(machine)
    assert second.id != first.id
    assert second.idempotency_key == first.idempotency_key
    await machine.approve(second.id, "U2", forbid_self_approval=True)
    await machine.claim_for_execution(second.id)
    await machine.fail(second.id, "Jira 503")
    third = await _propose(machine)
    assert third.id not in (first.id, second.id)
    assert third.state is ApprovalState.PROPOSED


async def test_a_done_proposal_is_not_proposed_again(machine: Approvals) -> None:
    approved = await _approved(machine)
    await machine.claim_for_execution(approved.id)
    await machine.complete(approved.id, "CHK-101")
    again = await _propose(machine)
    assert again.id == approved.id
    assert again.state is ApprovalState.DONE
    assert again.jira_key == "CHK-101"


# --- approve ---------------------------------------------------------------------------------


async def test_a_double_click_approves_once(machine: Approvals, replica: Approvals) -> None:
    proposed = await _propose(machine)
    results = await asyncio.gather(*(m.approve(proposed.id, "U2", forbid_self_approval=True)
                                     for m in (machine, replica) * 3))
    assert {r.state for r in results} == {ApprovalState.APPROVED}
    final = await machine.get(proposed.id)
    assert final.approvers == ["U2"]
    assert final.approved_at is not None


async def test_two_approvers_at_once_under_the_two_person_rule(machine: Approvals, replica: Approvals) -> None:
    proposed = await _propose(machine)
    await asyncio.gather(*(m.approve(proposed.id, who, required_approvers=2, forbid_self_approval=False)
                           for m, who in ((machine, "U2"), (replica, "U3"), (machine, "U4"), (replica, "U2"))))
    final = await machine.get(proposed.id)
    assert final.state is ApprovalState.APPROVED
    # The second distinct approver completed the quorum; later ones found it already approved.
    assert len(final.approvers) == 2
    assert len(set(final.approvers)) == 2


async def test_the_requester_alone_never_meets_the_two_person_rule(machine: Approvals) -> None:
    proposed = await _propose(machine, requested_by="U1")
    alone = await machine.approve(proposed.id, "U1", required_approvers=2, forbid_self_approval=False)
    assert alone.state is ApprovalState.PROPOSED
    again = await machine.approve(proposed.id, "U1", required_approvers=2, forbid_self_approval=False)
    assert again.state is ApprovalState.PROPOSED
    assert again.approvers == ["U1"]
    with pytest.raises(ApprovalStateError, match=r"cannot claim.*'proposed'"):
        await machine.claim_for_execution(proposed.id)
    both = await machine.approve(proposed.id, "U2", required_approvers=2, forbid_self_approval=False)
    assert both.state is ApprovalState.APPROVED
    assert both.approvers == ["U1", "U2"]


async def test_two_people_besides_the_requester_meet_the_two_person_rule(machine: Approvals) -> None:
    proposed = await _propose(machine, requested_by="U1")
    first = await machine.approve(proposed.id, "U2", required_approvers=2, forbid_self_approval=True)
    assert first.state is ApprovalState.PROPOSED
    second = await machine.approve(proposed.id, "U3", required_approvers=2, forbid_self_approval=True)
    assert second.state is ApprovalState.APPROVED


async def test_self_approval_is_refused_when_forbidden(machine: Approvals) -> None:
    proposed = await _propose(machine, requested_by="U1")
    with pytest.raises(SelfApprovalForbidden, match="U1 requested this and may not approve it"):
        await machine.approve(proposed.id, "U1", forbid_self_approval=True)
    assert (await machine.get(proposed.id)).approvers == []
    allowed = await machine.approve(proposed.id, "U1", forbid_self_approval=False)
    assert allowed.state is ApprovalState.APPROVED


def test_quorum_rule() -> None:
    assert quorum_met(["U1"], "U1", 1)
    assert not quorum_met(["U1"], "U2", 2)
    assert not quorum_met(["U1", "U1"], "U1", 2)
    assert quorum_met(["U1", "U2"], "U1", 2)
    assert quorum_met(["U2", "U3"], "U1", 2)
    assert quorum_met(["U2", "U3"], None, 2)


# --- claim, complete, fail -------------------------------------------------------------------


async def test_exactly_one_concurrent_claim_wins(machine: Approvals, replica: Approvals) -> None:
    approved = await _approved(machine)
    claims = await asyncio.gather(*(m.claim_for_execution(approved.id) for m in (machine, replica) * 4))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].state is ApprovalState.EXECUTING
    assert winners[0].claimed_at is not None


async def test_the_whole_click_path_files_once(machine: Approvals, replica: Approvals) -> None:
    """Several handlers each run approve -> claim -> (create) -> complete, as a double click does."""
    proposed = await _propose(machine)
    created: list[str] = []

    async def click(m: Approvals, n: int) -> None:
        await m.approve(proposed.id, "U2", forbid_self_approval=True)
        claimed = await m.claim_for_execution(proposed.id)
        if claimed is not None:
            created.append(f"CHK-{n}")
            await m.complete(claimed.id, f"CHK-{n}")

    await asyncio.gather(*(click(m, n) for n, m in enumerate((machine, replica) * 3)))
    assert len(created) == 1
    done = await machine.get(proposed.id)
    assert done.state is ApprovalState.DONE
    assert done.jira_key == created[0]
    assert done.finished_at is not None


async def test_a_failure_is_recorded_and_final(machine: Approvals) -> None:
    approved = await _approved(machine)
    await machine.claim_for_execution(approved.id)
    failed = await machine.fail(approved.id, "Jira answered 400: project CHK not found")
    assert failed.state is ApprovalState.FAILED
    assert failed.error == "Jira answered 400: project CHK not found"
    assert await machine.claim_for_execution(approved.id) is None, "a failed claim is someone else's result"
    with pytest.raises(ApprovalStateError, match=r"cannot approve.*'failed'"):
        await machine.approve(approved.id, "U3", forbid_self_approval=True)


@pytest.mark.parametrize("action", ["complete", "fail"])
async def test_finishing_needs_a_claim(machine: Approvals, action: str) -> None:
    approved = await _approved(machine)
    finish = machine.complete(approved.id, "CHK-1") if action == "complete" else machine.fail(approved.id, "boom")
    with pytest.raises(ApprovalStateError, match=f"cannot {action}: not allowed from state 'approved'"):
        await finish


async def test_a_done_approval_cannot_be_finished_again(machine: Approvals) -> None:
    approved = await _approved(machine)
    await machine.claim_for_execution(approved.id)
    await machine.complete(approved.id, "CHK-1")
    with pytest.raises(ApprovalStateError, match="'done'"):
        await machine.complete(approved.id, "CHK-2")
    with pytest.raises(ApprovalStateError, match="'done'"):
        await machine.fail(approved.id, "late failure")
    assert (await machine.get(approved.id)).jira_key == "CHK-1"


async def test_rejected_is_final(machine: Approvals) -> None:
    proposed = await _propose(machine)
    rejected = await machine.reject(proposed.id, by="U2", reason="not a bug")
    assert rejected.state is ApprovalState.REJECTED
    assert rejected.error == "rejected by U2: not a bug"
    with pytest.raises(ApprovalStateError, match=r"cannot approve.*'rejected'"):
        await machine.approve(proposed.id, "U3", forbid_self_approval=True)
    with pytest.raises(ApprovalStateError, match=r"cannot claim.*'rejected'"):
        await machine.claim_for_execution(proposed.id)
    with pytest.raises(ApprovalStateError, match=r"cannot reject.*'rejected'"):
        await machine.reject(proposed.id, by="U2")


async def test_an_approved_proposal_cannot_be_rejected(machine: Approvals) -> None:
    approved = await _approved(machine)
    with pytest.raises(ApprovalStateError, match=r"cannot reject.*'approved'"):
        await machine.reject(approved.id, by="U3")


async def test_unknown_approvals_and_bad_arguments(machine: Approvals) -> None:
    with pytest.raises(UnknownApproval, match="no approval 'nope'"):
        await machine.get("nope")
    with pytest.raises(UnknownApproval):
        await machine.claim_for_execution("nope")
    proposed = await _propose(machine)
    with pytest.raises(ValueError, match="required_approvers"):
        await machine.approve(proposed.id, "U2", required_approvers=0, forbid_self_approval=False)


# --- revise ----------------------------------------------------------------------------------


async def test_revising_drops_earlier_approvals_and_keeps_the_key(machine: Approvals) -> None:
    proposed = await _propose(machine)
    half = await machine.approve(proposed.id, "U2", required_approvers=2, forbid_self_approval=True)
    assert half.approvers == ["U2"]
    edited = PROPOSAL.model_copy(update={"summary": "checkout-api 5xx: roll back v2.3.1"})
    revised = await machine.revise(proposed.id, edited)
    assert revised.approvers == []
    assert revised.proposal["summary"] == "checkout-api 5xx: roll back v2.3.1"
    assert revised.idempotency_key == proposed.idempotency_key == idempotency_key("pd:Q1", 1)
    assert revised.revision > half.revision


async def test_revising_after_approval_is_refused(machine: Approvals) -> None:
    first = await _propose(machine)
    approved = await machine.approve(first.id, "U2", forbid_self_approval=True)
    with pytest.raises(ApprovalStateError, match=r"cannot revise.*'approved'"):
        await machine.revise(approved.id, PROPOSAL.model_copy(update={"summary": "late edit"}))


# --- restart between claim and create --------------------------------------------------------


async def test_a_restart_between_claim_and_create_is_found_and_reclaimed(
        db_url: str, machine: Approvals, clock: Clock) -> None:
    approved = await _approved(machine)
    claimed = await machine.claim_for_execution(approved.id)
    assert claimed is not None
    # The process dies here. A new one starts with its own engine on the same database.
    engine = create_engine_for(db_url)
    try:
        restarted = Approvals(session_factory(engine), clock=clock)
        assert await restarted.recover_stuck(clock()) == [], "a claim made this instant is not stuck yet"
        clock.advance(timedelta(minutes=10))
        cutoff = clock() - timedelta(minutes=5)
        stuck = await restarted.recover_stuck(cutoff)
        assert [a.id for a in stuck] == [approved.id]
        assert stuck[0].idempotency_key == approved.idempotency_key, "what the Jira label search uses"
        # Jira has no issue with that label: put it back and claim again, once.
        reset = await restarted.reset_to_approved(approved.id, claimed_before=cutoff)
        assert reset.state is ApprovalState.APPROVED
        assert reset.claimed_at is None
        claims = await asyncio.gather(*(restarted.claim_for_execution(approved.id) for _ in range(4)))
        assert len([c for c in claims if c is not None]) == 1
        done = await restarted.complete(approved.id, "CHK-9")
        assert done.state is ApprovalState.DONE
        assert await restarted.recover_stuck(clock() + timedelta(days=1)) == []
    finally:
        await engine.dispose()


async def test_a_stuck_claim_whose_ticket_exists_is_completed(machine: Approvals, clock: Clock) -> None:
    approved = await _approved(machine)
    await machine.claim_for_execution(approved.id)
    clock.advance(timedelta(minutes=10))
    [stuck] = await machine.recover_stuck(clock() - timedelta(minutes=5))
    # Jira already has the labelled issue: record it instead of creating another.
    done = await machine.complete(stuck.id, "CHK-42")
    assert done.jira_key == "CHK-42"


async def test_a_fresh_claim_is_never_reset(machine: Approvals, clock: Clock) -> None:
    approved = await _approved(machine)
    await machine.claim_for_execution(approved.id)
    with pytest.raises(ApprovalStateError, match="claimed too recently"):
        await machine.reset_to_approved(approved.id, claimed_before=clock() - timedelta(minutes=5))
    assert (await machine.get(approved.id)).state is ApprovalState.EXECUTING


async def test_only_one_recoverer_resets_a_stuck_claim(machine: Approvals, replica: Approvals,
                                                       clock: Clock) -> None:
    approved = await _approved(machine)
    await machine.claim_for_execution(approved.id)
    clock.advance(timedelta(minutes=10))
    cutoff = clock() - timedelta(minutes=5)

    async def recover(m: Approvals) -> Approval | None:
        with contextlib.suppress(ApprovalStateError):  # another replica reset (and maybe claimed) it first
            await m.reset_to_approved(approved.id, claimed_before=cutoff)
        return await m.claim_for_execution(approved.id)

    claims = await asyncio.gather(*(recover(m) for m in (machine, replica) * 2), return_exceptions=True)
    assert len([c for c in claims if isinstance(c, Approval)]) == 1


# --- expiry ----------------------------------------------------------------------------------


async def test_stale_proposed_and_approved_expire_but_executing_does_not(machine: Approvals,
                                                                         clock: Clock) -> None:
    proposed = await _propose(machine, incident="pd:A")
    approved = await machine.approve((await _propose(machine, incident="pd:B")).id, "U2",
                                     forbid_self_approval=True)
    executing = await machine.approve((await _propose(machine, incident="pd:C")).id, "U2",
                                      forbid_self_approval=True)
    await machine.claim_for_execution(executing.id)
    clock.advance(timedelta(hours=25))
    fresh = await _propose(machine, incident="pd:D")
    expired = await machine.expire_stale(clock() - timedelta(hours=24))
    assert {a.id for a in expired} == {proposed.id, approved.id}
    assert {a.state for a in expired} == {ApprovalState.EXPIRED}
    assert (await machine.get(executing.id)).state is ApprovalState.EXECUTING
    assert (await machine.get(fresh.id)).state is ApprovalState.PROPOSED
    with pytest.raises(ApprovalStateError, match=r"cannot approve.*'expired'"):
        await machine.approve(proposed.id, "U2", forbid_self_approval=True)
    assert await machine.expire_stale(clock() - timedelta(hours=24)) == []


async def test_exactly_one_replica_reclaims_a_stuck_claim(machine: Approvals, replica: Approvals,
                                                          clock: Clock) -> None:
    approved = await _approved(machine)
    first = await machine.claim_for_execution(approved.id)
    assert first is not None
    assert await machine.reclaim_stuck(approved.id, claimed_before=clock() - timedelta(minutes=5)) is None, \
        "a live executor's fresh claim is not taken"
    clock.advance(timedelta(minutes=10))
    cutoff = clock() - timedelta(minutes=5)
    reclaims = await asyncio.gather(*(m.reclaim_stuck(approved.id, claimed_before=cutoff)
                                      for m in (machine, replica) * 3))
    winners = [r for r in reclaims if r is not None]
    assert len(winners) == 1
    assert winners[0].state is ApprovalState.EXECUTING
    assert winners[0].claimed_at == clock()
    assert await machine.recover_stuck(cutoff) == [], "the renewed claim is not stuck"
    await machine.complete(approved.id, "CHK-5")
    assert await replica.reclaim_stuck(approved.id, claimed_before=clock() + timedelta(days=1)) is None
