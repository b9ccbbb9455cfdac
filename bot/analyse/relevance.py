"""What a change touched, weighed against what is failing.

Timing says a change *could* be the cause; content says whether it plausibly *is*. A change
whose files, pull-request titles, labels, body or description share words with the symptom
(the error text, the failing metric's name, the dependencies and hosts the errors name) points
at the failure; a change that touched only documentation, tests or copy cannot break a running
service and is ranked down, whatever its timing. Words are compared after splitting paths and
camelCase identifiers and a light stemming, so ``PriceCalculator.java`` meets
``PriceCalculator.applyDiscount`` and ``orders_by_customer_idx`` meets ``idx_orders_customer``.

Pure functions over plain text; the vocabularies live in `bot.analyse.vocabulary`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.analyse.vocabulary import GENERIC_WORDS, INERT_LABELS, INERT_PATH, INERT_TITLE

MAX_MATCH_WORDS = 4
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def stem(word: str) -> str:
    """A light stemmer: enough that "discounts" meets "discount", "indexes" meets "index" and
    "pricing" meets "price" (a final "e" goes too)."""
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) >= 5 else word


def words(text: str, ignore: Iterable[str] = ()) -> set[str]:
    """The meaningful words of a text: identifiers split at punctuation and camelCase, lower-cased,
    stemmed, four characters and more, minus generic words and those in `ignore`."""
    skip = GENERIC_WORDS | {stem(w) for w in ignore}
    out: set[str] = set()
    for chunk in re.findall(r"[A-Za-z0-9]+", text):
        parts = [chunk, *_CAMEL.findall(chunk)]
        for part in parts:
            word = stem(part.lower())
            if len(word) >= 4 and not word.isdigit() and word not in skip:
                out.add(word)
    return out


def surface_forms(text: str) -> dict[str, str]:
    """Each of `words`' stems mapped to how the text first spelled it ("PriceCalculator" for
    "pricecalculator", "engine" for "engin"): a reason shown in the brief uses the reader's word."""
    forms: dict[str, str] = {}
    for chunk in re.findall(r"[A-Za-z0-9]+", text):
        for part in [chunk, *_CAMEL.findall(chunk)]:
            forms.setdefault(stem(part.lower()), part)
    return forms


def change_text(data: dict[str, Any], title: str) -> str:
    """Everything a deploy or config event says about what it changed, as one text: its title,
    description, pull requests (title, body, labels), commit messages and changed paths."""
    parts = [title, str(data.get("description") or "")]
    for pr in data.get("pull_requests") or []:
        if isinstance(pr, dict):
            parts += [str(pr.get("title") or ""), str(pr.get("body") or "")]
            parts += [str(label) for label in pr.get("labels") or []]
    parts += [str(c.get("message") or "") for c in data.get("commits") or [] if isinstance(c, dict)]
    parts += [str(path) for path in data.get("files") or []]
    return "\n".join(parts)


def content_match(change_words: set[str], symptom_words: set[str]) -> list[str]:
    """The words a change shares with the symptom, longest first (the most specific)."""
    shared = change_words & symptom_words
    return sorted(shared, key=lambda w: (-len(w), w))[:MAX_MATCH_WORDS]


def inert_reason(files: list[str], labels: list[str], titles: list[str]) -> str | None:
    """Why a change cannot explain a failure, or None. Its files decide when GitHub listed them;
    without files, labels such as ``documentation`` or a title such as "Update footer copy" do.
    The reason quotes the change's own title (``titles[0]``) so a reader recognises it."""
    title = next((t for t in titles if t), "")
    named = f"“{title}”: " if title else ""
    if files:
        if all(INERT_PATH.search(path) for path in files):
            shown = ", ".join(files[:2]) + (f" and {len(files) - 2} more" if len(files) > 2 else "")
            return f"changed only docs, tests or copy ({named}{shown})"
        return None
    inert_labels = [label for label in labels if label.lower() in INERT_LABELS]
    if inert_labels and len(inert_labels) == len(labels):
        return f"changed only {inert_labels[0].lower()} ({named}labelled {', '.join(inert_labels[:2])})"
    by_title = next((t for t in titles if t and INERT_TITLE.search(t)), None)
    if by_title is not None and not any(label.lower() not in INERT_LABELS for label in labels):
        return f"changed only docs or copy, by its title “{by_title}”"
    return None
