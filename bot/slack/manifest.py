"""The Slack app's manifests (``manifest.yaml`` for HTTP, ``manifest.socket-mode.yaml``) and
what each scope is for.

The manifests are what a team pastes into api.slack.com to create the app; `doctor` compares
the scopes the installed token has (auth.test's ``x-oauth-scopes``) with them, and
tests/slack/test_manifest.py derives from the code which scopes, events and commands it needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
MANIFESTS = {False: HERE / "manifest.yaml", True: HERE / "manifest.socket-mode.yaml"}

# The scope each Web API method the bot calls needs (Slack's method pages, "Required scopes";
# None: no scope). A method missing here fails the manifest test, so none goes unreviewed.
SCOPES_BY_METHOD: dict[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "views.open": None,
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "usergroups.list": "usergroups:read",
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
}
# The scope each Events API event needs.
SCOPES_BY_EVENT: dict[str, str] = {"app_mention": "app_mentions:read"}
SLASH_COMMAND_SCOPE = "commands"


@cache
def manifest(socket_mode: bool = False) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFESTS[socket_mode].read_text())
    return loaded


def bot_scopes(socket_mode: bool = False) -> set[str]:
    return set(manifest(socket_mode)["oauth_config"]["scopes"]["bot"])


def missing_scopes(granted: Iterable[str], socket_mode: bool = False) -> list[str]:
    """The manifest's bot scopes the token lacks, each with the methods that need it."""
    have = {scope.strip() for scope in granted if scope.strip()}
    missing = []
    for scope in sorted(bot_scopes(socket_mode) - have):
        users = sorted([m for m, s in SCOPES_BY_METHOD.items() if s == scope]
                       + [e for e, s in SCOPES_BY_EVENT.items() if s == scope])
        missing.append(f"{scope} ({', '.join(users) or '/brief'})")
    return missing
