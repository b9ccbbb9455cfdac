"""Secrets to plant, as hypothesis strategies: one of every kind the redactor knows, drawn
fresh per case, whole or cut to 12+ characters as a clip upstream would leave them.

A plant is the text to put in a field and the material that must never come out (the secret
itself, or its secret part: a private key's body, a webhook URL's path). A cut plant ends its
field (that is where a clip leaves it); a whole one may sit anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = UPPER.lower()
DIGITS = "0123456789"
ALNUM = UPPER + LOWER + DIGITS
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"


@dataclass(frozen=True)
class Plant:
    kind: str
    text: str  # what goes into the field
    material: tuple[str, ...]  # what must never appear, whole or as a 12-character piece
    cut: bool  # the text was cut short: it must end its field


def _run(alphabet: str, size: int) -> st.SearchStrategy[str]:
    # From random bytes, not `st.text`: that also draws string constants found in the code under
    # test ("conversations.info" fits a base64 alphabet), and a secret holding a word of ours
    # would be "found" wherever that word is, leaked or not. (Drawn character by character it is
    # twice as slow: seconds over the fuzz sweep's thousands of fields.)
    return st.binary(min_size=size, max_size=size).map(lambda raw: "".join(alphabet[b % len(alphabet)] for b in raw))


def _luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:  # doubled: the check digit will sit to the right of these
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


@st.composite
def _card(draw: st.DrawFn) -> str:
    body = draw(st.sampled_from("2345")) + draw(_run(DIGITS, 14))
    number = body + _luhn_digit(body)
    sep = draw(st.sampled_from([" ", "-", ".", ""]))
    return sep.join(number[i:i + 4] for i in range(0, 16, 4))


@st.composite
def _ssn(draw: st.DrawFn) -> str:
    area = draw(st.integers(100, 665))
    sep = draw(st.sampled_from(["-", " "]))
    return f"{area:03d}{sep}{draw(st.integers(10, 99)):02d}{sep}{draw(st.integers(1000, 9999))}"


@st.composite
def _phone(draw: st.DrawFn) -> str:
    area, exchange, line = draw(st.integers(201, 989)), draw(st.integers(201, 989)), draw(st.integers(1000, 9999))
    shape = draw(st.sampled_from(["({a}) {e}-{n}", "{a}-{e}-{n}", "{a} {e} {n}", "+1 {a} {e} {n}",
                                  "+44 20 {e}{x} {n}"]))
    return shape.format(a=area, e=exchange, n=line, x=draw(st.integers(0, 9)))


def _private_key(body: list[str]) -> str:
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END RSA PRIVATE KEY-----"


# kind -> (strategy of the whole secret, the text planted around it, whether a cut stays recognisable)
KINDS: dict[str, st.SearchStrategy[tuple[str, tuple[str, ...]]]] = {
    "github_token": _run(ALNUM, 36).map(lambda s: ("ghp_" + s, ("ghp_" + s,))),
    "slack_token": st.tuples(_run(DIGITS, 11), _run(DIGITS, 13), _run(ALNUM, 24)).map(
        lambda p: (f"xoxb-{p[0]}-{p[1]}-{p[2]}", (f"xoxb-{p[0]}-{p[1]}-{p[2]}",))),
    "slack_app_token": st.tuples(_run(UPPER + DIGITS, 10), _run(DIGITS, 13), _run("0123456789abcdef", 64)).map(
        lambda p: (f"xapp-1-A{p[0]}-{p[1]}-{p[2]}", (f"xapp-1-A{p[0]}-{p[1]}-{p[2]}",))),
    "slack_webhook": st.tuples(_run(UPPER + DIGITS, 8), _run(UPPER + DIGITS, 8), _run(ALNUM, 24)).map(
        lambda p: (f"https://hooks.slack.com/services/T{p[0]}/B{p[1]}/{p[2]}", (f"T{p[0]}/B{p[1]}/{p[2]}",))),
    "aws_key": _run(UPPER + DIGITS, 16).map(lambda s: ("AKIA" + s, ("AKIA" + s,))),
    # Mixed case is what makes 40 characters an AWS secret (with its name beside it).
    "aws_secret_key": _run(B64, 38).map(lambda s: ("aws_secret_access_key=wJ" + s, ("wJ" + s,))),
    "google_api_key": _run(B64URL, 35).map(lambda s: ("AIza" + s, ("AIza" + s,))),
    "stripe_key": _run(ALNUM, 24).map(lambda s: ("sk_live_" + s, ("sk_live_" + s,))),
    "jwt": st.tuples(_run(B64URL, 20), _run(B64URL, 40), _run(B64URL, 43)).map(
        lambda p: (f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}", (f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}",))),
    "private_key": st.lists(_run(B64, 64), min_size=2, max_size=3).map(
        lambda body: (_private_key(body), tuple(body))),
    "email": st.tuples(_run(LOWER, 8), _run(LOWER + DIGITS, 6), _run(LOWER, 9)).map(
        lambda p: (f"{p[0]}.{p[1]}@{p[2]}.com", (f"{p[0]}.{p[1]}@{p[2]}.com",))),
    "card_number": _card().map(lambda s: (s, (s,))),
    "ssn": _ssn().map(lambda s: (s, (s,))),
    "phone": _phone().map(lambda s: (s, (s,))),
}
# Kinds whose start alone is recognisable (a prefix, a header): what a clip can leave behind.
CUTTABLE = ("github_token", "slack_token", "slack_app_token", "slack_webhook", "aws_key", "aws_secret_key",
            "google_api_key", "stripe_key", "jwt", "private_key")


def _cut_material(text: str, material: tuple[str, ...]) -> tuple[str, ...]:
    """The parts of each material that survived the cut, where 12 characters or more did."""
    kept = []
    for secret in material:
        start = text.find(secret[:12])
        if start >= 0:
            survived = secret[:len(text) - start]
            if len(survived) >= 12:
                kept.append(survived)
    return tuple(kept)


@st.composite
def plants(draw: st.DrawFn, *, may_cut: bool = True) -> Plant:
    kind = draw(st.sampled_from(sorted(KINDS)))
    text, material = draw(KINDS[kind])
    if may_cut and kind in CUTTABLE and draw(st.booleans()):
        first = min(text.find(m) for m in material)
        size = draw(st.integers(first + 12, len(text) - 1))
        cut = text[:size]
        return Plant(kind, cut, _cut_material(cut, material), cut=True)
    return Plant(kind, text, material, cut=False)


LEADS = st.sampled_from(["", "auth failed for", "token", "password:", "note -", "contact", "see", "key="])


@st.composite
def field(draw: st.DrawFn, planted: list[Plant]) -> str:
    """A field's text with one or two plants (recorded in `planted`); only the last may be cut
    (a clip leaves one cut secret, at the end)."""
    words = [draw(LEADS)]
    chosen = [*draw(st.lists(plants(may_cut=False), max_size=1)), draw(plants())]
    for index, plant in enumerate(chosen):
        words.append(plant.text)
        if not plant.cut and index == len(chosen) - 1 and draw(st.booleans()):
            words.append("then retried")
        if index < len(chosen) - 1:
            words.append("and")
        planted.append(plant)
    return " ".join(word for word in words if word)


class Haystack:
    """Every 12-character window of every planted material (a shorter one, an SSN, whole), found
    in each text by a rolling hash of all its windows of that size at once (numpy), each hash
    hit then compared as text: a lookup per position in Python took about half a minute over
    the sweep's megabytes of DEBUG logs, a substring search per piece minutes."""

    PIECE = 12
    CHUNK = 1 << 20  # characters hashed at a time: bounded memory whatever the text's size

    def __init__(self, planted: list[Plant]) -> None:
        self.windows: dict[int, dict[str, Plant]] = {}
        for plant in planted:
            for secret in plant.material:
                size = min(len(secret), self.PIECE)
                by_size = self.windows.setdefault(size, {})
                for start in range(0, len(secret) - size + 1):
                    by_size[secret[start:start + size]] = plant
        self.hashes = {size: np.unique(np.array([_hash(w) for w in windows], dtype=np.uint64))
                       for size, windows in self.windows.items()}
        # A bit per low-bits value of the planted hashes: most windows are ruled out by one lookup.
        self.filters = {size: np.zeros(_FILTER_MASK + 1, dtype=bool) for size in self.hashes}
        for size, known in self.hashes.items():
            self.filters[size][known & _FILTER_MASK] = True

    def found(self, text: str) -> list[tuple[Plant, str]]:
        """(plant, text around it) for each distinct plant whose piece is in `text`."""
        hits: dict[int, tuple[Plant, str]] = {}
        for size, at in self._candidates(text):
            plant = self.windows[size].get(text[at:at + size])
            if plant is not None and id(plant) not in hits:
                hits[id(plant)] = (plant, text[max(0, at - 80):at + 40])
        return list(hits.values())

    def _candidates(self, text: str) -> Iterator[tuple[int, int]]:
        """(size, position) of each window whose hash is a planted window's of that size: every
        window's hash grows one character per pass, and is looked up after its size's pass."""
        longest = max(self.windows, default=0)
        for offset in range(0, max(len(text) - min(self.windows, default=1) + 1, 0), self.CHUNK):
            piece = text[offset:offset + self.CHUNK + longest - 1]
            codes = np.frombuffer(piece.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
            rolled = np.zeros(len(codes), dtype=np.uint64)
            for size in range(1, longest + 1):
                # rolled[i] = hash(piece[i:i + size]); the last size-1 entries are not whole windows
                rolled[:len(codes) - size + 1] *= _BASE
                rolled[:len(codes) - size + 1] += codes[size - 1:]
                if size in self.hashes:
                    windows = rolled[:len(codes) - size + 1]
                    maybe = np.flatnonzero(self.filters[size][windows & _FILTER_MASK])
                    known = self.hashes[size]
                    slots = np.minimum(np.searchsorted(known, windows[maybe]), len(known) - 1)
                    for at in maybe[known[slots] == windows[maybe]].tolist():
                        yield size, at + offset


_BASE = np.uint64(1_000_003)
_FILTER_MASK = np.uint64((1 << 24) - 1)


def _hash(window: str) -> int:
    value = 0
    for char in window:
        value = (value * 1_000_003 + ord(char)) % (1 << 64)  # numpy's uint64 arithmetic wraps the same way
    return value
