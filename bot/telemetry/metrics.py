"""Every metric the bot exposes on ``/metrics``, defined once, on one registry.

Names follow Prometheus conventions: a ``incident_brief_`` prefix, ``_total`` for counters,
``_seconds`` and ``_usd`` for units. Label values come from small closed sets (a trigger, an
outcome, a source, a configured model or route, a workspace); an incident key, a user id or
free text is never a label: each distinct value would be a new time series, forever.

Each process serves its own registry: with several ``web`` replicas, scrape every replica
(docs/observability.md) and sum in the query.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# The default registry: it also carries the client library's process_* and python_* metrics.
registry: CollectorRegistry = REGISTRY

# Seconds from the alert to a message in Slack: a placeholder within seconds, a brief within a
# minute or two when every source answers; the long tail is a slow source or a model timeout.
_ALERT_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
# One tool or model call: tens of milliseconds to the per-call timeouts (8 s, 20 s, 60 s).
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)

BRIEFS = Counter(
    "incident_brief_briefs_total", "Briefs drafted, by what triggered them and how they ended",
    ["trigger", "outcome"], registry=registry)
ALERT_TO_FIRST_POST = Histogram(
    "incident_brief_alert_to_first_post_seconds", "From the alert to the first message in Slack (the placeholder)",
    ["trigger"], buckets=_ALERT_BUCKETS, registry=registry)
ALERT_TO_FINAL_BRIEF = Histogram(
    "incident_brief_alert_to_final_brief_seconds", "From the alert to the finished brief in Slack",
    ["trigger"], buckets=_ALERT_BUCKETS, registry=registry)

TOOL_CALLS = Counter(
    "incident_brief_tool_calls_total", "Tool calls through the choke point, by source, tool and outcome",
    ["source", "tool", "outcome"], registry=registry)
TOOL_CALL_SECONDS = Histogram(
    "incident_brief_tool_call_duration_seconds", "Latency of the tool calls that were made",
    ["source", "tool"], buckets=_CALL_BUCKETS, registry=registry)

MODEL_CALLS = Counter(
    "incident_brief_model_calls_total", "Model requests made or refused, by route (task), model and outcome",
    ["route", "model", "outcome"], registry=registry)
MODEL_CALL_SECONDS = Histogram(
    "incident_brief_model_call_duration_seconds", "Latency of the model requests that were made",
    ["route", "model"], buckets=_CALL_BUCKETS, registry=registry)
MODEL_TOKENS = Counter(
    "incident_brief_model_tokens_total", "Tokens billed, by model, workspace and direction (input/output)",
    ["model", "workspace", "direction"], registry=registry)
MODEL_COST = Counter(
    "incident_brief_model_cost_usd_total", "Model spend in US dollars, by model and workspace",
    ["model", "workspace"], registry=registry)
CACHE_LOOKUPS = Counter(
    "incident_brief_model_cache_lookups_total", "Response cache lookups, by route and result (hit/miss)",
    ["route", "result"], registry=registry)
FALLBACKS = Counter(
    "incident_brief_fallbacks_total",
    "A model attempt that failed, by route, the reason, and what took over (next_model or offline)",
    ["route", "reason", "to"], registry=registry)
CANARY_SWITCHED_OFF = Counter(
    "incident_brief_canary_switched_off_total", "Canary models switched off because they did worse",
    ["route"], registry=registry)

SPEND_LIMIT = Gauge(
    "incident_brief_spend_limit_usd", "The policy's spend limits (user_day, workspace_month)",
    ["scope"], registry=registry)
WORKSPACE_SPEND = Gauge(
    "incident_brief_workspace_month_spend_usd", "This UTC month's model spend of a workspace (the store's total)",
    ["workspace"], registry=registry)
SPEND_USED = Gauge(
    "incident_brief_spend_limit_used_ratio",
    "Spend over its limit: the workspace's month, and the highest user's day this process charged",
    ["scope", "workspace"], registry=registry)
SPEND_REFUSALS = Counter(
    "incident_brief_spend_refusals_total", "Model requests refused before they were made, by the limit hit",
    ["scope"], registry=registry)

APPROVALS = Counter(
    "incident_brief_approvals_total", "Ticket approvals by outcome (filed, waiting_for_approver, refused, ...)",
    ["outcome"], registry=registry)
FEEDBACK = Counter(
    "incident_brief_feedback_total", "Feedback votes on briefs (up/down)", ["vote"], registry=registry)
WEBHOOK_DELIVERIES = Counter(
    "incident_brief_webhook_deliveries_total", "Webhook deliveries by source and outcome",
    ["source", "outcome"], registry=registry)
ALERTS_NOT_POSTED = Counter(
    "incident_brief_alerts_not_posted_total",
    "Alerts accepted but posted nowhere, by reason (no_channel: no catalog or default Slack channel)",
    ["reason"], registry=registry)
# Genuine (signed) PagerDuty events by type: PagerDuty's own documented set of about thirty
# types, cut at 64 characters; an unsigned delivery never gets this far.
PAGERDUTY_EVENTS = Counter(
    "incident_brief_pagerduty_events_total", "Genuine PagerDuty webhook events by type and outcome",
    ["event_type", "outcome"], registry=registry)
