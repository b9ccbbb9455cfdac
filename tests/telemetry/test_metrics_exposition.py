"""`/metrics` after a demo-like run: the real web app against the sandbox, a signed PagerDuty
webhook, the brief drafted through the gateway (the sandbox's simulated model, its OpenAI
route failing so the Anthropic fallback answers), a 👍 and a 👎, a Refresh (a cache hit), the
ticket approved and filed. Every metric the issue lists moved, read back with the Prometheus
client's own parser; the registry is the process's, so each is compared with its value before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.core.policy import BUNDLED_POLICY, load_policy
from bot.store.reports import Reports
from sandbox import slack_sender
from sandbox.pagerduty import build_webhook, send_webhook
from sandbox.people import approve_ticket, button, wait_for
from sandbox.scenario import Scenario
from tests.helpers.slack_app import running_bot
from tests.helpers.telemetry import exposition_totals, labelled, model_drafter, sandbox_model, scrape

COUNTED = (  # counters (by _total) and histograms (by _count): each must have moved
    "incident_brief_briefs", "incident_brief_alert_to_first_post_seconds",
    "incident_brief_alert_to_final_brief_seconds", "incident_brief_tool_calls",
    "incident_brief_tool_call_duration_seconds", "incident_brief_model_calls",
    "incident_brief_model_call_duration_seconds", "incident_brief_model_tokens", "incident_brief_model_cost_usd",
    "incident_brief_model_cache_lookups", "incident_brief_fallbacks", "incident_brief_approvals",
    "incident_brief_feedback", "incident_brief_webhook_deliveries",
)
GAUGES = ("incident_brief_spend_limit_usd", "incident_brief_workspace_month_spend_usd",
          "incident_brief_spend_limit_used_ratio")
LABELLED = (  # the samples that say the run did what it should have
    ("incident_brief_briefs_total", {"trigger": "pagerduty", "outcome": "posted"}),
    ("incident_brief_model_cache_lookups_total", {"route": "brief", "result": "hit"}),
    ("incident_brief_fallbacks_total", {"route": "brief", "reason": "http_error", "to": "next_model"}),
    ("incident_brief_approvals_total", {"outcome": "filed"}),
    ("incident_brief_feedback_total", {"vote": "up"}),
    ("incident_brief_feedback_total", {"vote": "down"}),
    ("incident_brief_webhook_deliveries_total", {"source": "pagerduty", "outcome": "accepted"}),
    ("incident_brief_webhook_deliveries_total", {"source": "pagerduty", "outcome": "duplicate"}),
    ("incident_brief_tool_calls_total", {"source": "jira", "tool": "jira.create_issue", "outcome": "ok"}),
)


def created_key(h: object) -> str:
    return str(h.sb.system("jira").created[0]["key"])


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    return labelled(text).get((name, frozenset(labels.items())), 0.0)


async def _click(h: object, message: object, action_id: str, user: str) -> None:
    found = button(message, action_id)
    assert found is not None, f"the brief has no {action_id} button"
    body = slack_sender.block_actions_body(user=user, channel=message.channel, message_ts=message.ts,
                                           action_id=action_id, value=found["value"])
    assert (await h.post_signed(body)).status_code == 200


async def test_after_a_demo_like_run_every_listed_metric_has_new_samples(checkout: Scenario, tmp_path: Path) -> None:
    with sandbox_model():
        async with running_bot(checkout, tmp_path / "metrics.db", policy=load_policy(BUNDLED_POLICY),
                               drafter=model_drafter()) as h:
            before = await scrape(h.url)
            h.sb.system("llm").wire_behaviour["openai"] = "http_500"  # the route fails; the fallback answers
            body, headers = build_webhook(checkout, "incident.triggered")
            assert (await send_webhook(f"{h.url}/webhooks/pagerduty", body, headers)).status_code == 202
            assert (await send_webhook(f"{h.url}/webhooks/pagerduty", body, headers)).status_code == 202  # a retry
            message = await wait_for(h.brief_message, "the brief in Slack")
            await h.rt.idle()
            await _click(h, message, "feedback_up", "U0ONCALL2")
            await _click(h, message, "feedback_down", "U0ONCALL3")
            await _click(h, message, "brief_refresh", "U0ONCALL1")  # same evidence: the model answer is cached
            await wait_for(lambda: len(h.sb.system("slack").views) >= 1 or None, "the 👎 reason modal")
            await h.rt.idle()
            await approve_ticket(h.sb, h.url, h.brief_message(), "U0ONCALL1")
            await wait_for(lambda: list(h.sb.system("jira").created) or None, "the Jira ticket")
            await h.rt.idle()
            after = await scrape(h.url)
            # The same run, as the operator's commands read it back from the store.
            reports = Reports(h.rt.store.sessions)
            report = await reports.trust_report(since=datetime(2000, 1, 1, tzinfo=UTC),
                                                until=datetime.now(UTC) + timedelta(days=1))
            story = await reports.incident_audit("pd:Q1CHK5XX")


    families = {family.name: family for family in text_string_to_metric_families(after)}
    grew = {name: (exposition_totals(before).get(name, 0.0), exposition_totals(after).get(name, 0.0))
            for name in COUNTED}
    assert {name: values for name, values in grew.items() if values[1] <= values[0]} == {}
    assert {name: families[name].type for name in GAUGES} == dict.fromkeys(GAUGES, "gauge")
    assert all(any(sample.value > 0 for sample in families[name].samples) for name in GAUGES)
    moved = {(name, tuple(sorted(labels.items()))): (_sample(before, name, labels), _sample(after, name, labels))
             for name, labels in LABELLED}
    assert {key: values for key, values in moved.items() if values[1] <= values[0]} == {}
    # Bounded labels: no incident key, user id or free text became a label value.
    values = {value for family in families.values() if family.name.startswith("incident_brief_")
              for sample in family.samples for value in sample.labels.values()}
    assert not [v for v in values if v.startswith(("pd:", "slack:", "U0")) or " " in v]

    assert (report.incidents, report.briefs, report.by_trigger) == (1, 1, {"pagerduty": 1})
    assert (report.votes_up, report.votes_down, report.tickets_filed, report.refreshed_incidents) == (1, 1, 1, 1)
    assert report.tickets_edited == 0, "the modal was submitted as prefilled: not an edit"
    assert report.override_rate == 1.0  # a person refreshed it and voted it down
    assert report.schema_pass_rate == 1.0
    assert story is not None
    assert story.tickets == [created_key(h)]
    assert [call.outcome for call in story.model_calls if call.task == "brief"] == [
        "http_error", "ok", "http_error", "cache_hit"]  # the route failed twice; the fallback answered, then cached
