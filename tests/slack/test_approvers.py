"""Who may approve a ticket, asked of the sandbox's Slack over the real Web API client."""

from __future__ import annotations

import pytest

from bot.core.policy import Approvers, default_policy
from bot.runtime import slack_client
from bot.slack.approvers import may_approve
from sandbox.scenario import Scenario
from sandbox.server import Sandbox


@pytest.mark.parametrize(("user", "allowed"), [("U0ONCALL1", True), ("U0APPROVER", True), ("U0OUTSIDER", False)])
async def test_with_approver_groups_only_their_members_approve(checkout: Scenario, user: str, allowed: bool) -> None:
    with Sandbox(checkout, systems=["slack"]) as sb:
        ok, why = await may_approve(slack_client(sb.settings()), default_policy(), user)
    assert ok is allowed, why
    if not allowed:
        assert "@oncall" in why


@pytest.mark.parametrize(("user", "allowed", "why"), [
    ("U0OUTSIDER", True, "a full member of the workspace"),
    ("UBRIEFBOT", False, "Only people can approve"),
    ("U0GUEST01", False, "Guests cannot approve"),
])
async def test_without_approvers_any_full_member_approves(checkout: Scenario, user: str, allowed: bool,
                                                          why: str) -> None:
    policy = default_policy().model_copy(update={"default_mode": "read_only", "approvers": Approvers()})
    with Sandbox(checkout, systems=["slack"]) as sb:
        sb.system("slack").guests.add("U0GUEST01")
        ok, reason = await may_approve(slack_client(sb.settings()), policy, user)
        asked = [r.tool for r in sb.recorder.requests("slack")]
    assert (ok, why in reason) == (allowed, True), reason
    assert asked == ["slack.users_info"], "no group lookup without groups"
