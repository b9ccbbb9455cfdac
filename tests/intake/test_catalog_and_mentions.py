"""The service catalog (our shape and Backstage's) and what a person asked the bot."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import ConfigError
from bot.core.models import DatadogRef, ServiceEntry
from bot.intake.catalog import Catalog, load_catalog
from bot.intake.mentions import parse_request

CATALOG = Catalog([
    ServiceEntry(name="checkout", datadog=DatadogRef(service="checkout")),
    ServiceEntry(name="checkout-api", slack_channel="C0INCCHK", pagerduty_service_id="PSVC1",
                 datadog=DatadogRef(service="checkout-api")),
    ServiceEntry(name="search-api", datadog=DatadogRef(service="search-api")),
])


@pytest.mark.parametrize(("text", "intent", "service"), [
    ("<@UBRIEFBOT> brief", "brief", None),
    ("<@UBRIEFBOT> brief checkout-api", "brief", "checkout-api"),
    ("<@UBRIEFBOT> what's going on with search-api?", "brief", "search-api"),
    ("<@UBRIEFBOT> is CHECKOUT-API down", "brief", "checkout-api"),
    ("<@UBRIEFBOT> brief checkout", "brief", "checkout"),  # the longest whole-word name wins
    ("<@UBRIEFBOT> checkout-apis are fine", "brief", None),
    ("<@UBRIEFBOT> refresh", "refresh", None),
    ("<@UBRIEFBOT> help", "help", None),
    ("<@UBRIEFBOT|incident-brief> ?", "help", None),
    ("<@UBRIEFBOT> <https://app.datadoghq.com/apm/services/search-api?env=prod|this graph>", "brief",
     "search-api"),
])
def test_mentions_are_understood(text: str, intent: str, service: str | None) -> None:
    request = parse_request(text, CATALOG)
    assert request.intent == intent
    assert (request.service.name if request.service else None) == service
    assert "<@" not in request.text


def test_a_pasted_link_is_kept() -> None:
    request = parse_request("<@U1> look <https://app.datadoghq.com/monitors/4242|monitor>", CATALOG)
    assert request.link == "https://app.datadoghq.com/monitors/4242"


def test_lookups_by_channel_pagerduty_service_and_fallback() -> None:
    assert CATALOG.by_channel("C0INCCHK").name == "checkout-api"  # type: ignore[union-attr]
    assert CATALOG.by_pagerduty_service("PSVC1").name == "checkout-api"  # type: ignore[union-attr]
    assert CATALOG.by_channel("C0NOPE") is None
    bare = CATALOG.resolve("unknown-svc")
    assert bare.datadog.service == "unknown-svc"


def test_both_catalog_shapes_load(tmp_path: Path) -> None:
    ours = tmp_path / "catalog.yaml"
    ours.write_text("""
services:
  - name: payments-api
    slack_channel: C0PAY
    datadog: {service: payments-api, env: prod, dashboards: [abc-123]}
    github: {repo: acme/payments}
    jira: {project: PAY}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ledger
  annotations:
    github.com/project-slug: acme/ledger
    pagerduty.com/service-id: PLEDGER
spec: {owner: group:finance}
""")
    catalog = load_catalog(ours)
    assert catalog.names() == ["ledger", "payments-api"]
    ledger = catalog.get("ledger")
    assert ledger is not None
    assert ledger.team == "finance"
    assert ledger.github_repo == "acme/ledger"
    assert ledger.pagerduty_service_id == "PLEDGER"
    assert catalog.get("payments-api").datadog.dashboards == ["abc-123"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("content", "message"), [
    ("services:\n  - slack_channel: C1\n", "services[0].name"),
    ("- just a list\n", "expected `services:`"),
    ("apiVersion: x\nkind: Component\nmetadata: {}\n", "metadata.name is required"),
    ("services: [\n", "cannot read catalog"),
])
def test_bad_catalogs_are_refused_naming_the_place(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_catalog(path)


def test_slack_entity_tokens_read_as_names() -> None:
    from bot.intake.mentions import render_slack_text

    text = ("<!subteam^S0123ABC|@oncall-payments> see <#C024BE7LR|incidents> and <@U123|ana>, <@U999>, <!here>, "
            "<!date^1392734382^{date}|Feb 18, 2014>, <https://app.datadoghq.com/monitors/12|monitor>, "
            "<mailto:ops@example.com|ops@example.com>, <#C1>, <!subteam^S9>")
    assert render_slack_text(text) == (
        "@oncall-payments see #incidents and @ana, @U999, @here, Feb 18, 2014, https://app.datadoghq.com/monitors/12, "
        "ops@example.com, #C1, @S9")


def test_a_mention_drops_the_bots_address_and_renders_the_rest() -> None:
    from bot.intake.catalog import Catalog
    from bot.intake.mentions import parse_request

    request = parse_request("<@UBOT> brief for <#C024BE7LR|incidents> cc <!subteam^S1|@sre> <@U2|ana>", Catalog([]))
    assert request.text == "brief for #incidents cc @sre @ana"
    assert request.intent == "brief"
