"""Who may approve a write: the policy's explicit users and members of its Slack user groups.

A policy that lists no approvers (legal only in ``read_only`` mode, where every write waits for
a person; ``policy check`` warns about it) lets any full member of the workspace approve: not a
guest, not a bot, not a deactivated account.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.policy import Policy


async def group_members(client: AsyncWebClient, handles: list[str]) -> set[str]:
    """Members of the user groups named by handle (``oncall``) or id (``S0ONCALL``)."""
    if not handles:
        return set()
    listed = await client.usergroups_list(include_users=False)
    wanted = {h.lstrip("@") for h in handles}
    groups: list[dict[str, Any]] = listed.get("usergroups", [])
    ids = [g["id"] for g in groups if g.get("handle") in wanted or g.get("id") in wanted]
    members: set[str] = set()
    for group_id in ids:
        answer = await client.usergroups_users_list(usergroup=group_id)
        members.update(answer.get("users", []))
    return members


async def full_member(client: AsyncWebClient, user_id: str) -> tuple[bool, str]:
    """Whether the person is a full member of the workspace (users.info), and why not."""
    try:
        answer = await client.users_info(user=user_id)
    except SlackApiError as exc:
        return False, f"could not check who you are ({exc.response.get('error', 'error')})"
    user: dict[str, Any] = answer.get("user") or {}
    if user.get("deleted") or user.get("is_bot") or user.get("is_app_user"):
        return False, "Only people can approve a ticket."
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return False, "Guests cannot approve a ticket; ask a member of the workspace."
    return True, "a full member of the workspace (the policy lists no approvers)"


async def may_approve(client: AsyncWebClient, policy: Policy, user_id: str) -> tuple[bool, str]:
    """Whether this person may approve, and a sentence saying why not when they may not."""
    approvers = policy.approvers
    if not approvers.users and not approvers.slack_user_groups:
        return await full_member(client, user_id)
    if user_id in approvers.users:
        return True, "listed as an approver"
    try:
        members = await group_members(client, approvers.slack_user_groups)
    except SlackApiError as exc:
        return False, f"could not check approver groups ({exc.response.get('error', 'error')})"
    if user_id in members:
        return True, "member of an approver group"
    groups = ", ".join(f"@{g}" for g in approvers.slack_user_groups) or "none"
    return False, (f"Only approvers may file tickets from a brief (groups: {groups}). "
                   "Ask someone on call to click *Create Jira ticket*.")
