"""Outside text made safe for Slack's mrkdwn: no broadcasts, no pings, no forged links.

Evidence, alert titles and model output are untrusted: a log line reading ``<!channel>`` must
show as text, never notify a channel. Slack's rule is that ``&``, ``<`` and ``>`` are the only
control characters in message text; escaping them disarms ``<!here>``, ``<@U…>``, ``<#C…>``
and ``<url|label>``. Bare ``@here`` and friends only notify when a client asks Slack to parse
names, but a zero-width joiner makes sure they never do.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ZERO_WIDTH_JOINER = "\u2060"  # WORD JOINER: invisible, breaks "@here" as a token
_BARE_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
# Control characters, and the bidi overrides and isolates (U+202A-202E, U+2066-2069, marks):
# "invoice \u202egnp.exe" shows as "invoice exe.png", so outside text never carries them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Outside text as literal mrkdwn: shown as written, never a mention, link or broadcast."""
    out = _CONTROL.sub("", text)
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BARE_BROADCAST.sub(lambda m: "@" + ZERO_WIDTH_JOINER + m.group(1), out)


def user_mention(user_id: str) -> str:
    """A Slack user id as a mention; anything else as text (ids come from Slack, names might not)."""
    value = user_id.strip()
    if value[:1] in {"U", "W"} and value.isalnum() and value.isupper():
        return f"<@{value}>"
    return escape(value)


def safe_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) URL that cannot break out of a ``<url|label>``."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    cleaned = url.strip()
    if any(ch in cleaned for ch in "<>| \t\r\n") or _CONTROL.search(cleaned):
        # Percent-encode what would end the link early; Slack links treat these as syntax.
        cleaned = (cleaned.replace(" ", "%20").replace("|", "%7C").replace("<", "%3C")
                   .replace(">", "%3E").replace("\t", "%09").replace("\r", "").replace("\n", ""))
        cleaned = _CONTROL.sub("", cleaned)
    return cleaned.replace("&", "&amp;")


def link(url: str | None, label: str) -> str:
    """A mrkdwn link with an escaped label; just the escaped label when the URL is unsafe."""
    shown = escape(label).replace("|", "¦")  # a "|" in the label would end it early
    target = safe_url(url)
    if target is None:
        return shown
    return f"<{target}|{shown}>" if shown.strip() else f"<{target}>"


def truncate(text: str, limit: int, more_url: str | None = None) -> str:
    """Already-escaped mrkdwn cut to at most `limit` characters, ending in "…" and, when
    given, a "more" link. Never cuts inside an entity (``&amp;``) or a ``<…>`` link."""
    if len(text) <= limit:
        return text
    more = f" {link(more_url, 'more')}" if safe_url(more_url) else ""
    budget = max(limit - len(ELLIPSIS) - len(more), 0)
    cut = _safe_cut(text, budget)
    out = text[:cut].rstrip() + ELLIPSIS + more
    return out if len(out) <= limit else out[:limit]


def _safe_cut(text: str, budget: int) -> int:
    """The largest index <= budget that is not inside an ``&…;`` entity or a ``<…>`` link."""
    cut = budget
    amp = text.rfind("&", 0, cut)
    if amp != -1 and ";" not in text[amp:cut] and text.find(";", amp) != -1 and text.find(";", amp) - amp <= 8:
        cut = amp
    opened = text.rfind("<", 0, cut)
    if opened != -1 and text.rfind(">", 0, cut) < opened:
        cut = opened
    return cut
