"""Finding and masking: the own detectors first, then the second opinion on what they left.

Pure and offline (regexes, a Luhn check; no model download). Masks name what was hidden
(``[REDACTED:email]``) so a reader knows something was there.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from typing import Any

from bot.core.redaction.detectors import DETECTORS, KEY_NAME_ONLY, Detector, Finding
from bot.core.redaction.second_opinion import second_opinion

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"
_BIDI_CHARS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
_INVISIBLE_HINT = re.compile(f"[{_ZERO_WIDTH}{_BIDI_CHARS}]")
_BIDI = re.compile(f"[{_BIDI_CHARS}]")
_INSIDE_TOKEN = re.compile(f"(?<=[\\w/+=.-])[{_ZERO_WIDTH}]+(?=[\\w/+=.-])")

MASK = "[REDACTED:{}]"


def _hint_pattern(hints: tuple[str, ...]) -> re.Pattern[str]:
    """One regex search (in C) instead of a Python loop of substring tests per detector: the
    output of a model is dozens of short strings, and the loop was most of their cost."""
    singles = sorted(h for h in hints if len(h) == 1)
    longer = [re.escape(h) for h in hints if len(h) > 1]
    alternatives = longer + ([f"[{re.escape(''.join(singles))}]"] if singles else [])
    return re.compile("|".join(alternatives))


_HINTS: tuple[re.Pattern[str], ...] = tuple(_hint_pattern(detector.hints) for detector in DETECTORS)


def _windows(detector: Detector, text: str, lowered: str) -> list[tuple[int, int]]:
    """Where the full pattern has to run: the whole text, or only around cheap candidates."""
    if detector.candidates is None:
        return [(0, len(text))]
    # Lower-casing keeps indices for nearly all text; when it does not, scan the original.
    haystack = lowered if detector.lowered and len(lowered) == len(text) else text
    # Overlapping windows are merged, not clipped: a clipped window starts inside the next
    # candidate ("10.0.0.1 10.0.0.1") and would miss it. Each text position is scanned once.
    windows: list[tuple[int, int]] = []
    for candidate in detector.candidates.finditer(haystack):
        start = max(0, candidate.start() - detector.lookback)
        end = min(len(text), candidate.end() + detector.reach)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], end))
        else:
            windows.append((start, end))
    return windows


def _overlaps(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    """`taken` is sorted and non-overlapping, so only the two neighbours can overlap
    (bisect keeps text with hundreds of findings linear-ish, not quadratic)."""
    index = bisect.bisect_left(taken, (start, start))
    return (index > 0 and taken[index - 1][1] > start) or (index < len(taken) and taken[index][0] < end)


def _covered(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    """Whether one span of `taken` (sorted, merged) holds all of start..end."""
    index = bisect.bisect_right(taken, (start, end)) - 1
    return index >= 0 and taken[index][1] >= end


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _claims(detector: Detector, text: str, lowered: str, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans this detector masks. A rejected match (not Luhn-valid, part of a timestamp,
    already wholly claimed) is retried one character later rather than skipped whole: in
    "10.0.0.1 4111 1111 1111 1111" the card pattern first matches "1 4111 ...", which fails Luhn.
    A match that only partly overlaps an earlier detector's claim is kept: in "password: 4539
    5781 2346 7893" the key's value is "4539", and the card number around it must be masked
    whole, not left as "5781 2346 7893" (`find` merges the two)."""
    spans: list[tuple[int, int]] = []
    for window_start, window_end in _windows(detector, text, lowered):
        pos = window_start
        while (match := detector.pattern.search(text, pos, window_end)) is not None:
            start, end = match.span(detector.group)
            usable = (
                0 <= start < end
                and (detector.accept is None or detector.accept(match.group(detector.group)))
                and (detector.context is None or detector.context(text, start, end))
                and not _covered(start, end, taken)
                and not _overlaps(start, end, spans)
            )
            if usable:
                bisect.insort(spans, (start, end))
                pos = max(match.end(), match.start() + 1)
            else:
                pos = match.start() + 1
    return spans


def find(text: str) -> list[Finding]:
    """Non-overlapping findings, earliest first. Where detectors' matches overlap, the finding
    covers all of them and is named by the longest (the first detector's, when as long): a
    secret is never masked in part because another pattern claimed a piece of it first."""
    if not text:
        return []
    lowered = text.lower()
    taken: list[tuple[int, int]] = []
    found: list[Finding] = []
    for detector, hints in zip(DETECTORS, _HINTS, strict=True):
        if hints.search(lowered) is None:
            continue
        if detector.gate is not None and detector.gate.search(text) is None:
            continue
        claimed = _claims(detector, text, lowered, taken)
        if claimed:
            found.extend(Finding(detector.kind, start, end) for start, end in claimed)
            taken = _merged(taken + claimed)
    # The second opinion looks only at what the own patterns left.
    for kind, start, end in second_opinion(text, lowered):
        if not _overlaps(start, end, taken):
            found.append(Finding(kind, start, end))
            bisect.insort(taken, (start, end))
    return _joined(found)


def _joined(found: list[Finding]) -> list[Finding]:
    """Overlapping findings as one, named by the longest (`found` is in detector order, and a
    stable sort keeps the earlier detector first among equals)."""
    out: list[Finding] = []
    named: list[Finding] = []  # the longest finding inside each of `out`
    for finding in sorted(found, key=lambda f: f.start):
        if out and finding.start < out[-1].end:
            last = out[-1]
            if finding.end - finding.start > named[-1].end - named[-1].start:
                named[-1] = finding
            out[-1] = Finding(named[-1].kind, last.start, max(last.end, finding.end))
        else:
            out.append(finding)
            named.append(finding)
    return out


def normalise(text: str) -> str:
    """Text as the detectors must see it: no bidi controls anywhere (U+202E turns what a reader
    sees around), and no zero-width characters inside a token (``ghp_abc\u200bdef`` is one key).
    A zero-width character beside punctuation stays: Slack escaping puts a word joiner after
    "@" to disarm ``@here``."""
    if not _INVISIBLE_HINT.search(text):
        return text
    return _INSIDE_TOKEN.sub("", _BIDI.sub("", text))


def redact(text: str | None) -> str:
    """The text with every finding replaced by its mask. ``None`` becomes ``""``.
    Findings are in `normalise`d text, which is what comes back (masked)."""
    if not text:
        return ""
    text = normalise(text)
    findings = find(text)
    if not findings:
        return text
    out: list[str] = []
    cursor = 0
    for finding in findings:
        out.append(text[cursor:finding.start])
        out.append(MASK.format(finding.kind))
        cursor = finding.end
    out.append(text[cursor:])
    return "".join(out)


def _secret_key(key: Any) -> bool:
    """A mapping key that names a secret (``password``, ``DD_API_KEY``): its string value is
    masked whole, whatever it looks like."""
    return isinstance(key, str) and KEY_NAME_ONLY.fullmatch(key) is not None


def redact_obj(value: Any) -> Any:
    """Redact every string inside dicts, lists and tuples; keys and other values are kept.
    A string under a secret-named key (``{"password": "hunter2"}``) is masked whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: (MASK.format("secret") if _secret_key(key) and isinstance(item, str) and item
                      else redact_obj(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [redact_obj(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_obj(item) for item in value)
    return value
