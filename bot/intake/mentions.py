"""Understanding what a person asked the bot, in a mention or in `/brief`. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.core.models import ServiceEntry
from bot.intake.catalog import Catalog

_USER_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")

Intent = Literal["brief", "refresh", "help"]


@dataclass(frozen=True)
class Request:
    intent: Intent
    service: ServiceEntry | None
    text: str  # what the person typed, mentions removed
    link: str | None = None  # a pasted alert link, if any


def parse_request(text: str, catalog: Catalog) -> Request:
    """"brief", "brief checkout-api", free text naming a service, a pasted link, "refresh", "help"."""
    cleaned = _USER_MENTION.sub(" ", text or "")
    link_match = _LINK.search(cleaned)
    link = link_match.group(1) if link_match else None
    plain = " ".join(_LINK.sub(lambda m: m.group(1), cleaned).split())
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
