"""PagerDuty v3 webhook signatures (bot.intake.signing): HMAC-SHA256 of the raw body, rotation, hostile headers."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.intake.signing import sign_pagerduty, verify_pagerduty


def test_sign_matches_a_known_hmac_sha256_vector() -> None:
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign_pagerduty("key", body) == f"v1={expected}"
    with pytest.raises(ValueError, match="must not be empty"):
        sign_pagerduty("", body)


@pytest.mark.parametrize("header", [
    None, "", "v1=", "v1", "=abc", "v1=zz", "sha256=" + "a" * 64, "v0=" + "a" * 64, "v1=" + "a" * 63,
    "v1=" + "a" * 65, ",,,", "v1=\u00e9" + "a" * 63, "v1 " + "a" * 64,
])
def test_missing_or_garbled_headers_are_rejected(header: str | None) -> None:
    assert verify_pagerduty(b"{}", header, ["secret"]) is False


def test_header_forms_pagerduty_sends_are_accepted() -> None:
    body = b'{"event":{}}'
    good = sign_pagerduty("secret", body)
    other = sign_pagerduty("someone-else", body)
    assert verify_pagerduty(body, good, ["secret"])
    assert verify_pagerduty(body, f"{other},{good}", ["secret"])
    assert verify_pagerduty(body, f" {good.upper().replace('V1=', 'v1=')} ", ["secret"])
    assert verify_pagerduty(body, f"v2=abc,{good}", ["secret"])  # a future version is skipped
    assert verify_pagerduty(body, good, ["rotated-out", "secret"])


def test_empty_or_no_secrets_never_verify() -> None:
    body = b"{}"
    empty_key_sig = "v1=" + hmac.new(b"", body, hashlib.sha256).hexdigest()
    assert not verify_pagerduty(body, empty_key_sig, [""])
    assert not verify_pagerduty(body, empty_key_sig, [])


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=400))
def test_a_signature_verifies_under_its_own_secret(secret: str, body: bytes) -> None:
    assert verify_pagerduty(body, sign_pagerduty(secret, body), [secret])


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(min_size=1, max_size=400),
       index=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_tampered_body_is_rejected(secret: str, body: bytes, index: int, flip: int) -> None:
    header = sign_pagerduty(secret, body)
    position = index % len(body)
    tampered = body[:position] + bytes([body[position] ^ flip]) + body[position + 1:]
    assert not verify_pagerduty(tampered, header, [secret])


@given(secrets=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4, unique=True),
       body=st.binary(max_size=200), data=st.data())
def test_rotation_accepts_any_configured_secret(secrets: list[str], body: bytes, data: st.DataObject) -> None:
    used = data.draw(st.sampled_from(secrets))
    assert verify_pagerduty(body, sign_pagerduty(used, body), secrets)
    assert not verify_pagerduty(body, sign_pagerduty(used, body), [s for s in secrets if s != used])


@given(header=st.text(max_size=300))
def test_arbitrary_headers_never_crash(header: str) -> None:
    assert verify_pagerduty(b"{}", header, ["secret"]) is False
