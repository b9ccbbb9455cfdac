"""Reading untrusted JSON without crashing on it (pure: no I/O).

`json.loads` accepts things the rest of the bot cannot carry: a document nested thousands deep
(``RecursionError`` there or later), numbers with thousands of digits (``ValueError`` from the
int parser, ``OverflowError`` in the database), ``NaN``/``Infinity``, and lone UTF-16 surrogates
(``"\\ud800"``) that blow up the first time the text is encoded to be logged, stored or sent.
`loads_bounded` turns every one of those into a `BadJson` with a sentence a caller can answer
a 400 with.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # Slack and PagerDuty bodies nest less than 10 deep
MAX_INT_DIGITS = 30  # ids and timestamps; nothing real is longer


class BadJson(ValueError):
    """The text is not JSON the bot can read; the message says why."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadJson(f"a number with more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 64:
        raise BadJson("a number longer than 64 characters")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadJson("a number out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON number")


def loads_bounded(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in `raw`, or `BadJson` saying why it cannot be read."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadJson(f"not UTF-8 (byte {exc.start})") from exc
    try:
        value = json.loads(raw, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_reject_constant)
    except BadJson:
        raise
    except RecursionError as exc:
        raise BadJson(f"nested deeper than {max_depth} levels") from exc
    except json.JSONDecodeError as exc:
        raise BadJson(f"not JSON ({exc.msg} at position {exc.pos})") from exc
    except ValueError as exc:  # e.g. the int parser's own digit limit
        raise BadJson(f"not JSON ({exc})") from exc
    check_value(value, max_depth=max_depth)
    return value


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise `BadJson` when `value` nests deeper than `max_depth` or holds a string (or key)
    that is not valid Unicode text. Iterative, so no depth can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise BadJson(f"nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadJson(f"a string with an unpaired surrogate (\\u{ord(text[exc.start]):04x})") from exc
