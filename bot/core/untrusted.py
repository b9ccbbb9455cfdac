"""Evidence text is untrusted data: how a bounded line of it may be quoted in a claim. Pure.

Text that addresses the bot (prompt injection, Slack broadcasts) is never quoted; anything
else is one line with secrets and PII masked (by `bot.core.redaction`, the one set of secret
patterns), no Slack control sequences, and URLs reduced to their host: the host names who was
called (``POST api[.]stripe[.]com/[path] timed out`` says the payment provider timed out), the
path and query may hold tokens and ids and are dropped. The host's dots are bracketed
(defanged) so no Slack client turns it into a live link.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bot.core.redaction import redact

_INSTRUCTION_LIKE = re.compile(
    r"ignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier)\s+(?:instructions|prompts?|messages?)"
    r"|disregard\s+(?:all\s+|the\s+)?(?:previous|prior|above)"
    r"|^\W*(?:system|assistant|developer)\s*:"
    r"|\byou\s+are\s+now\b|\bnew\s+instructions\b"
    r"|\bsay\s+(?:that\s+)?the\s+(?:root\s+)?cause\b"
    r"|\b(?:file|create|open)\s+an?\s+(?:jira\s+)?(?:ticket|issue)\b"
    r"|<!(?:channel|here|everyone)\b|@(?:channel|here|everyone)\b",
    re.IGNORECASE,
)
_URL = re.compile(r"<?https?://[^\s<>|]+(?:\|[^>]*)?>?", re.IGNORECASE)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*")
_ARROWS = (("<->", "↔"), ("->", "→"), ("=>", "⇒"), ("<-", "←"), (">=", "≥"), ("<=", "≤"))


def defang(host: str) -> str:
    """A host name no chat client links: ``api.stripe.com`` -> ``api[.]stripe[.]com``."""
    return host.replace(".", "[.]")


def _host_of(match: re.Match[str]) -> str:
    """A URL as its host only (defanged), ``/[path]`` when it had more; ``[link]`` when no
    plain host can be read. Credentials, port, path and query are dropped; an address that
    names a person's machine is masked like any other."""
    url = match.group(0).lstrip("<").rstrip(">").split("|", 1)[0]
    trailing = ""
    # A sentence's punctuation is not part of the URL; a closing bracket is only when unbalanced
    # (a mask inside the query, "…=[REDACTED:email]", keeps its own).
    while url and (url[-1] in ".,;:'\"" or any(url[-1] == close and url.count(open_) < url.count(close)
                                                for open_, close in ("()", "[]", "{}"))):
        trailing, url = url[-1] + trailing, url[:-1]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "[link]" + trailing
    if not host or not _HOST.fullmatch(host):
        return "[link]" + trailing
    masked = redact(host)
    shown = masked if masked != host else defang(host)
    rest = parts.path.strip("/") or parts.query or parts.fragment
    return shown + ("/[path]" if rest else "") + trailing


def looks_like_instructions(text: str) -> bool:
    """True for text that addresses the bot (prompt injection, Slack broadcasts)."""
    return bool(_INSTRUCTION_LIKE.search(text))


def quote_untrusted(text: str | None, limit: int = 100, *, keep_code: bool = False) -> str | None:
    """One bounded line of evidence text that is safe to put inside a claim, or None.

    None when the text addresses the bot (it is never quoted). Otherwise: one line, URLs
    reduced to their defanged host (``api[.]stripe[.]com/[path]``; ``[link]`` when no host can
    be read), secrets and PII masked as everywhere else (``[REDACTED:kind]``), no
    angle brackets (Slack control sequences), backticks kept only for balanced code spans when
    ``keep_code``, and at most ``limit`` characters.
    """
    if not text or looks_like_instructions(text):
        return None
    line = redact(" ".join(text.split()))  # masked first: a URL's query may hold a token
    line = _URL.sub(_host_of, line)
    # No raw angle brackets (Slack control sequences such as <!channel>), but keep what they
    # meant: arrows stay arrows and placeholders like `<previous sha>` stay visibly placeholders.
    for raw, safe in _ARROWS:
        line = line.replace(raw, safe)
    line = line.replace("<", "‹").replace(">", "›")
    if not keep_code or line.count("`") % 2:
        line = line.replace("`", "'")
    line = line.strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
        if line.count("`") % 2:
            line = line.replace("`", "'")
    return line or None

