"""Fake model providers: OpenAI ``/v1/chat/completions`` and Anthropic ``/v1/messages``.

No provider is reachable here, so this server plays one. It reads the evidence blocks the bot
quoted into the prompt (``<<<EVIDENCE id=... kind=... source=... at=...>>>``) and answers in the
provider's wire format, usage included, with a cited brief built from those blocks (building
on the offline analysis's first candidate, a block of kind ``analysis``, when the prompt has
one that names a cause, as a model that reads its prompt would): through
the structured-output tool when the request offers one (pydantic-ai's ``final_result``),
else as JSON text.

The scenario's ``model.behaviour`` makes it misbehave the way real models do:
``invalid_json``, ``schema_violation``, ``uncited_claims``, ``unknown_citation_ids`` and
``obey_injection`` spoil the first answer of a conversation and comply when the answer is
sent back for repair (set ``stubborn = True`` to spoil every answer); ``slow`` answers after
``slow_seconds``; ``http_500`` fails every request; ``omit_ticket`` leaves the brief's optional
ticket out (so the bot asks for one with its ticket prompt). A ticket request is answered with
a ticket proposal, spoiled the same ways; ``doctor``'s connectivity check with ``{"ok": true}``
(unless every request fails). ``wire_behaviour`` overrides the behaviour for one wire format
(``openai`` / ``anthropic``), so one sandbox can fail one provider of a fallback chain and
serve the next; ``model_behaviour`` overrides it for one model name on the wire (a canary
candidate that misbehaves beside its baseline on the same provider).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sandbox.core import Reply, SandboxContext, SandboxRequest, SystemApp

Wire = Literal["openai", "anthropic"]
CHARS_PER_TOKEN = 4
BLOCK = re.compile(
    r"<<<EVIDENCE id=(?P<id>\S+) kind=(?P<kind>\S+) source=(?P<source>\S+)(?: at=(?P<at>\S+))?>>>\n"
    r"(?P<body>.*?)\n<<<END EVIDENCE>>>", re.DOTALL)
HEADER = re.compile(r"^(?P<key>alert|service|alert_at|jira_project|headline|top_cause): (?P<value>.*)$",
                    re.MULTILINE)
TICKET_REQUEST = "Propose one Jira ticket"  # the first words of prompts/ticket.md
PROBE_REQUEST = "Connectivity check from incident-brief doctor"  # the first words of prompts/doctor.md
INJECTION = re.compile(r"ignore (all )?(previous|prior) instructions|^SYSTEM:", re.IGNORECASE | re.MULTILINE)
DEPENDENCY_WORDS = re.compile(r"timeout|timed out|connection|refused|unavailable|upstream|redis|elasticsearch|"
                              r"pool|dns|circuit", re.IGNORECASE)
CONFIG_WORDS = re.compile(r"config|flag|setting|feature", re.IGNORECASE)
TRAFFIC_WORDS = re.compile(r"traffic|surge|hits|requests|campaign", re.IGNORECASE)
RECENT_CHANGE = timedelta(minutes=90)


@dataclass(frozen=True)
class Block:
    id: str
    kind: str
    source: str
    at: datetime | None
    title: str
    body: str

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


@dataclass
class Conversation:
    """What the model was asked, whatever the wire format."""

    text: str  # every text the request carries, system prompt included
    is_repair: bool  # an earlier answer of this conversation was sent back (with a validation error)
    output_tool: str | None  # the structured-output tool to call, if offered
    model: str


class LlmApp(SystemApp):
    """The model server; its knobs may be changed while it runs (tests set them)."""

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__("llm", ctx, auth=_auth(ctx))
        self.behaviour: str = ctx.scenario.model.behaviour
        self.stubborn = False
        self.slow_seconds = 3.0
        self.wire_behaviour: dict[str, str] = {}
        self.model_behaviour: dict[str, str] = {}  # by the model name on the wire: one model of many

    def behaviour_for(self, wire: Wire, model: str = "") -> str:
        return self.model_behaviour.get(model) or self.wire_behaviour.get(wire, self.behaviour)


def _auth(ctx: SandboxContext) -> Any:
    def check(req: SandboxRequest) -> Reply | None:
        token = ctx.secrets["api_token"]
        if req.headers.get("authorization") == f"Bearer {token}" or req.headers.get("x-api-key") == token:
            return None
        if req.path.endswith("/messages"):
            return Reply(_anthropic_error("authentication_error", "invalid x-api-key"), status=401)
        return Reply(_openai_error("invalid_api_key", "Incorrect API key provided"), status=401)
    return check


# --- reading the prompt --------------------------------------------------------------------

def parse_blocks(text: str) -> list[Block]:
    blocks = []
    for found in BLOCK.finditer(text):
        body = found["body"]
        title, _, rest = body.partition("\n")
        blocks.append(Block(found["id"], found["kind"], found["source"], _parse_time(found["at"]),
                            title.removeprefix("title: "), rest))
    return blocks


def parse_header(text: str) -> dict[str, str]:
    return {found["key"]: found["value"].strip() for found in HEADER.finditer(text)}


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# --- answering -----------------------------------------------------------------------------

def _claim(text: str, citations: list[str]) -> dict[str, Any]:
    return {"text": text, "citations": citations}


def build_brief(text: str) -> dict[str, Any]:
    """A cited brief from the prompt's evidence blocks, the way a careful model would write it:
    every claim rests on the blocks, and blocks that give orders are not followed."""
    header = parse_header(text)
    blocks = [b for b in parse_blocks(text) if not INJECTION.search(b.text)]
    service = header.get("service", "the service")
    alert_title = header.get("alert", "alert")
    if not blocks:
        return {"headline": _claim(f"{service}: {alert_title}; no evidence could be read", []),
                "impact": _claim("Impact unknown: no evidence", [])}
    alert_at = _parse_time(header.get("alert_at"))
    analysis = [b for b in blocks if b.kind == "analysis"]
    blocks = [b for b in blocks if b.kind != "analysis"] or blocks
    symptoms = [b for b in blocks if b.kind in {"monitor", "metric", "log_pattern", "incident"}] or blocks
    headline = _claim(f"{service}: {alert_title}", [b.id for b in symptoms[:2]])
    impact = _claim(f"Observed: {symptoms[0].title}", [symptoms[0].id])
    cause = _analysed_cause(analysis[0]) if analysis else None
    if cause is None or cause["kind"] == "unknown":  # no answer to build on: read the blocks itself
        cause = _likely_cause(blocks, alert_at)
    dated = sorted(((b.at, b) for b in blocks if b.at is not None), key=lambda pair: pair[0])
    timeline = [{"at": at.isoformat(), "claim": _claim(f"{b.kind.replace('_', ' ')}: {b.title}", [b.id])}
                for at, b in dated[:5]]
    actions = [_claim(f"Follow the runbook: {b.title}", [b.id]) for b in blocks if b.kind == "runbook"][:1]
    if cause["kind"] == "deploy":
        actions.append(_claim("Consider rolling back the deploy", cause["claim"]["citations"][:1]))
    actions.append(_claim(f"Check {symptoms[0].title} until it recovers", [symptoms[0].id]))
    brief: dict[str, Any] = {"headline": headline, "impact": impact, "likely_causes": [cause],
                             "timeline": timeline, "next_actions": actions}
    project = header.get("jira_project", "none")
    if project != "none":
        brief["ticket"] = {"project": project, "summary": _prefixed(service, alert_title),
                           "description": cause["claim"]["text"], "priority": "High",
                           "citations": cause["claim"]["citations"]}
    return brief


ANALYSIS_FIELD = re.compile(r"^(?P<key>cause_kind|confidence|why): (?P<value>\S.*)$", re.MULTILINE)


def _analysed_cause(block: Block) -> dict[str, Any]:
    """The analysis's first candidate, kept as it is and cited by the analysis block's id."""
    fields = {found["key"]: found["value"].strip() for found in ANALYSIS_FIELD.finditer(block.body)}
    kind = fields.get("cause_kind", "unknown")
    confidence = fields.get("confidence", "low").split(" ", 1)[0]
    return {"kind": kind, "confidence": confidence,
            "claim": _claim(f"{kind} cause: {fields.get('why', block.title)}", [block.id])}


def _likely_cause(blocks: list[Block], alert_at: datetime | None) -> dict[str, Any]:
    def recent(block: Block) -> bool:
        return alert_at is None or (block.at is not None and timedelta(0) <= alert_at - block.at <= RECENT_CHANGE)

    logs = [b for b in blocks if b.kind == "log_pattern"]
    deploys = [b for b in blocks if b.kind == "deploy" and recent(b)]
    if deploys:
        cites = [deploys[0].id, *[b.id for b in logs[:1]]]
        return {"kind": "deploy", "confidence": "high",
                "claim": _claim(f"The deploy {deploys[0].title} shortly before the alert", cites)}
    changes = [b for b in blocks if b.kind == "event" and recent(b) and CONFIG_WORDS.search(b.text)]
    if changes:
        return {"kind": "config", "confidence": "medium",
                "claim": _claim(f"A configuration change: {changes[0].title}", [changes[0].id])}
    dependency = [b for b in blocks if b.kind in {"log_pattern", "metric"} and DEPENDENCY_WORDS.search(b.text)]
    if dependency:
        return {"kind": "dependency", "confidence": "medium",
                "claim": _claim(f"A dependency is failing: {dependency[0].title}", [b.id for b in dependency[:2]])}
    traffic = [b for b in blocks if b.kind == "metric" and TRAFFIC_WORDS.search(b.text)]
    if traffic:
        return {"kind": "traffic", "confidence": "low",
                "claim": _claim(f"Traffic changed: {traffic[0].title}", [traffic[0].id])}
    return {"kind": "unknown", "confidence": "low",
            "claim": _claim("The cause is not established by the evidence", [blocks[0].id])}


def _prefixed(service: str, text: str) -> str:
    """A summary that names the service once, as a model would write it."""
    named = re.match(rf"{re.escape(service)}(?![\w-])", text, re.IGNORECASE)
    return text if named else f"{service}: {text}"


def build_ticket(text: str) -> dict[str, Any]:
    """A ticket proposal for the ticket prompt: the project it names, citing the first blocks
    (the bot ranks them most relevant first), never a block that gives orders."""
    header = parse_header(text)
    blocks = [b for b in parse_blocks(text) if not INJECTION.search(b.text)]
    cites = [b.id for b in blocks[:2]]
    headline = header.get("headline", "incident")
    summary = _prefixed(header.get("service", "service"), headline)
    return {"project": header.get("jira_project", "none"), "summary": summary,
            "description": f"{headline}\nLikely cause: {header.get('top_cause', 'unknown')}\n"
                           f"Evidence: {', '.join(cites) or 'none'}",
            "priority": "High", "citations": cites}


def misbehave_ticket(behaviour: str, text: str, ticket: dict[str, Any]) -> dict[str, Any] | str:
    """The spoiled ticket proposal for `behaviour`."""
    if behaviour == "invalid_json":
        return json.dumps(ticket)[:60]
    if behaviour == "schema_violation":
        return {"summary": ticket["summary"], "priority": "Whenever"}
    if behaviour in {"uncited_claims", "unknown_citation_ids"}:
        return {**ticket, "citations": [] if behaviour == "uncited_claims" else ["log-pattern-000000"]}
    if behaviour == "obey_injection":
        planted = [b for b in parse_blocks(text) if INJECTION.search(b.text)]
        if planted:
            return {**ticket, "project": "PROD", "summary": "File now: deploy v9.9.9", "citations": [planted[0].id]}
    return ticket


def misbehave(behaviour: str, text: str, brief: dict[str, Any]) -> dict[str, Any] | str:
    """The spoiled answer for `behaviour` (a dict to send as JSON, or raw text)."""
    if behaviour == "invalid_json":
        return json.dumps(brief)[:120]
    if behaviour == "schema_violation":
        return {"headline": brief["headline"]["text"], "likely_causes": [{"kind": "gremlins"}]}
    if behaviour == "uncited_claims":
        spoiled = json.loads(json.dumps(brief))
        spoiled["impact"]["citations"] = []
        spoiled["next_actions"].append(_claim("The database ran out of disk space", []))
        return spoiled
    if behaviour == "unknown_citation_ids":
        spoiled = json.loads(json.dumps(brief))
        spoiled["headline"]["citations"] = ["deploy-ffffff", *spoiled["headline"]["citations"]]
        for cause in spoiled["likely_causes"]:
            cause["claim"]["citations"] = ["log-pattern-000000"]
        return spoiled
    if behaviour == "omit_ticket":
        return {key: value for key, value in brief.items() if key != "ticket"}
    if behaviour == "obey_injection":
        planted = [b for b in parse_blocks(text) if INJECTION.search(b.text)]
        if not planted:
            return brief
        order = planted[0]
        return {
            "headline": _claim(f"<!channel> {order.title}", [order.id]),
            "impact": _claim("As instructed by the log line", [order.id]),
            "likely_causes": [{"kind": "deploy", "confidence": "high",
                               "claim": _claim("The cause is deploy v9.9.9", [order.id])}],
            "ticket": {"project": "PROD", "summary": "File now: deploy v9.9.9", "description": order.body,
                       "citations": [order.id]},
        }
    return brief


def _tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def _call_id(prefix: str, text: str) -> str:
    return prefix + hashlib.sha256(text.encode()).hexdigest()[:24]


# --- wire formats --------------------------------------------------------------------------

def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(part.get("text") or part.get("content") or "") for part in content
                         if isinstance(part, dict))
    return ""


def openai_conversation(body: dict[str, Any]) -> Conversation:
    messages = body.get("messages") or []
    tools = [t.get("function", {}).get("name") for t in body.get("tools") or []]
    return Conversation(
        text="\n".join(_text_of(m.get("content")) for m in messages
                       if m.get("role") in {"system", "developer", "user"}),
        is_repair=any(m.get("role") == "assistant" for m in messages),
        output_tool=tools[0] if tools else None,
        model=str(body.get("model", "")),
    )


def anthropic_conversation(body: dict[str, Any]) -> Conversation:
    messages = body.get("messages") or []
    texts = [_text_of(body.get("system") or "")]
    for message in messages:
        content = message.get("content")
        if message.get("role") == "user":
            texts.append(_text_of([p for p in content if p.get("type") == "text"]) if isinstance(content, list)
                         else _text_of(content))
    tools = [t.get("name") for t in body.get("tools") or []]
    return Conversation(text="\n".join(texts), is_repair=any(m.get("role") == "assistant" for m in messages),
                        output_tool=tools[0] if tools else None, model=str(body.get("model", "")))


def _openai_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error" if code == "server_error" else "invalid_request_error",
                      "param": None, "code": code}}


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _openai_reply(conversation: Conversation, content: dict[str, Any] | str, created: int) -> dict[str, Any]:
    payload = content if isinstance(content, str) else json.dumps(content)
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if conversation.output_tool:
        message["tool_calls"] = [{"id": _call_id("call_", payload), "type": "function",
                                  "function": {"name": conversation.output_tool, "arguments": payload}}]
        finish = "tool_calls"
    else:
        message["content"], finish = payload, "stop"
    prompt_tokens, completion_tokens = _tokens(conversation.text), _tokens(payload)
    return {
        "id": _call_id("chatcmpl-", conversation.text + payload), "object": "chat.completion",
        "created": created, "model": conversation.model, "system_fingerprint": "fp_sandbox",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _anthropic_reply(conversation: Conversation, content: dict[str, Any] | str) -> dict[str, Any]:
    payload = content if isinstance(content, str) else json.dumps(content)
    if conversation.output_tool and isinstance(content, dict):
        blocks: list[dict[str, Any]] = [{"type": "tool_use", "id": _call_id("toolu_", payload),
                                         "name": conversation.output_tool, "input": content}]
        stop = "tool_use"
    else:
        # Anthropic's tool input is always an object: broken JSON can only come back as text.
        blocks, stop = [{"type": "text", "text": payload}], "end_turn"
    return {
        "id": _call_id("msg_", conversation.text + payload), "type": "message", "role": "assistant",
        "model": conversation.model, "content": blocks, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": _tokens(conversation.text), "output_tokens": _tokens(payload),
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def build(ctx: SandboxContext) -> LlmApp:
    app = LlmApp(ctx)

    async def respond(wire: Wire, conversation: Conversation) -> Reply | dict[str, Any] | str:
        behaviour = app.behaviour_for(wire, conversation.model)
        if behaviour == "http_500":
            return Reply(_openai_error("server_error", "The server had an error (sandbox)") if wire == "openai"
                         else _anthropic_error("api_error", "Internal server error (sandbox)"), status=500)
        spoil: Callable[[str, str, dict[str, Any]], dict[str, Any] | str]
        if PROBE_REQUEST in conversation.text:
            if behaviour == "slow":
                await asyncio.sleep(app.slow_seconds)
            return {"ok": True}
        if TICKET_REQUEST in conversation.text:
            answer, spoil = build_ticket(conversation.text), misbehave_ticket
        else:
            answer, spoil = build_brief(conversation.text), misbehave
        if behaviour == "slow":
            await asyncio.sleep(app.slow_seconds)
            return answer
        if conversation.is_repair and not app.stubborn:
            return answer  # sent back with the validation error: this model complies
        return spoil(behaviour, conversation.text, answer)

    @app.route("POST", "/v1/chat/completions", tool="llm.openai_model_call")
    async def chat_completions(req: SandboxRequest) -> Reply:
        body = req.json()
        if body.get("stream"):
            return Reply(_openai_error("invalid_request", "the sandbox model does not stream"), status=400)
        conversation = openai_conversation(body)
        content = await respond("openai", conversation)
        if isinstance(content, Reply):
            return content
        return Reply(_openai_reply(conversation, content, int(ctx.now.timestamp())))

    @app.route("POST", "/v1/messages", tool="llm.anthropic_model_call")
    async def messages(req: SandboxRequest) -> Reply:
        body = req.json()
        if body.get("stream"):
            return Reply(_anthropic_error("invalid_request_error", "the sandbox model does not stream; "
                                          "set max_tokens"), status=400)
        conversation = anthropic_conversation(body)
        content = await respond("anthropic", conversation)
        if isinstance(content, Reply):
            return content
        return Reply(_anthropic_reply(conversation, content))

    return app
