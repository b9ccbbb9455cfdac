"""Clipping text for evidence and titles: masked first, then cut.

A secret cut in half no longer matches its pattern (``ghp_1234567890abcdefghijkl…``, a JWT's
first 80 characters): every place that shortens outside text does it through `clip`, which
masks the full text and only then cuts, and never cuts inside a mask.
"""

from __future__ import annotations

import re

from bot.core.redaction.engine import redact

ELLIPSIS = "…"
_MASK_TAIL = re.compile(r"\[(?:R(?:E(?:D(?:A(?:C(?:T(?:E(?:D(?::[a-z_]*)?)?)?)?)?)?)?)?)?$")


def clip(text: str | None, limit: int, *, one_line: bool = True) -> str:
    """`text` masked, then at most `limit` characters, ending in "…" when cut. ``one_line``
    folds whitespace runs (newlines included) into single spaces first."""
    if not text:
        return ""
    masked = redact(" ".join(text.split()) if one_line else text)
    if len(masked) <= limit:
        return masked
    cut = masked[: max(0, limit - 1)]
    # A mask cut in half ("[REDACTED:git") would read as garbage: drop the partial mask.
    cut = _MASK_TAIL.sub("", cut)
    return cut + ELLIPSIS
