"""The parts of Slack's requests the bot reads, as models (pure).

The web gate (`bot.intake.slack_gate`) validates every signed request against these before Bolt
sees it, and the listeners read the same models, so a listener never meets a missing key, a
list where a dict was due, or a number too large for the database: a body that does not fit is
answered 400 with the first mismatch, not 500 with a traceback. Only what the bot acts on is
modelled; everything else Slack sends stays as it came (``extra="allow"``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.intake.safejson import BadJson, loads_bounded

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Ts = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Version = Annotated[int, Field(ge=1, le=1_000_000)]
# The actions and modals whose values the bot parses; others are acknowledged as they come.
BRIEF_ACTIONS = frozenset({"ticket_create", "brief_refresh", "feedback_up", "feedback_down"})


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class SlackUser(_Open):
    id: Id


class SlackChannel(_Open):
    id: Id


class SlackMessage(_Open):
    ts: Ts


class AppMention(_Open):
    type: str
    channel: Id
    ts: Ts
    user: Id | None = None
    text: Annotated[str, StringConstraints(max_length=40_000)] = ""
    thread_ts: Ts | None = None
    team: Id | None = None


class EventEnvelope(_Open):
    type: str
    event_id: Id | None = None
    team_id: Id | None = None
    event: dict[str, Any] | None = None


class BriefButtonValue(BaseModel):
    """The value of a brief card's buttons: which incident and which brief version."""

    model_config = ConfigDict(extra="ignore", strict=True)
    incident_key: Key
    brief_version: Version


class SlackAction(_Open):
    action_id: Annotated[str, StringConstraints(max_length=255)]
    value: Annotated[str, StringConstraints(max_length=2000)] | None = None


class BlockActions(_Open):
    """A click on one of the brief card's buttons."""

    type: str
    user: SlackUser
    actions: Annotated[list[SlackAction], Field(min_length=1)]
    channel: SlackChannel
    message: SlackMessage
    trigger_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    team: dict[str, Any] | None = None

    def button(self) -> BriefButtonValue:
        return BriefButtonValue.model_validate(_json_object(self.actions[0].value or "", "button value"))


class ViewState(_Open):
    values: dict[str, dict[str, dict[str, Any]]]


class SubmittedView(_Open):
    callback_id: Annotated[str, StringConstraints(max_length=255)] = ""
    private_metadata: Annotated[str, StringConstraints(max_length=3000)] = ""
    state: ViewState


class ViewSubmission(_Open):
    type: str
    user: SlackUser
    view: SubmittedView

    def text(self, block: str) -> str:
        """The text typed (or option chosen) in input `block`; "" when absent."""
        field = next(iter(self.view.state.values.get(block, {}).values()), {})
        option = field.get("selected_option")
        value = option.get("value") if isinstance(option, dict) else field.get("value")
        return value if isinstance(value, str) else ""

    def first_text(self) -> str:
        for block in self.view.state.values:
            if value := self.text(block):
                return value
        return ""


class TicketMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    approval_id: Id


class SlashCommand(_Open):
    command: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    channel_id: Id
    user_id: Id
    text: Annotated[str, StringConstraints(max_length=4000)] = ""
    team_id: Id | None = None
    trigger_id: Annotated[str, StringConstraints(max_length=200)] | None = None


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = loads_bounded(text)
    except BadJson as exc:
        raise ValueError(f"{what}: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{what}: not a JSON object")
    return value


def ticket_metadata(view: SubmittedView) -> TicketMetadata:
    return TicketMetadata.model_validate(_json_object(view.private_metadata, "private_metadata"))


def feedback_metadata(view: SubmittedView) -> BriefButtonValue:
    return BriefButtonValue.model_validate(_json_object(view.private_metadata, "private_metadata"))


def check_shape(body: dict[str, Any]) -> None:
    """Raise `ValueError` (a `ValidationError` is one) when a request the bot acts on lacks
    what its listener reads. Requests the bot only acknowledges need a type and nothing else."""
    if "command" in body:
        SlashCommand.model_validate(body)
        return
    kind = body.get("type")
    if not isinstance(kind, str):
        raise ValueError("no request type")
    if kind == "url_verification" and not isinstance(body.get("challenge"), str):
        raise ValueError("url_verification without a challenge")
    if kind == "event_callback":
        envelope = EventEnvelope.model_validate(body)
        if not isinstance(envelope.event, dict) or not isinstance(envelope.event.get("type"), str):
            raise ValueError("event_callback without an event")
        if envelope.event["type"] == "app_mention":
            AppMention.model_validate(envelope.event)
    elif kind == "block_actions":
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else None
        if isinstance(first, dict) and first.get("action_id") in BRIEF_ACTIONS:
            BlockActions.model_validate(body).button()
    elif kind == "view_submission":
        submission = ViewSubmission.model_validate(body)
        if submission.view.callback_id == "ticket_submit":
            ticket_metadata(submission.view)
        elif submission.view.callback_id == "feedback_reason":
            feedback_metadata(submission.view)


def first_error(exc: Exception) -> str:
    """One line saying what did not fit."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return f"{where}: {first['msg']}"[:300]
    return str(exc)[:300]
