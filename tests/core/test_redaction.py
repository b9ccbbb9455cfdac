"""Redaction masks secrets and PII and leaves what briefs cite alone. Offline, no model.

Every value planted in the bundled scenarios is caught, and nothing else in them changes."""

from __future__ import annotations

import io
import itertools
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.redaction import RedactingFilter, find, install_logging_redaction, redact, redact_event, redact_obj
from evals.scorers import json_strings
from sandbox.scenario import bundled_scenarios_dir

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
    # issue 13, finding 5: the gaps
    ("SLACK_APP_TOKEN xapp-1-A0123456789-1234567890123-abcdef0123456789 set", "slack_token"),
    ("posting to https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx now", "slack_webhook"),
    ("maps key AIzaSyA1234567890abcdefghijklmnopqrstuv rejected", "google_api_key"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0abc\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----", "private_key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
     "private_key"),
    ("card 4111.1111.1111.1111 declined", "card_number"),
    ("ssn 123-45-6789 on file", "ssn"),
    ("ssn 123 45 6789 on file", "ssn"),
    ("call 415 555 0132 now", "phone"),
    ("ghp_1234567890abcdefghijkl…", "github_token"),  # cut short, still unmistakable
    ("see ghp_1234567890a…", "partial_secret"),
    ("sent SG.aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb to mail", "sendgrid_api_key"),
]

KEPT = [
    "2026-06-03T08:12:00Z deploy-3fa2b1 sha 9f1c2ab v2.3.1 p95 2.4s",
    "counts 1200 1500 3000 epoch 1778580060000 at 08:12:00",
    "https://app.datadoghq.com/monitors/4101?from_ts=1778580060000",
    "card-like but not Luhn: 1234 5678 9012 3456",
    "NullPointerException at PriceCalculator.applyDiscount(PriceCalculator.java:88)",
    "metric-37dd9f log-pattern-82a11e runbook-55ef8c",
    "deploy of 9f1c2ab3e4d5f6a7b8c9d0e1f2a3b4c5d6e7f8a9 near AKIA docs",  # a git SHA is not an AWS secret
    "build 2026.06.03.1 and 2026.0603.12345",
    "counts 120 150 3000 and 000-12-3456",
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


# ---------------------------------------------------------------------------------------------
# Must be masked: (text, the secret part that must vanish, the mask kind that replaces it)
# ---------------------------------------------------------------------------------------------
SECRETS: list[tuple[str, str, str]] = [
    ("key sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123 used", "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123",
     "api_key"),
    ("stripe sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
    ("publishable pk_live_abcdefgh12345678", "pk_live_abcdefgh12345678", "api_key"),
    ("restricted rk-test-abcdefgh12345678", "rk-test-abcdefgh12345678", "api_key"),
    ("openai sk-proj-abcdefgh12345678ABCD", "sk-proj-abcdefgh12345678ABCD", "api_key"),
    ("anthropic sk-ant-api03-" + "Xy9_" * 10, "sk-ant-api03-" + "Xy9_" * 10, "api_key"),
    ("aws AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE", "aws_key"),
    ("gh ghp_" + "a1B2" * 9, "ghp_" + "a1B2" * 9, "github_token"),
    ("oauth gho_" + "Zz09" * 9, "gho_" + "Zz09" * 9, "github_token"),
    ("pat github_pat_11ABCDEFG0" + "x" * 40, "github_pat_11ABCDEFG0" + "x" * 40, "github_token"),
    ("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
     "slack_token"),
    ("user token xoxp-1111-2222-3333-abcdef", "xoxp-1111-2222-3333-abcdef", "slack_token"),
    ("DD_API_KEY=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "secret"),
    ("DD_APP_KEY: 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567",
     "secret"),
    ("dd-api-key: fedcba9876543210fedcba9876543210", "fedcba9876543210fedcba9876543210", "secret"),
    ('{"api_key": "abc123xyz789"}', "abc123xyz789", "secret"),
    ("token: abcdef12345", "abcdef12345", "secret"),
    ("password=hunter22&user=bob", "hunter22", "secret"),
    ("x-api-key: abcd1234efgh", "abcd1234efgh", "secret"),
    ("https://api.example.com/v1?access_token=tok_98765abc", "tok_98765abc", "secret"),
    ("the password is hunter2", "hunter2", "secret"),
    ("Authorization: Bearer abc.def.ghijklmnopqrstu", "abc.def.ghijklmnopqrstu", "bearer_token"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "auth_header"),
    ("postgres://admin:s3cr3t@db.internal:5432/app", "s3cr3t", "url_password"),
    ("redis://:hunter2pass@cache:6379/0", "hunter2pass", "url_password"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEAx",
     "private_key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA (truncated", "b3BlbnNzaC1rZXktdjEAAAAA",
     "private_key"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJzdWIiOiIxMjM0NTY3ODkwIn0", "jwt"),
]

PII: list[tuple[str, str, str]] = [
    ("user jane.doe@example.com failed", "jane.doe@example.com", "email"),
    ("ops+alerts@sub.example.co.uk", "ops+alerts@sub.example.co.uk", "email"),
    ("call +1 415 555 0132.", "415 555 0132", "phone"),
    ("call +1-415-555-0132", "415-555-0132", "phone"),
    ("uk +44 20 7946 0958", "7946 0958", "phone"),
    ("de +49 (0)30 1234567", "1234567", "phone"),
    ("e164 +4915112345678", "4915112345678", "phone"),
    ("us (415) 555-0132", "555-0132", "phone"),
    ("us 415-555-0132", "415-555-0132", "phone"),
    ("us 415.555.0132", "415.555.0132", "phone"),
    ("card 4111 1111 1111 1111 declined", "4111 1111 1111 1111", "card_number"),
    ("card 4111-1111-1111-1111", "4111-1111-1111-1111", "card_number"),
    ("card 4111111111111111", "4111111111111111", "card_number"),
    ("amex 378282246310005", "378282246310005", "card_number"),
    ("amex grouped 3782 822463 10005", "822463", "card_number"),
    ("client 10.0.0.12 connected", "10.0.0.12", "ipv4"),
    ("from 203.0.113.7:443", "203.0.113.7", "ipv4"),
    ("v6 2001:db8::1 and", "2001:db8::1", "ipv6"),
    ("link fe80::1ff:fe23:4567:890a up", "fe80::1ff:fe23:4567:890a", "ipv6"),
    ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ipv6"),
]


@pytest.mark.parametrize(("text", "hidden", "kind"), SECRETS + PII, ids=lambda v: str(v)[:30])
def test_masks_secret_and_pii(text: str, hidden: str, kind: str) -> None:
    out = redact(text)
    assert hidden not in out
    assert f"[REDACTED:{kind}]" in out
    assert kind in {f.kind for f in find(text)}


# ---------------------------------------------------------------------------------------------
# Must survive unchanged: what briefs cite and what logs are full of.
# ---------------------------------------------------------------------------------------------
SURVIVES = [
    "2026-06-03T08:12:00Z", "2026-06-03T08:12:00.123+00:00", "2026-06-03 08:12:00", "08:12:00", "10:00 to 11:00",
    "deploy-3fa2b1", "log-9c1e22 and metric-0a1b2c", "sha 3fa2b1c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0",
    "commit 3fa2b1c", "v1.2.3", "1.2.3-rc.1+build.5", "v1.2.3.4", "release 2026.06.03",
    "https://github.com/acme/checkout/pull/482", "https://app.datadoghq.com/monitors/1234?from_ts=1717401120000",
    "p99 480 ms, error rate 0.05%, 1200 1500 3000 req/s", "latency 1234.5ms ratio 3.14159",
    "epoch 1717401120 and ms 1717401120123", "trace_id=5876433158290173493", "span 4bf92f3577b34da6a3ce929d0e0e4736",
    "order 4111111111111111111111", "ids 1234567890123", "ext 555-0132", "count +1200", "delta +15.5%",
    "monkey=banana", "key: value", "the token expired", "token is invalid", "api key rotated",
    "basic troubleshooting steps", "Bearer", "std::vector and a::", "dead::beef Cafe::Face", "CHK-482 and PAY-311",
    "<@U0ONCALL1> <#C0INCIDENTS>", "checkout-api 5xx above 2% for 10m", "4111-1111-1111-1112",
    "gauge 12.34.56", "999.1.1.1", "",
]


@pytest.mark.parametrize("text", SURVIVES)
def test_keeps_what_briefs_cite(text: str) -> None:
    assert redact(text) == text
    assert find(text) == []


def test_none_and_empty() -> None:
    assert redact(None) == ""
    assert redact("") == ""


def test_masks_keep_surrounding_text_and_url_host() -> None:
    assert redact("see postgres://admin:s3cr3t@db.internal:5432/app now") == (
        "see postgres://admin:[REDACTED:url_password]@db.internal:5432/app now")
    assert redact("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer [REDACTED:bearer_token]"


def test_findings_are_ordered_and_do_not_overlap() -> None:
    text = "a@b.co then sk-live-abcdefgh12345678 then 10.0.0.1 and token=sk_test_abcdefgh1234"
    findings = find(text)
    assert [f.kind for f in findings] == ["email", "api_key", "ipv4", "api_key"]  # so the order check has pairs
    spans = [(f.start, f.end) for f in findings]
    assert spans == sorted(spans)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    # The specific detector claims the key, not the generic "token=" one.
    assert redact("token=sk_test_abcdefgh1234") == "token=[REDACTED:api_key]"


@pytest.mark.parametrize(("text", "masked"), [
    # Found by the fuzz sweep (tests/app/test_fuzz_secrets.py): the key's value is the first group
    # only, and the card or phone pattern, overlapping it, was dropped, leaving the rest in clear.
    ("password: 4539 5781 2346 7893 then retried", "password: [REDACTED:card_number] then retried"),
    ("password: (415) 867-5309", "password: [REDACTED:phone]"),
    # A password in a URL is not the local part of an email: the host stays readable.
    ("https://ops:p4ssw0rd@status.example.com/x", "https://ops:[REDACTED:url_password]@status.example.com/x"),
    ("https://jane@example.com/x", "https://[REDACTED:email]/x"),
])
def test_a_secret_overlapping_another_patterns_match_is_masked_whole(text: str, masked: str) -> None:
    assert redact(text) == masked
    assert redact(masked) == masked


# ---------------------------------------------------------------------------------------------
# The bundled scenarios: every planted value is caught, nothing else is touched.
# ---------------------------------------------------------------------------------------------
def _scenario_files() -> list[Path]:
    return sorted(bundled_scenarios_dir().glob("*.yaml"))


def _planted(raw: dict[str, Any]) -> list[str]:
    """The values a scenario says must never reach a brief that are secrets or PII."""
    expect = raw.get("expect") or {}
    return [v for v in expect.get("must_not_mention", [])
            if re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", v) or v.startswith(("sk-", "sk_", "xox", "ghp_", "AKIA"))]


def test_search_injection_planted_values_are_masked() -> None:
    raw = yaml.safe_load((bundled_scenarios_dir() / "search-latency-injection.yaml").read_text())
    planted = _planted(raw)
    assert {"jane.doe@example.com", "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123"} <= set(planted)
    carriers = [s for s in json_strings(raw, keys=False) if any(p in s for p in planted)]
    assert carriers, "the scenario no longer plants its secrets"
    for text in carriers:
        out = redact(text)
        assert not any(p in out for p in planted), out


@pytest.mark.parametrize("path", _scenario_files(), ids=lambda p: p.stem)
def test_scenarios_only_planted_values_change(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    planted = _planted(raw)
    # Other values the scenario forbids (a password after "password=", a bearer token, a phone
    # number): their texts may change; the no_planted_secrets scorer checks the brief for them.
    declared = [v for v in (raw.get("expect") or {}).get("must_not_mention", []) if v not in planted]
    for text in json_strings(raw, keys=False):
        out = redact(text)
        if any(p in text for p in planted):
            assert not any(p in out for p in planted)
        elif not any(v in text for v in declared):
            assert out == text, f"{path.name}: over-redacted {text!r} -> {out!r}"


# ---------------------------------------------------------------------------------------------
# Objects, structlog and stdlib logging.
# ---------------------------------------------------------------------------------------------
def test_redact_obj_recurses_and_keeps_keys_and_types() -> None:
    obj = {
        "user": "jane.doe@example.com",
        "nested": [{"ip": "10.0.0.12"}, ("sk-live-abcdefgh12345678", 42)],
        "count": 3, "ratio": 0.5, "ok": True, "none": None,
        "password": "plainword", "DD_API_KEY": "whatever", "max_tokens": "100", "token_type": "bearer",
        "jane.doe@example.com": "key kept as is",
    }
    out = redact_obj(obj)
    assert out["user"] == "[REDACTED:email]"
    assert out["nested"] == [{"ip": "[REDACTED:ipv4]"}, ("[REDACTED:api_key]", 42)]
    assert isinstance(out["nested"][1], tuple)
    assert (out["count"], out["ratio"], out["ok"], out["none"]) == (3, 0.5, True, None)
    # Values under a secret-named key are masked whole; look-alike keys are not secrets.
    assert out["password"] == "[REDACTED:secret]"
    assert out["DD_API_KEY"] == "[REDACTED:secret]"
    assert (out["max_tokens"], out["token_type"]) == ("100", "bearer")
    assert out["jane.doe@example.com"] == "key kept as is"
    assert obj["user"] == "jane.doe@example.com", "the input is not mutated"


def test_structlog_processor_redacts_rendered_events() -> None:
    stream = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[redact_event, structlog.processors.JSONRenderer()],
    )
    logger.info("login by jane.doe@example.com", token="sk-live-abcdefgh12345678", attempts=3,
                args={"password": "hunter22"})
    line = stream.getvalue()
    assert "jane.doe@example.com" not in line
    assert "sk-live-abcdefgh12345678" not in line
    assert "hunter22" not in line
    assert '"attempts": 3' in line
    assert "[REDACTED:email]" in line


def test_logging_filter_redacts_message_args_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redaction.filter")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("user %s key %s", "jane.doe@example.com", "AKIAIOSFODNN7EXAMPLE")
        try:
            raise RuntimeError("connect postgres://svc:pa55word@db:5432/x failed")
        except RuntimeError:
            logger.exception("failed for %s", "10.1.2.3")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for leaked in ("jane.doe@example.com", "AKIAIOSFODNN7EXAMPLE", "pa55word", "10.1.2.3"):
        assert leaked not in out
    assert "user [REDACTED:email] key [REDACTED:aws_key]" in out
    assert "RuntimeError" in out  # the traceback is kept, only masked


def test_logging_filter_survives_bad_format_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items for %s", ("many",), None)
    assert RedactingFilter().filter(record)
    assert record.args == ()  # collapsed into its text, so the handler cannot fail on it later
    assert record.getMessage() == "%d items for %s"


def test_arguments_are_masked_in_place_keeping_their_shape() -> None:
    args = ("203.0.113.9:51234", "GET", "/search?api_key=abcd1234efgh", "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None)
    assert RedactingFilter().filter(record)
    assert record.args == ("[REDACTED:ipv4]:51234", "GET", "/search?api_key=[REDACTED:secret]", "1.1", 200)
    mapping = logging.LogRecord("x", logging.INFO, __file__, 1, "%(who)s sent %(n)d", ({"who": "a@b.io", "n": 3},),
                                None)
    assert RedactingFilter().filter(mapping)
    assert mapping.getMessage() == "[REDACTED:email] sent 3"
    assert isinstance(mapping.args, dict)


def test_uvicorns_access_formatter_reads_the_masked_arguments() -> None:
    # It unpacks the five arguments itself; a record whose args were dropped made it raise on
    # every request ("cannot unpack non-iterable NoneType object").
    from uvicorn.logging import AccessFormatter

    args = ("10.1.2.3:443", "POST", "/webhooks/pagerduty", "1.1", 202)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None)
    RedactingFilter().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert line == '[REDACTED:ipv4]:443 - "POST /webhooks/pagerduty HTTP/1.1" 202 Accepted'


def test_a_secret_split_between_template_and_argument_is_masked() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "retrying with token=%s", ("s3cr3t-value",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "retrying with token=[REDACTED:secret]"


@pytest.mark.parametrize("text", [
    "Uvicorn running on http://0.0.0.0:8000", "serving on http://127.0.0.1:8765", "listening on [::]:8000",
    "connect to ::1 port 6379", "loopback 127.0.1.1 answered",
])
def test_loopback_and_unspecified_addresses_are_not_pii(text: str) -> None:
    assert redact(text) == text


# ---------------------------------------------------------------------------------------------
# Properties: generated secrets are always masked, generated citations always survive.
# ---------------------------------------------------------------------------------------------
_HEX = "0123456789abcdef"
_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=0, max_size=30)


def _with_luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


@settings(max_examples=150, deadline=None)
@given(
    st.from_regex(r"[a-z][a-z0-9._]{0,15}", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(com|org|io|dev|co\.uk)", fullmatch=True),
    _words, _words,
)
def test_property_emails_are_masked(local: str, domain: str, before: str, after: str) -> None:
    email = f"{local}@{domain}"
    out = redact(f"{before} {email} {after}")
    assert email not in out
    assert "[REDACTED:email]" in out


@settings(max_examples=150, deadline=None)
@given(st.sampled_from("3456"), st.text(alphabet="0123456789", min_size=14, max_size=14), st.sampled_from([" ", "-"]))
def test_property_card_numbers_are_masked(first: str, middle: str, sep: str) -> None:
    number = _with_luhn_digit(first + middle)
    grouped = sep.join(number[i:i + 4] for i in range(0, 16, 4))
    for shown in (number, grouped):
        out = redact(f"paid with {shown} today")
        assert shown not in out
        assert "[REDACTED:card_number]" in out


@settings(max_examples=150, deadline=None)
@given(st.from_regex(r"(ghp_[A-Za-z0-9]{36}|xoxb-[0-9]{10,13}-[A-Za-z0-9]{24}|AKIA[0-9A-Z]{16}"
                     r"|sk-live-[A-Za-z0-9]{24,40})", fullmatch=True), _words)
def test_property_tokens_are_masked(token: str, before: str) -> None:
    assert token not in redact(f"{before} {token}.")


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(timezones=st.just(__import__("datetime").UTC)),
    st.text(alphabet=_HEX, min_size=7, max_size=40),
    st.text(alphabet=_HEX, min_size=6, max_size=6),
    st.tuples(st.integers(0, 99), st.integers(0, 999), st.integers(0, 9999)),
    st.floats(min_value=0, max_value=1e9, allow_nan=False),
    st.integers(min_value=10**12, max_value=2 * 10**12),
)
def test_property_citations_survive(when: Any, sha: str, short: str, version: tuple[int, int, int],
                                    value: float, epoch_ms: int) -> None:
    major, minor, patch = version
    text = (f"at {when.isoformat()} ({when:%Y-%m-%d %H:%M:%S}) deploy {sha} evidence deploy-{short} "
            f"v{major}.{minor}.{patch} value {value} ms {round(value, 2)}% ts {epoch_ms}")
    assert redact(text) == text


_FRAGMENTS = st.sampled_from([
    "token=", "password is ", "Authorization: ", "Bearer ", "Basic ", "DD_API_KEY: ", "sk-live-abcdefgh12345678",
    "jane@example.com", "10.0.0.1", "2001:db8::1", "+1 415 555 0132", "4111 1111 1111 1111", "redis://:pw12@h",
    "AKIAIOSFODNN7EXAMPLE", "xoxb-1234567890-abc", "[REDACTED:email]", " ", "=", ":", "\"", "2026-06-03T08:12:00Z",
])


@settings(max_examples=300, deadline=None)
# Values are separated as in prose. Digit groups run together ("+1 415 555 0132 4111 1111 ...")
# are ambiguous (one long number or two?) and may be split differently once half is masked.
@given(st.lists(_FRAGMENTS, max_size=12).map(", ".join))
def test_property_masking_twice_changes_nothing(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_short_bearer_token_in_an_authorization_header_is_masked() -> None:
    assert redact("Authorization: Bearer abcdefgh1") == "Authorization: Bearer [REDACTED:auth_header]"


def test_installed_redaction_covers_child_loggers_and_later_handlers() -> None:
    previous = logging.getLogRecordFactory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # added after installing, with no filter of its own
    child = logging.getLogger("test.redaction.installed.child")
    try:
        install_logging_redaction()
        install_logging_redaction()  # idempotent: the factory is wrapped once
        assert getattr(logging.getLogRecordFactory(), "wrapped", None) is previous
        logging.getLogger("test.redaction.installed").addHandler(handler)
        child.setLevel(logging.INFO)
        child.info("login %s with password=%s", "jane.doe@example.com", "hunter22")
    finally:
        logging.setLogRecordFactory(previous)
        logging.getLogger("test.redaction.installed").removeHandler(handler)
    out = stream.getvalue()
    assert "jane.doe@example.com" not in out
    assert "hunter22" not in out
    assert "login [REDACTED:email] with password=[REDACTED:secret]" in out


# issue 13, findings 4 and 5: secrets cut short, hidden by invisible characters, or unknown to us


def test_an_aws_secret_key_is_masked_beside_its_key_id_or_name_and_when_cut() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    for text in (f"AKIAIOSFODNN7EXAMPLE {secret}", f"aws_secret_access_key={secret}",
                 f"id AKIAIOSFODNN7EXAMPLE secret {secret[:26]}", f"AKIAIOSFODNN7EXAMPLE {secret[:26]}…"):
        masked = redact(text)
        assert secret[:12] not in masked, masked
    assert redact(f"blob {secret} alone") == f"blob {secret} alone"  # no key id or name nearby


def test_a_jwt_cut_before_its_signature_is_still_a_jwt() -> None:
    jwt = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
           "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
    assert "eyJzdWIiOiIxMjM0" not in redact(f"token {jwt[:80]} in header")


@pytest.mark.parametrize("prefix", ["ghp_1234567890abcdefghijkl", "xoxb-12345678", "sk-ant-abcdef", "AIzaSyA12345",
                                    "-----BEGIN OPENSSH PRIV"])
def test_a_secret_prefix_cut_at_the_end_of_a_clipped_string_is_masked(prefix: str) -> None:
    assert prefix not in redact(f"the failing request said {prefix}…")
    assert prefix not in redact(f"the failing request said {prefix}")


def test_invisible_characters_inside_a_key_do_not_hide_it_and_bidi_overrides_are_removed() -> None:
    token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    hidden = token[:10] + "\u200b" + token[10:20] + "\u2060\ufeff" + token[20:]
    assert redact(f"leaked {hidden}") == "leaked [REDACTED:github_token]"
    assert redact("ok \u202egnp.exe\u202c done") == "ok gnp.exe done"
    assert redact("@\u2060here") == "@\u2060here"  # the word joiner that disarms @here stays


def test_clip_masks_the_whole_text_before_it_cuts() -> None:
    from bot.core.redaction import clip

    token = "ghp_1234567890abcdefghijklmnopqrstuvwxyz"
    for limit in range(5, 60):
        clipped = clip(f"push failed with {token} for repo", limit)
        assert len(clipped) <= limit
        assert "1234567890ab" not in clipped
        assert "[REDACTED:gi" not in clipped or "[REDACTED:github_token]" in clipped  # no half masks
    assert clip("short  text\nhere", 100) == "short text here"


def test_the_second_opinion_catches_kinds_the_own_patterns_do_not_know() -> None:
    from bot.core.redaction.second_opinion import second_opinion

    text = "npm //registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789ab"
    assert second_opinion(text)
    assert "npm_abcdefghijklmnop" not in redact(text)
    assert second_opinion("deploy 9f1c2ab of search-api at 08:12, p95 2.4s") == []


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("name", ["aiosqlite", "sqlalchemy.engine.Engine", "httpx", "httpcore.http11",
                                  "atlassian.rest_client", "urllib3.connectionpool", "slack_sdk.web.base_client"])
def test_every_library_logger_is_masked_at_debug_even_with_its_own_handler(name: str) -> None:
    # issue 13, finding 5: aiosqlite's and the Atlassian library's DEBUG records carried secrets
    install_logging_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # the library's own handler, not ours: no filter on it
    logger = logging.getLogger(name)
    old = (logger.level, logger.propagate, list(logger.handlers))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        statement = ("INSERT INTO incidents VALUES (?)", ("ghp_abcdefghijklmnopqrstuvwxyz0123456789",))
        logger.debug("executing %r with %s", statement,
                     {"json": {"title": "key AKIAIOSFODNN7EXAMPLE for jane.doe@example.com"}})
        logger.debug("POST https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx")
    finally:
        logger.setLevel(old[0])
        logger.propagate = old[1]
        logger.handlers[:] = old[2]
    text = stream.getvalue()
    for secret in ("ghp_abcdefghijkl", "AKIAIOSFODNN7EXAMPLE", "jane.doe@example.com", "abcdefghijklmnopqrstuvwx"):
        assert secret not in text
    assert text.count("[REDACTED:") >= 4
