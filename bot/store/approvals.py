"""The persisted approval state machine for write actions (filing a Jira ticket).

    proposed ──approve──► approved ──claim_for_execution──► executing ──complete──► done
       │  ▲                  ▲                                  │
       │  └─ (more approvers needed)                            ├──fail──► failed
       ├──reject──► rejected                                    │
       └──expire_stale──► expired   (approved rows too)         ├─reclaim_stuck: executing again, new claim
                                                                └─reset_to_approved (after a restart)

Every transition is one conditional ``UPDATE ... WHERE state IN (...)``: the database, not the
process, decides who wins, so a double click, two approvers, a retry or two replicas execute a
proposal exactly once. A restart between claim and completion leaves the row ``executing``:
`recover_stuck` lists such rows; one recoverer wins `reclaim_stuck` (or `reset_to_approved`, so
the next click claims it), looks in Jira for the idempotency key (it is on the ticket as a
label), and either `complete`s the row with the ticket found or creates the ticket.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import utcnow
from bot.core.errors import IncidentBriefError
from bot.core.redaction import redact_obj
from bot.store.tables import LIVE_APPROVAL_STATES, ApprovalRow
from bot.store.upsert import insert_for

DEFAULT_TOOL = "jira.create_issue"
_APPROVE_RETRIES = 16


class ApprovalState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


# After a claim someone else won, these are what a losing claimer finds: not an error.
_CLAIMED_ELSEWHERE = (ApprovalState.EXECUTING, ApprovalState.DONE, ApprovalState.FAILED)
_ALREADY_APPROVED = (ApprovalState.APPROVED, ApprovalState.EXECUTING, ApprovalState.DONE)


class ApprovalStateError(IncidentBriefError):
    """A transition the approval's current state does not allow (or a refused approver)."""

    def __init__(self, approval_id: str, state: str | None, action: str, reason: str | None = None) -> None:
        state = None if state is None else str(state)  # the plain value, never an enum repr
        detail = reason or f"not allowed from state {state!r}"
        super().__init__(f"approval {approval_id}: cannot {action}: {detail}")
        self.approval_id = approval_id
        self.state = state
        self.action = action


class SelfApprovalForbidden(ApprovalStateError):
    pass


class UnknownApproval(IncidentBriefError, LookupError):
    def __init__(self, approval_id: str) -> None:
        super().__init__(f"no approval {approval_id!r}")
        self.approval_id = approval_id


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    incident_key: str
    brief_version: int
    tool: str
    proposal: dict[str, Any]
    requested_by: str | None
    approvers: list[str]
    idempotency_key: str  # also the Jira label that finds the ticket after a crash
    state: ApprovalState
    jira_key: str | None
    error: str | None
    revision: int
    edited: bool = False  # the proposal was revised (edited in the modal) before approval
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    claimed_at: datetime | None
    finished_at: datetime | None


def idempotency_key(incident_key: str, brief_version: int, tool: str = DEFAULT_TOOL) -> str:
    """Same incident + brief version + tool -> same key, in any process, on any day.

    The editable content (summary, description, priority) is deliberately not part of it: an
    approver's edit in the modal must not turn one brief version's ticket into a second
    approval, which a stale click on the original button would then file again.
    Shaped to be a valid Jira label (no spaces, short)."""
    canonical = json.dumps([incident_key, int(brief_version), tool], separators=(",", ":"), ensure_ascii=False)
    return "ib-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def quorum_met(approvers: Sequence[str], requested_by: str | None, required: int) -> bool:
    """Enough distinct approvers; with a two-person rule the requester alone never suffices."""
    distinct = set(approvers)
    if len(distinct) < required:
        return False
    return required < 2 or any(person != requested_by for person in distinct)


class Approvals:
    """Approval records over one session factory; safe to share across tasks and replicas."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions = sessions
        self.clock = clock

    async def propose(self, *, incident_key: str, brief_version: int, proposal: Mapping[str, Any] | BaseModel,
                      requested_by: str | None, tool: str = DEFAULT_TOOL) -> Approval:
        """Record a proposal, or return the live one for this brief version (a second click, a
        stale client, a proposal since edited: one approval per incident, brief version and tool)."""
        # Masked before it is stored (and so before it is filed): a person may paste a token
        # into the modal's summary or description.
        body = redact_obj(proposal.model_dump(mode="json") if isinstance(proposal, BaseModel) else dict(proposal))
        key = idempotency_key(incident_key, brief_version, tool)
        now = self.clock()
        for _ in range(_APPROVE_RETRIES):
            async with self.sessions() as session, session.begin():
                stmt = await insert_for(session, ApprovalRow)
                stmt = stmt.values(
                    id=uuid.uuid4().hex, incident_key=incident_key, brief_version=brief_version, tool=tool,
                    proposal=body, requested_by=requested_by, approvers=[], idempotency_key=key,
                    state=ApprovalState.PROPOSED.value, revision=0, created_at=now, updated_at=now)
                inserted = await session.execute(stmt.on_conflict_do_nothing(
                    index_elements=[ApprovalRow.idempotency_key],
                    index_where=ApprovalRow.state.in_(LIVE_APPROVAL_STATES),
                ).returning(ApprovalRow))
                row = inserted.scalar_one_or_none()
                if row is None:
                    row = await session.scalar(self._live(key))
                if row is not None:
                    return Approval.model_validate(row)
            # The live row left its live state between our insert and read: insert again.
        raise ApprovalStateError("-", None, "propose", f"idempotency key {key} keeps changing state")

    async def get(self, approval_id: str) -> Approval:
        async with self.sessions() as session:
            row = await session.get(ApprovalRow, approval_id)
            if row is None:
                raise UnknownApproval(approval_id)
            return Approval.model_validate(row)

    async def find_live(self, key: str) -> Approval | None:
        """The proposed/approved/executing/done approval holding an idempotency key, if any."""
        async with self.sessions() as session:
            row = await session.scalar(self._live(key))
            return Approval.model_validate(row) if row else None

    async def list_for_incident(self, incident_key: str) -> list[Approval]:
        stmt = select(ApprovalRow).where(ApprovalRow.incident_key == incident_key).order_by(
            ApprovalRow.created_at, ApprovalRow.id)
        async with self.sessions() as session:
            return [Approval.model_validate(row) for row in await session.scalars(stmt)]

    async def revise(self, approval_id: str, proposal: Mapping[str, Any] | BaseModel) -> Approval:
        """Replace the proposal (the person edited it in the modal) while it is still proposed.
        Approvals already given are dropped: they approved other content. The idempotency key
        (the approval's identity and the Jira label) stays: it is the brief version's."""
        current = await self.get(approval_id)
        # Masked before it is stored (and so before it is filed): a person may paste a token
        # into the modal's summary or description.
        body = redact_obj(proposal.model_dump(mode="json") if isinstance(proposal, BaseModel) else dict(proposal))
        return await self._transition(
            approval_id, "revise", (ApprovalState.PROPOSED,), ApprovalState.PROPOSED,
            proposal=body, approvers=[], edited=True, expected_revision=current.revision)

    async def approve(self, approval_id: str, approver: str, *, required_approvers: int = 1,
                      forbid_self_approval: bool) -> Approval:
        """Add `approver`; the approval becomes ``approved`` once `required_approvers` distinct
        people have approved (with 2, at least one of them is not the requester).

        Approving again, or approving what is already approved, returns it unchanged: a
        double click is not an error. Rejected, expired or failed approvals raise."""
        if required_approvers < 1:
            raise ValueError("required_approvers must be at least 1")
        for _ in range(_APPROVE_RETRIES):
            current = await self.get(approval_id)
            if current.state in _ALREADY_APPROVED:
                return current
            if current.state is not ApprovalState.PROPOSED:
                raise ApprovalStateError(approval_id, current.state, "approve")
            if forbid_self_approval and approver == current.requested_by:
                raise SelfApprovalForbidden(approval_id, current.state, "approve",
                                            f"{approver} requested this and may not approve it")
            if approver in current.approvers:
                return current
            approvers = [*current.approvers, approver]
            if quorum_met(approvers, current.requested_by, required_approvers):
                target, extra = ApprovalState.APPROVED, {"approved_at": self.clock()}
            else:
                target, extra = ApprovalState.PROPOSED, {}
            try:
                return await self._transition(
                    approval_id, "approve", (ApprovalState.PROPOSED,), target,
                    approvers=approvers, expected_revision=current.revision, **extra)
            except ApprovalStateError:
                continue  # someone else changed it since we read it: read again and re-decide
        raise ApprovalStateError(approval_id, None, "approve", "too many concurrent changes")

    async def reject(self, approval_id: str, by: str, reason: str | None = None) -> Approval:
        note = f"rejected by {by}" + (f": {reason}" if reason else "")
        return await self._transition(
            approval_id, "reject", (ApprovalState.PROPOSED,), ApprovalState.REJECTED,
            error=note, finished_at=self.clock())

    async def claim_for_execution(self, approval_id: str) -> Approval | None:
        """Move approved -> executing. Exactly one concurrent caller gets the approval back;
        the others get None (someone else is executing it or has finished). Raises when the
        approval was never approved, or was rejected or expired."""
        try:
            return await self._transition(approval_id, "claim", (ApprovalState.APPROVED,),
                                          ApprovalState.EXECUTING, claimed_at=self.clock())
        except ApprovalStateError as exc:
            if exc.state in _CLAIMED_ELSEWHERE:
                return None
            raise

    async def complete(self, approval_id: str, jira_key: str) -> Approval:
        return await self._transition(approval_id, "complete", (ApprovalState.EXECUTING,), ApprovalState.DONE,
                                      jira_key=jira_key, error=None, finished_at=self.clock())

    async def fail(self, approval_id: str, error: str) -> Approval:
        return await self._transition(approval_id, "fail", (ApprovalState.EXECUTING,), ApprovalState.FAILED,
                                      error=error, finished_at=self.clock())

    async def recover_stuck(self, older_than: datetime) -> list[Approval]:
        """Approvals claimed before `older_than` and never finished: their executor died.
        Check Jira for each one's idempotency label, then `complete` or `reset_to_approved`."""
        stmt = select(ApprovalRow).where(ApprovalRow.state == ApprovalState.EXECUTING.value,
                                         ApprovalRow.claimed_at < older_than).order_by(ApprovalRow.claimed_at)
        async with self.sessions() as session:
            return [Approval.model_validate(row) for row in await session.scalars(stmt)]

    async def reclaim_stuck(self, approval_id: str, *, claimed_before: datetime) -> Approval | None:
        """Take over an executing approval claimed before `claimed_before` (its executor died),
        renewing the claim in one statement: of several recovering replicas exactly one gets it
        back, the others get None, as does anyone once it was finished, failed or reclaimed
        a moment ago. The winner checks Jira for the idempotency label before creating."""
        try:
            return await self._transition(
                approval_id, "reclaim", (ApprovalState.EXECUTING,), ApprovalState.EXECUTING,
                claimed_at=self.clock(), where_claimed_before=claimed_before)
        except ApprovalStateError:
            return None  # no longer stuck: someone else recovered, finished or reset it

    async def reset_to_approved(self, approval_id: str, *, claimed_before: datetime) -> Approval:
        """Put a stuck executing approval back to approved so it can be claimed again. Only if
        it was claimed before `claimed_before`, so a live executor's fresh claim is never reset."""
        return await self._transition(
            approval_id, "reset", (ApprovalState.EXECUTING,), ApprovalState.APPROVED,
            claimed_at=None, where_claimed_before=claimed_before)

    async def expire_stale(self, older_than: datetime) -> list[Approval]:
        """Expire proposed or approved-but-never-claimed approvals untouched since `older_than`;
        returns them so their Slack messages can lose their buttons."""
        now = self.clock()
        stmt = (update(ApprovalRow)
                .where(ApprovalRow.state.in_((ApprovalState.PROPOSED.value, ApprovalState.APPROVED.value)),
                       ApprovalRow.updated_at < older_than)
                .values(state=ApprovalState.EXPIRED.value, finished_at=now, updated_at=now,
                        revision=ApprovalRow.revision + 1)
                .returning(ApprovalRow)
                .execution_options(synchronize_session=False))
        async with self.sessions() as session, session.begin():
            return [Approval.model_validate(row) for row in (await session.scalars(stmt)).all()]

    async def _transition(self, approval_id: str, action: str, from_states: Sequence[ApprovalState],
                          to_state: ApprovalState, *, expected_revision: int | None = None,
                          where_claimed_before: datetime | None = None, **values: Any) -> Approval:
        """The compare-and-set every transition goes through: one UPDATE guarded by state (and
        revision or claim time when given). Zero rows updated means someone else got there."""
        conditions = [ApprovalRow.id == approval_id, ApprovalRow.state.in_([s.value for s in from_states])]
        if expected_revision is not None:
            conditions.append(ApprovalRow.revision == expected_revision)
        if where_claimed_before is not None:
            conditions.append(ApprovalRow.claimed_at < where_claimed_before)
        stmt = (update(ApprovalRow).where(*conditions)
                .values(**values, state=to_state.value, updated_at=self.clock(),
                        revision=ApprovalRow.revision + 1)
                .returning(ApprovalRow)
                .execution_options(synchronize_session=False))
        async with self.sessions() as session, session.begin():
            row = (await session.scalars(stmt)).one_or_none()
            if row is not None:
                return Approval.model_validate(row)
        current = await self.get(approval_id)
        reason = None
        if current.state in {s.value for s in from_states}:
            reason = "changed concurrently" if where_claimed_before is None else "claimed too recently"
        raise ApprovalStateError(approval_id, current.state, action, reason)

    @staticmethod
    def _live(key: str) -> Any:
        return select(ApprovalRow).where(ApprovalRow.idempotency_key == key,
                                         ApprovalRow.state.in_(LIVE_APPROVAL_STATES))
