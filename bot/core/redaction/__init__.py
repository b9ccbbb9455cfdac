"""Masking secrets and PII on the way in: before anything is logged, stored, posted or sent.

Pure and offline. The own detectors (`detectors`) are fast and tuned to what briefs cite; a
second opinion from the maintained `detect-secrets` plugin set (`second_opinion`) runs on what
they left. `clip` masks before it cuts, so no secret is ever cut into an unrecognisable half;
`records` masks every stdlib log record.

What must survive, because briefs cite it: ISO timestamps, evidence ids (``deploy-3fa2b1``),
git SHAs, version numbers, durations and metric values, URLs without credentials.
"""

from bot.core.redaction.clip import clip
from bot.core.redaction.detectors import Finding
from bot.core.redaction.engine import MASK, find, normalise, redact, redact_obj
from bot.core.redaction.records import RedactingFilter, install_logging_redaction, redact_event

__all__ = [
    "MASK", "Finding", "RedactingFilter", "clip", "find", "install_logging_redaction", "normalise", "redact",
    "redact_event", "redact_obj",
]
