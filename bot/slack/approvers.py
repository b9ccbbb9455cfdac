"""Who may approve a write: the policy's explicit users and members of its Slack user groups."""

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


async def may_approve(client: AsyncWebClient, policy: Policy, user_id: str) -> tuple[bool, str]:
    """Whether this person may approve, and a sentence saying why not when they may not."""
    approvers = policy.approvers
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
