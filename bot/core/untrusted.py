"""Evidence text is untrusted data: how a bounded line of it may be quoted in a claim. Pure.

Text that addresses the bot (prompt injection, Slack broadcasts) is never quoted; anything
else is one line with links, secrets and PII masked (by `bot.core.redaction`, the one set of
secret patterns) and no Slack control sequences.
"""

from __future__ import annotations

import re

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
_ARROWS = (("<->", "↔"), ("->", "→"), ("=>", "⇒"), ("<-", "←"), (">=", "≥"), ("<=", "≤"))


def looks_like_instructions(text: str) -> bool:
    """True for text that addresses the bot (prompt injection, Slack broadcasts)."""
    return bool(_INSTRUCTION_LIKE.search(text))


def quote_untrusted(text: str | None, limit: int = 100, *, keep_code: bool = False) -> str | None:
    """One bounded line of evidence text that is safe to put inside a claim, or None.

    None when the text addresses the bot (it is never quoted). Otherwise: one line, URLs
    replaced by ``[link]``, secrets and PII masked as everywhere else (``[REDACTED:kind]``), no
    angle brackets (Slack control sequences), backticks kept only for balanced code spans when
    ``keep_code``, and at most ``limit`` characters.
    """
    if not text or looks_like_instructions(text):
        return None
    line = " ".join(text.split())
    line = _URL.sub("[link]", line)
    line = redact(line)
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

