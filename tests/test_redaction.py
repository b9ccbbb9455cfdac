"""Redaction masks secrets and PII and leaves what briefs cite alone. Offline, no model."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.redaction import RedactingFilter, find, redact, redact_event, redact_obj

MASKED = [
    ("user jane.doe@example.com failed", "email"),
    ("token=sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123", "api_key"),
    ("key AKIAIOSFODNN7EXAMPLE in env", "aws_key"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked", "github_token"),
    ("xoxb-1234567890-abcdefghijkl", "slack_token"),
    ("Authorization: Bearer abcdefghijklmnop123", "bearer_token"),
    ("postgres://app:hunter2@db.internal:5432/x", "url_password"),
    ("password is hunter22", "secret"),
    ('"api_key": "abcd1234efgh"', "secret"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "private_key"),
    ("card 4111 1111 1111 1111 declined", "card_number"),
    ("call +1 415-555-0132 now", "phone"),
    ("call (415) 555-0132 now", "phone"),
    ("client 10.2.3.4 timed out", "ipv4"),
    ("peer 2001:db8::8a2e:370:7334 reset", "ipv6"),
]

KEPT = [
    "2026-06-03T08:12:00Z deploy-3fa2b1 sha 9f1c2ab v2.3.1 p95 2.4s",
    "counts 1200 1500 3000 epoch 1778580060000 at 08:12:00",
    "https://app.datadoghq.com/monitors/4101?from_ts=1778580060000",
    "card-like but not Luhn: 1234 5678 9012 3456",
    "NullPointerException at PriceCalculator.applyDiscount(PriceCalculator.java:88)",
    "metric-37dd9f log-pattern-82a11e runbook-55ef8c",
]


@pytest.mark.parametrize(("text", "kind"), MASKED)
def test_secrets_and_pii_are_masked(text: str, kind: str) -> None:
    assert f"[REDACTED:{kind}]" in redact(text)
    assert [f.kind for f in find(text)] == [kind]


@pytest.mark.parametrize("text", KEPT)
def test_what_briefs_cite_survives(text: str) -> None:
    assert redact(text) == text


def test_nested_objects_keep_their_shape() -> None:
    data = {"args": {"q": "jane@example.com", "n": 3, "tags": ["ok", "10.0.0.1"]}, "t": ("x@y.io",)}
    assert redact_obj(data) == {"args": {"q": "[REDACTED:email]", "n": 3, "tags": ["ok", "[REDACTED:ipv4]"]},
                                "t": ("[REDACTED:email]",)}


def test_log_records_and_structlog_events_are_redacted() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "mail %s", ("jane@example.com",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "mail [REDACTED:email]"
    event = redact_event(None, "info", {"event": "token=sk-live-51HxQaBcDeFgHiJkLm", "n": 1})
    assert event == {"event": "token=[REDACTED:api_key]", "n": 1}


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
