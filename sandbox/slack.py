"""Fake Slack Web API: the methods the bot calls, on Slack's wire format, with state to inspect.

Routes are ``/api/<method>`` (GET or POST; arguments from the query string, a form body or a
JSON body, as Slack accepts them), each recorded under the tool ``slack.<method with _>``
(``slack.chat_postMessage``). Like Slack, every answer is HTTP 200 with ``{"ok": true, ...}``
or ``{"ok": false, "error": "<code>"}``; only rate limits are HTTP 429 with ``Retry-After``.

Auth: ``Authorization: Bearer <bot token>`` (or a ``token`` argument in a form body) must
equal the sandbox's ``slack_bot_token``: ``not_authed`` without one, ``invalid_auth`` otherwise.
``auth.test`` reports the token's scopes in ``x-oauth-scopes``, as Slack does: the manifest's
bot scopes (`SlackApp.granted_scopes`; tests take some away).

The workspace: the bot (``UBRIEFBOT``) in team ``T0SANDBOX``; a user group ``oncall``
(``S0ONCALL``) and one ``oncall-<team>`` per catalog team, each holding the scenario's
requester (``U0ONCALL1`` when it has none) and ``U0APPROVER``; ``U0OUTSIDER`` is in none.
Any well-formed user or channel id exists (a workspace is larger than a scenario); catalog
channels have their names. Block Kit is checked as Slack checks it (`sandbox.block_kit`).

Also served: the upload URLs files.getUploadURLExternal hands out (``/upload/v1/<file id>``)
and response URLs (``/response/<any id>``, kept in `SlackApp.responses`); like Slack's, they
need no token.

Faults: ``http_429`` and ``http_429_persistent`` on a Slack tool (or on ``slack``) limit a
method per token as Slack does, with the world's ``faults.retry_after_s`` in ``Retry-After``
(`sandbox.slack_limits`): a burst that a client waiting what it is told gets through, or a
limit that outlasts any client's retries. ``http_500``, ``malformed`` and ``timeout`` apply to
every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.slack.manifest import bot_scopes
from sandbox.block_kit import validate_blocks, validate_view
from sandbox.core import Reply, SandboxContext, SandboxRequest, SystemApp
from sandbox.slack_limits import RateLimits

TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "sandbox"
BOT_USER_ID = "UBRIEFBOT"
BOT_ID = "B0BRIEFBOT"
APP_ID = "A0BRIEFBOT"
APPROVER = "U0APPROVER"
OUTSIDER = "U0OUTSIDER"
DEFAULT_REQUESTER = "U0ONCALL1"
ONCALL_GROUP = ("S0ONCALL", "oncall")
TEXT_MAX = 40_000
_UNAUTHENTICATED = {"slack.upload", "slack.response_url"}  # pre-signed URLs, as at Slack
_APP_LEVEL = {"slack.apps_connections_open"}  # called with the app-level token (xapp-), not the bot's
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class SocketUrls(Protocol):
    """The Socket Mode server (`sandbox.slack_socket`) as ``apps.connections.open`` sees it."""

    def issue_url(self) -> str: ...


@dataclass
class SlackMessage:
    """A message the bot posted; `updates` holds each earlier version, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "subtype": "bot_message", "text": self.text,
                               "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "ts": self.ts,
                               "team": TEAM_ID, "blocks": self.blocks}
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.updates:
            out["edited"] = {"user": BOT_USER_ID, "ts": self.ts}
        return out


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    message_ts: str


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {"id": self.id, "name": self.filename, "title": self.title or self.filename,
                "mimetype": "image/png" if self.filename.endswith(".png") else "application/octet-stream",
                "filetype": self.filename.rsplit(".", 1)[-1] if "." in self.filename else "binary",
                "size": len(self.content or b""), "user": BOT_USER_ID, "alt_txt": self.alt_txt,
                "url_private": f"{base_url}/files-pri/{TEAM_ID}-{self.id}/{self.filename}",
                "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{self.id}/{self.filename}",
                "channels": [self.channel] if self.channel else [], "is_public": bool(self.channel)}


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest().upper()
    return prefix + "".join(ch for ch in digest if ch.isalnum())[:10]


class SlackApp(SystemApp):
    """The workspace and everything the bot did in it."""

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__("slack", ctx)
        self.messages: list[SlackMessage] = []
        self.ephemerals: list[Ephemeral] = []
        self.views: list[dict[str, Any]] = []
        self.files: list[UploadedFile] = []
        self.responses: list[dict[str, Any]] = []  # what was POSTed to response_urls
        self._seq = 0
        self.rate_limits = RateLimits()
        requester = ctx.scenario.alert.requested_by or DEFAULT_REQUESTER
        members = list(dict.fromkeys([requester, APPROVER]))
        self.usergroups: dict[str, dict[str, Any]] = {}
        handles = [ONCALL_GROUP[1], *sorted({f"oncall-{c.team}" for c in ctx.scenario.catalog if c.team})]
        for handle in handles:
            gid = ONCALL_GROUP[0] if handle == ONCALL_GROUP[1] else _stable_id("S", handle)
            self.usergroups[gid] = {"id": gid, "handle": handle, "name": handle.replace("-", " ").title(),
                                    "users": members}
        self.channel_names = {c.slack_channel: f"inc-{c.name}" for c in ctx.scenario.catalog if c.slack_channel}
        # What the installed bot token may do: the app was created from the manifest (tests narrow it).
        self.granted_scopes: list[str] = sorted(bot_scopes())
        self.guests: set[str] = set()  # users.info says these are guests (is_restricted)
        self.socket_server: SocketUrls | None = None  # set when the sandbox runs Socket Mode

    @property
    def base_url(self) -> str:
        return self.ctx.urls.get("slack", "https://slack.com")

    def next_ts(self) -> str:
        """Message timestamps: unique, increasing, starting at the scenario's "now"."""
        self._seq += 1
        return f"{int(self.ctx.now.timestamp())}.{self._seq:06d}"

    def find(self, channel: str, ts: str) -> SlackMessage | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    async def _dispatch(self, sreq: SandboxRequest) -> tuple[Reply, str | None, str | None]:
        """Slack's order: route, auth, then faults in Slack's shapes, then the method."""
        matched = self._match(sreq.method, sreq.path)
        if matched is None:
            if sreq.path.startswith("/api/"):
                return _fail("unknown_method"), None, None
            return Reply("Not Found", status=404), None, None
        route, params = matched
        sreq.path_params = params
        if route.tool not in _UNAUTHENTICATED and (denied := _check_auth(self.ctx, sreq, app_level=route.tool
                                                                         in _APP_LEVEL)) is not None:
            return denied, route.tool, None
        faults = self.ctx.scenario.world.faults
        if latency := faults.latency_for(route.tool):
            await asyncio.sleep(latency / 1000)
        fault = faults.error_for(route.tool)
        # Limited per method and token; a pre-signed URL carries no token (and may carry a file).
        token = "" if route.tool in _UNAUTHENTICATED else _token(sreq) or ""
        limited = self.rate_limits.refuse(fault, route.tool, token, faults.retry_after_s)
        if limited is not None:
            return _fail("ratelimited", status=429, headers={"Retry-After": str(limited)}), route.tool, fault
        if fault == "http_500":
            return Reply("<html><body>Internal Server Error</body></html>", status=500,
                         content_type="text/html"), route.tool, fault
        if fault == "malformed":
            return Reply('{"ok": true, "channel": "C', content_type="application/json"), route.tool, fault
        if fault == "timeout":
            return await self.hold(sreq, route.tool, Reply("Gateway Timeout", status=504)), route.tool, fault
        try:
            return await route.handler(sreq), route.tool, None
        except _ArgsError as exc:
            return _fail(exc.code), route.tool, None
        except Exception as exc:  # a sandbox bug must look like Slack's internal_error, not a hang
            return _fail("internal_error", detail=repr(exc)), route.tool, None


class _ArgsError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _ok(**body: Any) -> Reply:
    return Reply({"ok": True, **body})


def _fail(error: str, *, status: int = 200, headers: dict[str, str] | None = None,
          detail: str | None = None, **extra: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error": error, **extra}
    if detail:
        body["detail"] = detail
    return Reply(body, status=status, headers=headers or {})


def _invalid_blocks(errors: list[str]) -> Reply:
    return _fail("invalid_blocks", errors=errors,
                 response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})


def _token(req: SandboxRequest) -> str | None:
    """The token a call carries: the bearer header, or a form body's ``token`` argument."""
    header = req.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if token is None and "json" not in req.headers.get("content-type", ""):
        token = _raw_args(req).get("token")
    return token


def _check_auth(ctx: SandboxContext, req: SandboxRequest, *, app_level: bool = False) -> Reply | None:
    token = _token(req)
    if not token:
        return _fail("not_authed")
    bot_token, app_token = ctx.secrets.get("slack_bot_token"), ctx.secrets.get("slack_app_token")
    expected, other = (app_token, bot_token) if app_level else (bot_token, app_token)
    if token == other:
        return _fail("not_allowed_token_type")
    if token != expected:
        return _fail("invalid_auth")
    return None


def _raw_args(req: SandboxRequest) -> dict[str, Any]:
    args: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
    ctype = req.headers.get("content-type", "")
    if not req.body:
        return args
    if "application/json" in ctype:
        try:
            parsed = json.loads(req.body)
        except ValueError as exc:
            raise _ArgsError("invalid_json") from exc
        if not isinstance(parsed, dict):
            raise _ArgsError("invalid_json")
        args.update(parsed)
    elif "multipart" not in ctype:
        args.update(req.form())
    return args


def _args(req: SandboxRequest) -> dict[str, Any]:
    args = _raw_args(req)
    args.pop("token", None)
    return args


def _json_arg(args: dict[str, Any], name: str) -> Any:
    """Structured arguments arrive as JSON text in forms and queries, as values in JSON bodies."""
    value = args.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _ArgsError(f"invalid_{name}" if name in {"blocks"} else "invalid_arguments") from exc
    return value


def _blocks_arg(args: dict[str, Any]) -> list[dict[str, Any]] | None:
    blocks = _json_arg(args, "blocks")
    if blocks is None or blocks == "":
        return None
    if not isinstance(blocks, list):
        raise _ArgsError("invalid_blocks_format")
    return _with_block_ids(blocks)


def _with_block_ids(blocks: list[Any]) -> list[Any]:
    """Slack gives every block without a block_id a short one of its own."""
    out = []
    for i, block in enumerate(blocks):
        if isinstance(block, dict) and "block_id" not in block:
            block = {**block, "block_id": _stable_id("", json.dumps(block, sort_keys=True), str(i))[:5]}
        out.append(block)
    return out


def _channel(value: Any) -> str | None:
    """A well-formed channel id, or None (Slack's ``channel_not_found``)."""
    return value if isinstance(value, str) and _CHANNEL_ID.match(value) else None


def build(ctx: SandboxContext) -> SlackApp:
    app = SlackApp(ctx)

    def method(name: str) -> Any:
        tool = f"slack.{name.replace('.', '_')}"

        def register(handler: Any) -> Any:
            app.route("POST", f"/api/{name}", tool)(handler)
            app.route("GET", f"/api/{name}", tool)(handler)
            return handler

        return register

    @method("auth.test")
    async def auth_test(req: SandboxRequest) -> Reply:
        reply = _ok(url=f"https://{TEAM_DOMAIN}.slack.com/", team="Sandbox", user="incident-brief",
                    team_id=TEAM_ID, user_id=BOT_USER_ID, bot_id=BOT_ID, app_id=APP_ID,
                    is_enterprise_install=False)
        reply.headers["x-oauth-scopes"] = ",".join(app.granted_scopes)  # as Slack reports a token's scopes
        return reply

    @method("apps.connections.open")
    async def connections_open(req: SandboxRequest) -> Reply:
        # The URL of the Socket Mode server (`sandbox.slack_socket`), with a one-time ticket.
        if app.socket_server is None:
            return _fail("internal_error", detail="this sandbox runs no Socket Mode server")
        return _ok(url=app.socket_server.issue_url())

    @method("chat.postMessage")
    async def post_message(req: SandboxRequest) -> Reply:
        args = _args(req)
        channel, text, blocks = _channel(args.get("channel")), str(args.get("text") or ""), _blocks_arg(args)
        if channel is None:
            return _fail("channel_not_found")
        if not text and not blocks:
            return _fail("no_text")
        if len(text) > TEXT_MAX:
            return _fail("msg_too_long")
        if blocks is not None and (errors := validate_blocks(blocks)):
            return _invalid_blocks(errors)
        message = SlackMessage(channel=channel, ts=app.next_ts(), text=text, blocks=blocks or [],
                               thread_ts=args.get("thread_ts") or None)
        app.messages.append(message)
        return _ok(channel=channel, ts=message.ts, message=message.to_json())

    @method("chat.update")
    async def update(req: SandboxRequest) -> Reply:
        args = _args(req)
        channel, ts = _channel(args.get("channel")), args.get("ts")
        if channel is None:
            return _fail("channel_not_found")
        message = app.find(channel, str(ts or ""))
        if message is None:
            return _fail("message_not_found")
        blocks = _blocks_arg(args)
        text = args.get("text")
        if text is None and blocks is None:
            return _fail("no_text")
        if text is not None and len(str(text)) > TEXT_MAX:
            return _fail("msg_too_long")
        if blocks is not None and (errors := validate_blocks(blocks)):
            return _invalid_blocks(errors)
        message.updates.append({"text": message.text, "blocks": message.blocks})
        if text is not None:
            message.text = str(text)
        if blocks is not None:  # Slack keeps the old blocks unless new ones (or []) are sent
            message.blocks = blocks
        return _ok(channel=channel, ts=message.ts, text=message.text, message=message.to_json())

    @method("chat.postEphemeral")
    async def post_ephemeral(req: SandboxRequest) -> Reply:
        args = _args(req)
        channel, user, text, blocks = _channel(args.get("channel")), args.get("user"), str(args.get("text") or ""), \
            _blocks_arg(args)
        if channel is None:
            return _fail("channel_not_found")
        if not isinstance(user, str) or not _USER_ID.match(user):
            return _fail("user_not_found")
        if not text and not blocks:
            return _fail("no_text")
        if blocks is not None and (errors := validate_blocks(blocks)):
            return _invalid_blocks(errors)
        ts = app.next_ts()
        app.ephemerals.append(Ephemeral(channel=channel, user=user, text=text, blocks=blocks or [],
                                        thread_ts=args.get("thread_ts") or None, message_ts=ts))
        return _ok(message_ts=ts)

    @method("views.open")
    async def views_open(req: SandboxRequest) -> Reply:
        args = _args(req)
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            return _fail("invalid_arguments")
        view = _json_arg(args, "view")
        if errors := validate_view(view):
            return _fail("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
        opened = _render_view(view, _stable_id("V", str(len(app.views)), json.dumps(view, sort_keys=True)))
        app.views.append(opened)
        return _ok(view=opened)

    @method("views.update")
    async def views_update(req: SandboxRequest) -> Reply:
        args = _args(req)
        view_id, external_id = args.get("view_id"), args.get("external_id")
        current = next((v for v in app.views if (view_id and v["id"] == view_id)
                        or (external_id and v.get("external_id") == external_id)), None)
        if current is None:
            return _fail("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            return _fail("hash_conflict")
        view = _json_arg(args, "view")
        if errors := validate_view(view):
            return _fail("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
        updated = _render_view(view, current["id"], previous=current)
        current.clear()
        current.update(updated)
        return _ok(view=current)

    @method("files.getUploadURLExternal")
    async def get_upload_url(req: SandboxRequest) -> Reply:
        args = _args(req)
        filename, length = args.get("filename"), str(args.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return _fail("invalid_arguments")
        file = UploadedFile(id=_stable_id("F", str(len(app.files)), str(filename)), filename=str(filename),
                            length=int(length), alt_txt=args.get("alt_txt") or args.get("alt_text"))
        app.files.append(file)
        return _ok(upload_url=f"{app.base_url}/upload/v1/{file.id}", file_id=file.id)

    @app.route("POST", "/upload/v1/{file_id}", "slack.upload")
    async def upload(req: SandboxRequest) -> Reply:
        file = next((f for f in app.files if f.id == req.path_params["file_id"]), None)
        if file is None:
            return Reply("Not Found", status=404)
        file.content = req.body
        return Reply(f"OK - {len(req.body)}", content_type="text/plain")

    @app.route("POST", "/response/{response_id}", "slack.response_url")
    async def response_url(req: SandboxRequest) -> Reply:
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            return Reply("invalid_payload", status=400)
        app.responses.append({"response_id": req.path_params["response_id"], **body})
        return Reply("ok", content_type="text/plain")

    @method("files.completeUploadExternal")
    async def complete_upload(req: SandboxRequest) -> Reply:
        args = _args(req)
        wanted = _json_arg(args, "files")
        if not isinstance(wanted, list) or not wanted:
            return _fail("invalid_arguments")
        channel = args.get("channel_id") or None
        if channel is not None and _channel(channel) is None:
            return _fail("channel_not_found")
        done = []
        for item in wanted:
            file = next((f for f in app.files if isinstance(item, dict) and f.id == item.get("id")), None)
            if file is None or file.content is None:
                return _fail("file_not_found")
            file.title = item.get("title") or file.filename
            file.channel, file.thread_ts = channel, args.get("thread_ts") or None
            file.initial_comment = args.get("initial_comment") or None
            done.append(file.to_json(app.base_url))
        return _ok(files=done)

    @method("files.info")
    async def files_info(req: SandboxRequest) -> Reply:
        file = next((f for f in app.files if f.id == _args(req).get("file")), None)
        if file is None or file.content is None:
            return _fail("file_not_found")
        return _ok(file=file.to_json(app.base_url))

    @method("usergroups.list")
    async def usergroups_list(req: SandboxRequest) -> Reply:
        include = str(_args(req).get("include_users", "")).lower() in {"1", "true"}
        return _ok(usergroups=[_group_json(g, include) for g in app.usergroups.values()])

    @method("usergroups.users.list")
    async def usergroups_users_list(req: SandboxRequest) -> Reply:
        group = app.usergroups.get(str(_args(req).get("usergroup") or ""))
        if group is None:
            return _fail("no_such_subteam")
        return _ok(users=list(group["users"]))

    @method("users.info")
    async def users_info(req: SandboxRequest) -> Reply:
        user = _args(req).get("user")
        if not isinstance(user, str) or not _USER_ID.match(user):
            return _fail("user_not_found")
        return _ok(user=_user_json(user, guest=user in app.guests))

    @method("conversations.info")
    async def conversations_info(req: SandboxRequest) -> Reply:
        channel = _channel(_args(req).get("channel"))
        if channel is None:
            return _fail("channel_not_found")
        name = app.channel_names.get(channel, channel.lower())
        return _ok(channel={"id": channel, "name": name, "is_channel": channel.startswith("C"),
                            "is_group": channel.startswith("G"), "is_im": channel.startswith("D"),
                            "is_private": not channel.startswith("C"), "is_archived": False,
                            "is_member": True, "created": int(ctx.now.timestamp()) - 86400 * 30,
                            "topic": {"value": "", "creator": "", "last_set": 0},
                            "purpose": {"value": f"Incidents for {name}", "creator": "", "last_set": 0}})

    @method("reactions.add")
    async def reactions_add(req: SandboxRequest) -> Reply:
        args = _args(req)
        name = str(args.get("name") or "").strip(":")
        if not name:
            return _fail("invalid_name")
        message = app.find(str(args.get("channel") or ""), str(args.get("timestamp") or ""))
        if message is None:
            return _fail("message_not_found")
        users = message.reactions.setdefault(name, [])
        if BOT_USER_ID in users:
            return _fail("already_reacted")
        users.append(BOT_USER_ID)
        return _ok()

    return app


def _render_view(view: dict[str, Any], view_id: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """A view as Slack returns it: the definition plus ids, an empty state and a fresh hash."""
    blocks = _with_block_ids(list(view.get("blocks") or []))
    hash_ = hashlib.sha1(f"{view_id}|{json.dumps(blocks, sort_keys=True)}|{previous and previous['hash']}"
                         .encode(), usedforsecurity=False).hexdigest()[:16]
    return {
        "id": view_id, "team_id": TEAM_ID, "type": view.get("type", "modal"), "blocks": blocks,
        "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
        "state": {"values": {}}, "hash": f"{hash_[:10]}.{hash_[10:]}", "title": view.get("title"),
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)), "close": view.get("close"),
        "submit": view.get("submit"), "previous_view_id": None,
        "root_view_id": previous["root_view_id"] if previous else view_id, "app_id": APP_ID,
        "external_id": view.get("external_id", ""), "app_installed_team_id": TEAM_ID, "bot_id": BOT_ID,
    }


def _group_json(group: dict[str, Any], include_users: bool) -> dict[str, Any]:
    out = {"id": group["id"], "team_id": TEAM_ID, "is_usergroup": True, "is_subteam": True,
           "name": group["name"], "description": f"{group['name']} rotation", "handle": group["handle"],
           "is_external": False, "date_create": 1700000000, "date_update": 1700000000, "date_delete": 0,
           "auto_type": None, "created_by": APPROVER, "updated_by": APPROVER, "deleted_by": None,
           "prefs": {"channels": [], "groups": []}, "user_count": len(group["users"])}
    if include_users:
        out["users"] = list(group["users"])
    return out


def _user_json(user: str, *, guest: bool = False) -> dict[str, Any]:
    name = user.lower()
    is_bot = user == BOT_USER_ID
    return {"id": user, "team_id": TEAM_ID, "name": "incident-brief" if is_bot else name, "deleted": False,
            "real_name": "Incident Brief" if is_bot else name.title(), "tz": "Etc/UTC", "tz_offset": 0,
            "is_bot": is_bot, "is_admin": False, "is_owner": False, "is_app_user": False,
            "is_restricted": guest, "is_ultra_restricted": False,
            "profile": {"real_name": name.title(), "display_name": name, "email": None,
                        "bot_id": BOT_ID if is_bot else None}}
