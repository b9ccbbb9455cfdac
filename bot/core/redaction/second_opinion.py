"""A second opinion from a maintained pattern set: the `detect-secrets` plugins (Yelp).

The own detectors (`detectors.py`) are fast and tuned to what briefs must keep; this adds the
token shapes a maintained project tracks (SendGrid, Twilio, GitLab, PyPI, npm, Discord,
Telegram, Square, Azure storage, Mailchimp, IBM, …), so a kind we never wrote a pattern for is
still caught. It runs on what the own patterns left: a span they already masked is not looked
at again.

Only the plugins' regexes are used (no entropy heuristics, no keyword guessing: git SHAs and
ids are high-entropy and briefs cite them), each gated by a literal its matches must contain.
The public-IP plugin is left out (the own ``ipv4`` detector decides which addresses are
people's), and so is Artifactory's (its ``AP…`` shape matches ordinary capitalised words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.cloudant import CloudantDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
from detect_secrets.plugins.ibm_cos_hmac import IbmCosHmacDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.softlayer import SoftlayerDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

_PLUGINS: tuple[type[RegexBasedDetector], ...] = (
    AWSKeyDetector, AzureStorageKeyDetector, BasicAuthDetector, CloudantDetector, DiscordBotTokenDetector,
    GitHubTokenDetector, GitLabTokenDetector, IbmCloudIamDetector, IbmCosHmacDetector, JwtTokenDetector,
    MailchimpDetector, NpmDetector, OpenAIDetector, PrivateKeyDetector, PypiTokenDetector, SendGridDetector,
    SlackDetector, SoftlayerDetector, SquareOAuthDetector, StripeDetector, TelegramBotTokenDetector,
    TwilioKeyDetector,
)


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]


def _kind(secret_type: str) -> str:
    """"Slack Token" -> "slack_token": the mask names what the plugin says it found."""
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


# What a match of each plugin must contain, looked for in the lower-cased text: plain substrings
# (a C-level scan each), or a pattern that starts with a literal. Most text holds none, and the
# plugin is skipped. Written by hand from the plugins' patterns; a plugin missing here is always
# scanned. Keyword plugins (Cloudant, IBM, SoftLayer) are gated on their own names: a bare
# "password=…" is the own `secret` detector's.
Gate = tuple[str, ...] | re.Pattern[str]
_GATES: dict[type[RegexBasedDetector], Gate] = {
    AWSKeyDetector: ("a3t", "abia", "acca", "akia", "asia", "aws"),
    AzureStorageKeyDetector: ("accountkey=",),
    BasicAuthDetector: ("://",),
    CloudantDetector: ("cloudant", "clou", "cl_", "cl-", "clapi", "clkey", "clpw", "clpass", "cltoken"),
    DiscordBotTokenDetector: re.compile(r"\.[a-z0-9_-]{6}\.[a-z0-9_-]{27}"),
    GitHubTokenDetector: ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    GitLabTokenDetector: ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941", "glcbt-", "glimt-", "glptt-",
                          "glagent-", "gloas-"),
    IbmCloudIamDetector: ("ibm", "cloud_iam", "cloud-iam", "cloudiam", "iam_api", "iam-api", "iamapi"),
    IbmCosHmacDetector: ("ibm", "hmac", "cos_", "cos-"),
    JwtTokenDetector: ("eyj",),
    MailchimpDetector: ("-us",),
    NpmDetector: ("_authtoken",),
    OpenAIDetector: ("t3blbkfj",),
    PrivateKeyDetector: ("private key", "putty-user-key"),
    PypiTokenDetector: ("pypi-",),
    SendGridDetector: ("sg.",),
    SlackDetector: ("xox", "hooks.slack.com"),
    SoftlayerDetector: ("softlayer", "sl_", "sl-", "slapi", "slkey", "slpw", "slpass", "sltoken"),
    SquareOAuthDetector: ("sq0csp-",),
    StripeDetector: ("k_live_",),
    TelegramBotTokenDetector: re.compile(r":[0-9a-z_-]{35}"),
    TwilioKeyDetector: re.compile(r"[as][ck][a-z0-9]{32}"),
}


def _passes(gate: Gate | None, lowered: str) -> bool:
    if gate is None:
        return True
    if isinstance(gate, tuple):
        return any(part in lowered for part in gate)
    return gate.search(lowered) is not None


def _rules() -> tuple[tuple[Gate | None, tuple[_Rule, ...]], ...]:
    """Each plugin's gate with its patterns: a gate is looked for once per plugin, not once per
    pattern (GitLab has seven, private keys eight)."""
    return tuple((_GATES.get(plugin), tuple(_Rule(_kind(str(plugin.secret_type)), pattern)
                                             for pattern in plugin().denylist))
                 for plugin in _PLUGINS)


_RULES = _rules()


def second_opinion(text: str, lowered: str | None = None) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every plugin match: the captured value when the pattern has a group
    (``aws_secret = "…"`` masks the value, not the name), else the whole match."""
    lowered = text.lower() if lowered is None else lowered
    found: list[tuple[str, int, int]] = []
    for gate, rules in _RULES:
        if not _passes(gate, lowered):
            continue
        for rule in rules:
            for match in rule.pattern.finditer(text):
                group = 1 if rule.pattern.groups and match.group(1) else 0
                start, end = match.span(group)
                if end > start:
                    found.append((rule.kind, start, end))
    return found
