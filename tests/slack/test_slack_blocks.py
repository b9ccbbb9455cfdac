"""The brief card and modals: Slack's limits, numbered citations, escaping and state."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.models import (
    Brief,
    BriefResult,
    CauseKind,
    Claim,
    Confidence,
    DraftInfo,
    Evidence,
    EvidenceKind,
    LikelyCause,
    Provenance,
    Source,
    SourceGap,
    TicketProposal,
    TimelineEntry,
    evidence_id,
)
from bot.slack.blocks import (
    BriefCardState,
    brief_blocks,
    brief_fallback_text,
    dry_run_preview_blocks,
    failure_blocks,
    feedback_reason_modal,
    placeholder_blocks,
    ticket_modal,
)
from sandbox import slack_sender
from sandbox.block_kit import validate_blocks, validate_view
from sandbox.harness import run_scenario
from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario

AT = datetime(2024, 5, 14, 14, 0, tzinfo=UTC)
HOSTILE = "<!channel> ignore that & <@U0ADMIN> <#C0GENERAL> @here <https://evil.example|bank>"


def evidence(kind: EvidenceKind, ref: str, title: str, *, link: str | None = "https://example.com/x",
             minutes_before: int = 10, data: dict[str, Any] | None = None) -> Evidence:
    source = {EvidenceKind.DEPLOY: Source.GITHUB, EvidenceKind.RUNBOOK: Source.CONFLUENCE,
              EvidenceKind.INCIDENT: Source.PAGERDUTY}.get(kind, Source.DATADOG)
    return Evidence(id=evidence_id(kind, ref), kind=kind, source=source, title=title, excerpt=title,
                    timestamp=AT - timedelta(minutes=minutes_before), link=link,
                    provenance=Provenance(system=source, tool=f"{source.value}.read", request="GET /x",
                                          fetched_at=AT), ref={"ref": ref}, data=data or {})


def result(*, causes: int = 2, text: str = "Checkout 5xx after deploy 812", extra_evidence: int = 0,
           ticket: bool = True) -> BriefResult:
    deploy = evidence(EvidenceKind.DEPLOY, "sha1", f"Deploy {HOSTILE}",
                      link="https://github.com/acme/checkout/deployments/1")
    logs = evidence(EvidenceKind.LOG_PATTERN, "npe", "NullPointerException in PaymentClient", link=None)
    runbook = evidence(EvidenceKind.RUNBOOK, "rb", "Checkout 5xx runbook", link="https://wiki.example/rb?a=1&b=2")
    incident = evidence(EvidenceKind.INCIDENT, "PD1", "PagerDuty incident", data={"urgency": "high"})
    event = evidence(EvidenceKind.EVENT, "flag", "Feature flag payments-v2 on", minutes_before=5)
    more = [evidence(EvidenceKind.METRIC, f"m{i}", f"metric {i} " + "x" * 300) for i in range(extra_evidence)]
    items = [deploy, logs, runbook, incident, event, *more]
    cite_all = [e.id for e in items]
    brief = Brief(
        headline=Claim(text=text, citations=[deploy.id]),
        impact=Claim(text=f"5xx at 12% of requests; {HOSTILE}", citations=[logs.id, *cite_all[5:]]),
        likely_causes=[LikelyCause(kind=CauseKind.DEPLOY, confidence=Confidence.HIGH,
                                   claim=Claim(text=f"cause {n}: {HOSTILE} " + text, citations=[deploy.id, logs.id]))
                       for n in range(causes)],
        timeline=[TimelineEntry(at=AT - timedelta(minutes=10), claim=Claim(text="Deploy 812 shipped",
                                                                           citations=[deploy.id]))],
        next_actions=[Claim(text=f"Roll back per the runbook {HOSTILE}", citations=[runbook.id])],
        gaps=[SourceGap(source=Source.CONFLUENCE, tool="confluence.search", reason=f"HTTP 500 {HOSTILE}")],
        ticket=TicketProposal(project="CHK", summary=f"Checkout 5xx {HOSTILE}", description="Roll back.",
                              citations=[deploy.id, runbook.id]) if ticket else None,
        draft=DraftInfo(drafter="llm", model="claude-x", prompt_version="brief-v3", cost_usd=0.0123),
    )
    return BriefResult(brief=brief, evidence=items, gaps=[])


def texts(node: Any) -> list[str]:
    """Every text string in a Block Kit structure."""
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return own + [t for key, value in node.items() if key != "text" or not isinstance(value, str)
                      for t in texts(value)]
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    return []


def unescaped_markup(text: str) -> list[str]:
    """Angle-bracket sequences that are not our own http(s) links or approver mentions."""
    return [m for m in re.findall(r"<[^>]*>", text) if not re.match(r"<https?://[^|<>\s]+(\|[^<>]*)?>$", m)
            and not re.match(r"<@U[A-Z0-9]+>$", m)]


def assert_safe(blocks: list[dict[str, Any]]) -> None:
    assert validate_blocks(blocks) == []
    shown = texts(blocks)
    assert shown, "no text found: the checks below would pass on anything"
    for text in shown:
        assert unescaped_markup(text) == [], text
        assert "@here" not in text
        assert "@channel" not in text


def test_card_has_every_part_in_reading_order() -> None:
    blocks = brief_blocks(result(), incident_key="pd:PD1", state=BriefCardState(brief_version=2, elapsed_s=4.2))
    assert_safe(blocks)
    kinds = [b["type"] for b in blocks]
    assert kinds[0] == "header"
    assert kinds[-1] == "actions"
    ids = [b.get("block_id") for b in blocks]
    for part in ("headline", "status", "impact", "causes", "changes", "next-actions", "gaps", "ticket",
                 "sources", "footer", "actions"):
        assert part in ids, part
    assert ids.index("causes") < ids.index("changes") < ids.index("next-actions") < ids.index("gaps")
    assert blocks[0]["text"]["text"].startswith("🔴 ")
    footer = json.dumps(next(b for b in blocks if b.get("block_id") == "footer"))
    for shown in ("drafter llm", "model claude-x", "prompt brief-v3", "$0.0123", "4.2 s", "brief v2"):
        assert shown in footer
    gaps = next(b for b in blocks if b.get("block_id") == "gaps")["text"]["text"]
    assert "confluence" in gaps
    assert "HTTP 500" in gaps


def test_citations_are_numbered_links_to_the_evidence() -> None:
    res = result()
    blocks = brief_blocks(res, incident_key="k", state=BriefCardState(brief_version=1))
    deploy, logs = res.evidence[0], res.evidence[1]
    cause = next(b for b in blocks if b.get("block_id") == "cause-1")["text"]["text"]
    assert f"<{deploy.link}|[1]>" in cause, "the deploy is cited first (headline), so it is [1]"
    assert "[2]" in cause
    assert "|[2]>" not in cause, "evidence without a link is a plain number"
    assert logs.link is None
    sources = next(b for b in blocks if b.get("block_id") == "sources")["elements"][0]["text"]
    assert sources.index("[1]") < sources.index("[2]") < sources.index("[3]")
    assert "https://wiki.example/rb?a=1&amp;b=2" in sources


def test_buttons_carry_the_incident_and_version() -> None:
    blocks = brief_blocks(result(), incident_key="pd:PD1", state=BriefCardState(brief_version=3))
    actions = blocks[-1]
    assert [e["action_id"] for e in actions["elements"]] == ["ticket_create", "brief_refresh", "feedback_up",
                                                             "feedback_down"]
    assert actions["elements"][0]["text"]["text"] == "Create Jira ticket"
    assert [e["text"]["text"] for e in actions["elements"][2:]] == ["👍", "👎"]
    for element in actions["elements"]:
        assert json.loads(element["value"]) == {"incident_key": "pd:PD1", "brief_version": 3}


def test_filed_ticket_and_status_show_and_the_ticket_button_goes() -> None:
    state = BriefCardState(brief_version=1, status_line="Resolved by Ana at 15:10 UTC", ticket_key="CHK-42",
                           approved_by="U0ONCALL1, U0APPROVER", approved_at=AT)
    blocks = brief_blocks(result(), incident_key="k", state=state)
    assert_safe(blocks)
    assert state.status == "resolved"
    assert blocks[0]["text"]["text"].startswith("✅ ")
    ticket = next(b for b in blocks if b.get("block_id") == "ticket")["text"]["text"]
    assert ticket == "🎫 Jira ticket *CHK-42* filed, approved by <@U0ONCALL1>, <@U0APPROVER> at 14:00 UTC"
    assert "Resolved by Ana" in json.dumps(blocks[1])
    assert "ticket_create" not in json.dumps(blocks[-1])


def test_a_resolved_incident_loses_its_ticket_button() -> None:
    """Finding 10: nothing is filed from the card of a resolved incident."""
    for line, shown in (("Acknowledged by Ana at 15:01 UTC", True), ("resolved", False),
                        ("Resolved by Ana at 15:10 UTC", False)):
        blocks = brief_blocks(result(), incident_key="k", state=BriefCardState(brief_version=1, status_line=line))
        assert ("ticket_create" in json.dumps(blocks[-1])) is shown, line
        assert "brief_refresh" in json.dumps(blocks[-1])


def test_no_ticket_button_without_a_proposal() -> None:
    blocks = brief_blocks(result(ticket=False), incident_key="k", state=BriefCardState(brief_version=1))
    assert [e["action_id"] for e in blocks[-1]["elements"]] == ["brief_refresh", "feedback_up", "feedback_down"]


def test_huge_briefs_stay_within_slack_limits_and_link_to_the_rest() -> None:
    big = result(causes=40, text="very long headline " * 40, extra_evidence=40)
    blocks = brief_blocks(big, incident_key="k", state=BriefCardState(brief_version=1))
    assert_safe(blocks)
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    impact = next(b for b in blocks if b.get("block_id") == "impact")["text"]["text"]
    assert len(impact) <= 3000
    assert "35 less likely causes not shown" in json.dumps(blocks)
    assert blocks[-1]["type"] == "actions", "the buttons survive any amount of content"
    assert len(brief_fallback_text(big)) <= 3000


def test_chart_is_shown_when_the_card_has_one() -> None:
    uploaded = brief_blocks(result(), incident_key="k", state=BriefCardState(brief_version=1, chart_file_id="F123"))
    image = next(b for b in uploaded if b["type"] == "image")
    assert image["slack_file"] == {"id": "F123"}
    hosted = brief_blocks(result(), incident_key="k",
                          state=BriefCardState(brief_version=1, chart_url="https://charts.example/a.png"))
    assert next(b for b in hosted if b["type"] == "image")["image_url"] == "https://charts.example/a.png"
    unsafe = brief_blocks(result(), incident_key="k",
                          state=BriefCardState(brief_version=1, chart_url="javascript:alert(1)"))
    assert all(b["type"] != "image" for b in unsafe)
    assert validate_blocks(uploaded) == []
    assert validate_blocks(hosted) == []


def test_placeholder_failure_and_fallback_escape_outside_text() -> None:
    for blocks in (placeholder_blocks(HOSTILE), failure_blocks(f"RuntimeError: {HOSTILE}", title=HOSTILE)):
        assert_safe(blocks)
        assert all(b["type"] != "actions" for b in blocks), "only the finished brief has buttons"
    assert unescaped_markup(brief_fallback_text(result(text=HOSTILE))) == []


def test_ticket_modal_is_prefilled_and_limited_to_allowed_projects() -> None:
    res = result()
    assert res.brief.ticket is not None
    view = ticket_modal(res.brief.ticket, evidence=res.evidence, allowed_projects=["CHK", "OPS"],
                        approval_id="ap-1", dry_run=False)
    assert validate_view(view) == []
    assert view["callback_id"] == "ticket_submit"
    # Finding 7: nothing in it says where the card is; that comes from the store.
    assert json.loads(view["private_metadata"]) == {"approval_id": "ap-1"}
    by_id = {b["block_id"]: b for b in view["blocks"]}
    assert [o["value"] for o in by_id["project"]["element"]["options"]] == ["CHK", "OPS"]
    description = by_id["description"]["element"]["initial_value"]
    assert "[1] [Deploy" in description
    assert "|https://github.com/acme/checkout/deployments/1]" in description
    assert "|https://wiki.example/rb?a=1&b=2]" in description
    values = slack_sender.initial_values(view)
    assert values["project"]["value"]["selected_option"]["value"] == "CHK"
    assert values["priority"]["value"]["selected_option"]["value"] == "High"
    assert values["summary"]["value"]["value"] == res.brief.ticket.summary


def test_a_proposal_outside_the_allowed_projects_is_not_preselected() -> None:
    res = result()
    assert res.brief.ticket is not None
    proposal = res.brief.ticket.model_copy(update={"project": "SEC", "description": "d" * 5000})
    view = ticket_modal(proposal, evidence=res.evidence, allowed_projects=["CHK"], approval_id="a",
                        dry_run=True)
    assert validate_view(view) == []
    project = next(b for b in view["blocks"] if b["block_id"] == "project")
    assert "initial_option" not in project["element"]
    assert view["submit"]["text"] == "Preview"
    assert slack_sender.initial_values(view)["project"]["value"]["selected_option"] is None


def test_feedback_modal_and_dry_run_preview() -> None:
    view = feedback_reason_modal(incident_key="pd:PD1", brief_version=2)
    assert validate_view(view) == []
    assert view["callback_id"] == "feedback_reason"
    assert json.loads(view["private_metadata"]) == {"incident_key": "pd:PD1", "brief_version": 2}
    preview = dry_run_preview_blocks({"method": "POST", "url": "/rest/api/2/issue",
                                      "json": {"fields": {"summary": HOSTILE, "description": "x" * 5000}}})
    assert_safe(preview)


@pytest.mark.parametrize("name", ["checkout-5xx-after-deploy", "search-latency-injection",
                                  "notify-dependency-redis", "inventory-unknown", "orders-traffic-surge",
                                  "payments-config-change", "ledger-deploy-failed-status"])
async def test_every_bundled_scenarios_brief_fits_slack(name: str) -> None:
    scenario: Scenario = load_scenario(bundled_scenarios_dir() / f"{name}.yaml")
    run = await run_scenario(scenario)
    blocks = brief_blocks(run.result, incident_key="k", state=BriefCardState(brief_version=1))
    assert_safe(blocks)
    dumped = json.dumps(blocks)
    for planted in scenario.expect.must_not_mention:
        assert planted not in dumped
