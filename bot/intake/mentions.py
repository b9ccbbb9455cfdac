"""Understanding what a person asked the bot, in a mention or in `/brief`. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.core.models import ServiceEntry
from bot.intake.catalog import Catalog

_LEADING_MENTIONS = re.compile(r"^\s*(?:<@[A-Z0-9]+(?:\|[^>]*)?>[\s,:]*)+")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")
# Slack's entity tokens in message text (docs: "Formatting text for app surfaces"): a channel
# <#C123|name>, a user <@U123|name>, a user group <!subteam^S123|@handle>, a special mention
# <!here>, a date <!date^…|fallback>, a link <url|label> or <mailto:…|label>.
_TOKEN = re.compile(r"<([#@!])?([^<>|]*)(?:\|([^<>]*))?>")
_SPECIAL = {"here", "channel", "everyone"}

Intent = Literal["brief", "refresh", "help"]


@dataclass(frozen=True)
class Request:
    intent: Intent
    service: ServiceEntry | None
    text: str  # what the person typed, mentions removed
    link: str | None = None  # a pasted alert link, if any


def render_slack_text(text: str) -> str:
    """Slack's entity tokens as the names a person reads: ``<#C123|ops>`` -> ``#ops``,
    ``<!subteam^S1|@oncall>`` -> ``@oncall``, ``<@U1|ana>`` -> ``@ana``, ``<!here>`` -> ``@here``,
    a date -> its fallback text, a link -> its URL (a pasted alert link is what we act on).
    Without a label, the id stands in (``#C123``). Untrusted text in, plain text out."""

    def readable(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2).strip(), (match.group(3) or "").strip()
        if sigil == "#":
            return f"#{label or target}"
        if sigil == "@":
            return f"@{label.lstrip('@') or target}"
        if sigil == "!":
            kind, _, rest = target.partition("^")
            if kind == "subteam":
                return f"@{label.lstrip('@')}" if label else f"@{rest or 'group'}"
            if kind in _SPECIAL:
                return f"@{kind}"
            return label or target  # <!date^…|Mar 5>: the fallback text
        if target.startswith(("http://", "https://")):
            return target
        return label or target.removeprefix("mailto:")

    return _TOKEN.sub(readable, text or "")


def parse_request(text: str, catalog: Catalog) -> Request:
    """"brief", "brief checkout-api", free text naming a service, a pasted link, "refresh", "help".
    The bot's own address (the mentions the message starts with) is dropped; Slack's other
    entity tokens are rendered as readable names (`render_slack_text`)."""
    cleaned = _LEADING_MENTIONS.sub(" ", text or "")
    link_match = _LINK.search(cleaned)
    link = link_match.group(1) if link_match else None
    plain = " ".join(render_slack_text(cleaned).split())
    first = plain.lower().split(" ", 1)[0] if plain else ""
    if first in {"help", "?"}:
        return Request("help", None, plain)
    if first == "refresh":
        return Request("refresh", catalog.find_in_text(plain), plain, link)
    return Request("brief", catalog.find_in_text(plain), plain, link)


HELP_TEXT = (
    "*How to use me*\n"
    "• `@incident-brief brief` in an incident channel: a cited brief for this channel's service\n"
    "• `@incident-brief brief checkout-api` (or any text naming a service, or a pasted alert link)\n"
    "• `@incident-brief refresh` in a brief's thread: re-gather and update it in place\n"
    "• `/brief [service]` anywhere\n"
    "I only read (Datadog, GitHub, Confluence, PagerDuty, Jira search). A Jira ticket is filed only "
    "when a permitted person clicks *Create Jira ticket* and confirms."
)
