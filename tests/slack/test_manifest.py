"""The Slack app manifests ask for exactly what the code uses.

What the code uses is derived, not listed by hand: every call in `bot/` of a Slack Web API
client method (`client.chat_postMessage`, `rt.slack.files_upload_v2`, ...), followed into the
SDK to the API methods it calls (`files.upload_v2` is `files.getUploadURLExternal` then
`files.completeUploadExternal`), and every Bolt listener (`@app.event`, `@app.command`,
`@app.action`, `@app.view`, `@app.shortcut`). A new call whose scope the manifests lack, or a
scope nothing uses any more, fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.manifest import (
    SCOPES_BY_EVENT,
    SCOPES_BY_METHOD,
    SLASH_COMMAND_SCOPE,
    bot_scopes,
    manifest,
    missing_scopes,
)

REPO = Path(__file__).resolve().parents[2]
_API_CALL = re.compile(r'api_call\(\s*"([a-zA-Z.]+)"')
_SELF_CALL = re.compile(r"self\.([a-z]+_[A-Za-z0-9_]+)\(")


def _client_methods() -> set[str]:
    return {name for name, _ in inspect.getmembers(AsyncWebClient, inspect.isfunction)
            if not name.startswith("_") and "_" in name and name != "api_call"}


def _api_methods(client_method: str, seen: set[str] | None = None) -> set[str]:
    """The Web API methods one SDK method calls, following its calls of other SDK methods."""
    seen = seen if seen is not None else set()
    if client_method in seen:
        return set()
    seen.add(client_method)
    source = inspect.getsource(getattr(AsyncWebClient, client_method))
    found = set(_API_CALL.findall(source))
    for inner in _SELF_CALL.findall(source):
        if inner in _client_methods():
            found |= _api_methods(inner, seen)
    return found


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted((REPO / "bot").rglob("*.py"))]


def client_calls() -> set[str]:
    """SDK methods called anywhere in bot/ (any receiver: `client.`, `rt.slack.`, `self.slack.`)."""
    methods = _client_methods()
    return {node.func.attr for _, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods}


def _uses_bolt(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and (node.module or "").startswith("slack_bolt")
               for node in ast.walk(tree))


def listeners() -> dict[str, set[str]]:
    """Bolt listeners by kind, in the modules that use Bolt (the CLI's Typer commands look alike):
    ``@app.event("app_mention")`` is {"event": {"app_mention"}}."""
    found: dict[str, set[str]] = {}
    for _, tree in _modules():
        if not _uses_bolt(tree):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr in {"event", "command", "action", "view", "shortcut", "message"}
                        and decorator.args and isinstance(decorator.args[0], ast.Constant)):
                    found.setdefault(decorator.func.attr, set()).add(str(decorator.args[0].value))
    return found


def needed_api_methods() -> set[str]:
    return {api for call in client_calls() for api in _api_methods(call)}


def test_the_derivation_finds_what_the_bot_is_known_to_do() -> None:
    # If these are not found, the scan is broken and the tests below would pass by seeing nothing.
    assert {"chat_postMessage", "chat_update", "files_upload_v2", "views_open", "usergroups_list"} <= client_calls()
    assert {"files.getUploadURLExternal", "files.completeUploadExternal"} <= needed_api_methods()
    assert listeners()["event"] == {"app_mention"}
    assert listeners()["command"] == {"/brief"}
    assert {"ticket_create", "brief_refresh"} <= listeners()["action"]


def test_every_api_method_the_code_calls_has_a_reviewed_scope() -> None:
    unknown = sorted(needed_api_methods() - set(SCOPES_BY_METHOD))
    assert unknown == [], f"add each to SCOPES_BY_METHOD with the scope Slack documents for it: {unknown}"
    unknown_events = sorted(listeners().get("event", set()) - set(SCOPES_BY_EVENT))
    assert unknown_events == [], f"add each to SCOPES_BY_EVENT: {unknown_events}"


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket-mode"])
def test_the_manifest_has_every_scope_the_code_needs_and_no_other(socket_mode: bool) -> None:
    needed = {SCOPES_BY_METHOD[m] for m in needed_api_methods()} - {None}
    needed |= {SCOPES_BY_EVENT[e] for e in listeners().get("event", set())}
    if listeners().get("command"):
        needed.add(SLASH_COMMAND_SCOPE)
    assert bot_scopes(socket_mode) == needed
    assert manifest(socket_mode).get("oauth_config", {}).get("scopes", {}).get("user") is None, "no user scopes"


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket-mode"])
def test_the_manifest_subscribes_every_event_command_and_interaction_the_code_listens_to(socket_mode: bool) -> None:
    app = manifest(socket_mode)
    settings, features = app["settings"], app["features"]
    assert set(settings["event_subscriptions"]["bot_events"]) == listeners().get("event", set())
    assert {c["command"] for c in features.get("slash_commands", [])} == listeners().get("command", set())
    assert {s["callback_id"] for s in features.get("shortcuts", [])} == listeners().get("shortcut", set())
    assert settings["interactivity"]["is_enabled"] is bool(listeners().get("action") or listeners().get("view"))
    assert settings["socket_mode_enabled"] is socket_mode
    assert features["bot_user"]["display_name"]


def test_http_mode_points_every_request_at_the_bots_slack_route() -> None:
    app = manifest(False)
    urls = [app["settings"]["event_subscriptions"]["request_url"], app["settings"]["interactivity"]["request_url"],
            *(c["url"] for c in app["features"]["slash_commands"])]
    assert {urlsplit(url).path for url in urls} == {"/slack/events"}
    assert 'Route("/slack/events"' in (REPO / "bot" / "app" / "web.py").read_text()
    socket = manifest(True)
    assert "request_url" not in socket["settings"]["event_subscriptions"], "Socket Mode needs no public URL"
    assert all("url" not in c for c in socket["features"]["slash_commands"])


def test_the_two_manifests_differ_only_in_the_transport() -> None:
    def without_transport(socket_mode: bool) -> dict[str, object]:
        app = manifest(socket_mode)
        commands = [{k: v for k, v in c.items() if k != "url"} for c in app["features"]["slash_commands"]]
        settings = {**app["settings"], "socket_mode_enabled": None,
                    "event_subscriptions": {"bot_events": app["settings"]["event_subscriptions"]["bot_events"]},
                    "interactivity": {"is_enabled": app["settings"]["interactivity"]["is_enabled"]}}
        return {**app, "settings": settings, "features": {**app["features"], "slash_commands": commands}}

    assert without_transport(False) == without_transport(True)


def test_missing_scopes_name_what_breaks_without_them() -> None:
    assert missing_scopes(bot_scopes()) == []
    assert missing_scopes(bot_scopes() - {"files:write", "commands"}) == [
        "commands (/brief)", "files:write (files.completeUploadExternal, files.getUploadURLExternal)"]
