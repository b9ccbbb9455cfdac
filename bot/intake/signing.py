"""PagerDuty v3 webhook signatures (pure: no I/O, no clock).

PagerDuty signs the raw request body with HMAC-SHA256 under the subscription's secret and
sends ``X-PagerDuty-Signature: v1=<hex>``; while a secret is being rotated the header carries
several comma-separated signatures. A delivery is genuine when any signature matches any of
our configured secrets. The header carries no timestamp, so replay protection is the
receiver's job (dedupe on the event's own id inside the signed body, never on the unsigned
``X-Webhook-Id`` header).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

SIGNATURE_VERSION = "v1"
# A real header holds one or two signatures; refuse to spend CPU on a header stuffed with more.
MAX_SIGNATURES = 8
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def sign_pagerduty(secret: str, body: bytes) -> str:
    """The ``v1=<hex>`` signature PagerDuty would send for `body` under `secret`."""
    if not secret:
        raise ValueError("a webhook signing secret must not be empty")
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def parse_signatures(header: str | None) -> list[str]:
    """The well-formed ``v1`` hex digests in a signature header (lower-cased), in order.

    Parts of another version (a future ``v2=``) or garbled parts are skipped; an absent or
    wholly garbled header gives an empty list.
    """
    if not header:
        return []
    found: list[str] = []
    for part in header.split(","):
        version, sep, value = part.strip().partition("=")
        value = value.strip().lower()
        if sep and version.strip() == SIGNATURE_VERSION and _HEX_SHA256.fullmatch(value):
            found.append(value)
        if len(found) >= MAX_SIGNATURES:
            break
    return found


def verify_pagerduty(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when any ``v1`` signature in `header` matches `body` under any of `secrets`.

    Comparison is constant-time per candidate. Empty secrets are ignored: a blank configured
    secret would let anyone sign.
    """
    signatures = parse_signatures(header)
    if not signatures:
        return False
    expected = [
        hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() for secret in secrets if secret
    ]
    matched = False
    # No early exit: the time taken does not reveal which secret or which signature matched.
    for want in expected:
        for got in signatures:
            matched |= hmac.compare_digest(want, got)
    return matched
