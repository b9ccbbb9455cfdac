"""Fake PagerDuty: the REST API v2 reads the bot makes, and a v3 webhook sender.

The scenario's alert is the one incident (when it has an ``incident_id``), on the service the
catalog maps it to, with one alert whose ``body.details`` are the alert's custom details.
Nothing else exists: past incidents would need a world field the format does not have yet.
The services (`GET /services`) are the catalog's that name a PagerDuty service id, the alert's,
and those of ``world.pagerduty.services``, which the catalog does not know.
`build_webhook` renders the same incident as a signed v3 ``incident.*`` delivery, and
`send_webhook` posts it the way PagerDuty does.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import httpx

from bot.intake.signing import sign_pagerduty
from sandbox.core import Reply, SandboxContext, SandboxRequest, SystemApp, iso
from sandbox.scenario import Scenario

API_BASE = "https://api.pagerduty.com"
WEB_BASE = "https://acme.pagerduty.com"
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
DEFAULT_WEBHOOK_SECRET = "sandbox-pagerduty-webhook-secret"  # = server.DEFAULT_SECRETS
USER_AGENT = "PagerDuty-Webhook/V3.0"
_STATUS_BY_EVENT = {"incident.triggered": "triggered", "incident.acknowledged": "acknowledged",
                    "incident.resolved": "resolved", "incident.reopened": "triggered",
                    "incident.priority_updated": "triggered", "incident.escalated": "triggered"}
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SERVICE_SORTS = {"name": False, "name:asc": False, "name:desc": True}  # sort_by -> reversed


def _pd_id(*parts: str) -> str:
    """A PagerDuty-style id (``P`` + 6 upper-case alphanumerics), derived from `parts`."""
    digest = int(hashlib.sha256("|".join(parts).encode()).hexdigest(), 16)
    chars = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    out = ""
    for _ in range(6):
        digest, rem = divmod(digest, len(chars))
        out += chars[rem]
    return "P" + out


def _ulid_like(*parts: str) -> str:
    digest = int(hashlib.sha256("|".join(parts).encode()).hexdigest(), 16)
    return "".join(_ULID_ALPHABET[(digest >> (5 * i)) & 31] for i in range(26))


class Listed(NamedTuple):
    """One service of the world's PagerDuty account."""

    id: str
    name: str
    team: str | None
    status: str


def error(status: int, message: str, code: int, errors: list[str] | None = None) -> Reply:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return Reply({"error": body}, status=status)


class PagerDutyWorld:
    """The scenario's incident rendered as PagerDuty JSON."""

    def __init__(self, scenario: Scenario, api: str = API_BASE, web: str = WEB_BASE) -> None:
        self.scenario = scenario
        self.api = api.rstrip("/")
        self.web = web.rstrip("/")
        alert = scenario.alert
        item = next((c for c in scenario.catalog if c.name == alert.service), None)
        self.team = item.team if item else None
        self.service_id = ((item.pagerduty or {}).get("service_id") if item else None) or _pd_id(
            "service", alert.service)

    @property
    def incident_id(self) -> str | None:
        return self.scenario.alert.incident_id

    @property
    def created_at(self) -> datetime:
        return self.scenario.alert.triggered_at

    @property
    def number(self) -> int:
        digest = hashlib.sha256(f"number|{self.incident_id}".encode()).hexdigest()
        return int(digest[:5], 16) % 90000 + 1000

    def ref(self, kind: str, pid: str, summary: str, path: str) -> dict[str, Any]:
        return {"id": pid, "type": f"{kind}_reference", "summary": summary,
                "self": f"{self.api}/{path}/{pid}", "html_url": f"{self.web}/{path}/{pid}"}

    def service(self) -> dict[str, Any]:
        ref = self.ref("service", self.service_id, self.scenario.alert.service, "services")
        ref["html_url"] = f"{self.web}/service-directory/{self.service_id}"
        return ref

    def escalation_policy(self) -> dict[str, Any]:
        return self.policy_of(self.team, self.scenario.alert.service)

    def policy_of(self, team: str | None, service: str) -> dict[str, Any]:
        """The on-call escalation policy of a team, or of a service without one."""
        name = f"{team or service} on-call"
        return self.ref("escalation_policy", _pd_id("ep", name), name, "escalation_policies")

    def teams(self) -> list[dict[str, Any]]:
        return self.team_refs(self.team)

    def team_refs(self, team: str | None) -> list[dict[str, Any]]:
        return [self.ref("team", _pd_id("team", team), team, "teams")] if team else []

    def directory(self) -> list[Listed]:
        """Every service PagerDuty has, each id once, by name."""
        found: dict[str, Listed] = {}
        for item in self.scenario.catalog:
            if sid := (item.pagerduty or {}).get("service_id"):
                found.setdefault(sid, Listed(sid, item.name, item.team, "active"))
        found.setdefault(self.service_id, Listed(self.service_id, self.scenario.alert.service, self.team, "active"))
        for extra in self.scenario.world.pagerduty.services:
            found.setdefault(extra.id, Listed(extra.id, extra.name, None, extra.status))
        return sorted(found.values(), key=lambda listed: (listed.name.lower(), listed.id))

    def service_object(self, listed: Listed) -> dict[str, Any]:
        """A service as `GET /services` lists it (the documented example's fields)."""
        sid, name = listed.id, listed.name
        # Only the alert's service has had an incident the world knows of: this one.
        last = iso(self.created_at) if sid == self.service_id and self.incident_id else None
        return {
            "id": sid, "type": "service", "summary": name, "self": f"{self.api}/services/{sid}",
            "html_url": f"{self.web}/service-directory/{sid}", "name": name, "description": None,
            "auto_resolve_timeout": 14400, "acknowledgement_timeout": 1800,
            "created_at": iso(self.scenario.now - timedelta(days=365)), "status": listed.status,
            "last_incident_timestamp": last, "alert_creation": "create_alerts_and_incidents",
            "alert_grouping_parameters": {"type": None},
            "integrations": [self.ref("events_api_v2_inbound_integration", _pd_id("integration", sid),
                                      "Events API V2", f"services/{sid}/integrations")],
            "escalation_policy": self.policy_of(listed.team, name), "teams": self.team_refs(listed.team),
            "incident_urgency_rule": {"type": "constant", "urgency": "high"}, "support_hours": None,
            "scheduled_actions": [], "addons": [], "response_play": None,
            "auto_pause_notifications_parameters": {"enabled": False, "timeout": None},
        }

    def incident_key(self) -> str:
        return hashlib.md5(f"key|{self.incident_id}".encode(), usedforsecurity=False).hexdigest()

    def incident(self, status: str = "triggered") -> dict[str, Any]:
        alert = self.scenario.alert
        iid = self.incident_id or ""
        return {
            "id": iid, "type": "incident", "summary": f"[#{self.number}] {alert.title}",
            "self": f"{self.api}/incidents/{iid}", "html_url": f"{self.web}/incidents/{iid}",
            "incident_number": self.number, "title": alert.title, "description": alert.title,
            "created_at": iso(self.created_at), "updated_at": iso(self.created_at), "status": status,
            "incident_key": self.incident_key(), "service": self.service(), "assignments": [],
            "assigned_via": "escalation_policy", "last_status_change_at": iso(self.created_at),
            "resolved_at": None, "first_trigger_log_entry": None,
            "alert_counts": {"all": 1, "triggered": 1 if status != "resolved" else 0,
                             "resolved": 1 if status == "resolved" else 0},
            "is_mergeable": True, "escalation_policy": self.escalation_policy(), "teams": self.teams(),
            "pending_actions": [], "acknowledgements": [], "alert_grouping": None,
            "last_status_change_by": self.service(), "priority": None, "urgency": alert.urgency,
            "incident_type": {"name": "incident_default"}, "resolve_reason": None,
            "conference_bridge": None,
        }

    def alerts(self) -> list[dict[str, Any]]:
        alert = self.scenario.alert
        iid = self.incident_id or ""
        aid = _pd_id("alert", iid)
        return [{
            "id": aid, "type": "alert", "summary": alert.title,
            "self": f"{self.api}/incidents/{iid}/alerts/{aid}", "html_url": f"{self.web}/alerts/{aid}",
            "created_at": iso(self.created_at), "status": "triggered", "alert_key": self.incident_key(),
            "service": self.service(),
            "body": {"type": "alert_body", "contexts": [], "details": dict(alert.details)},
            "incident": {"id": iid, "type": "incident_reference",
                         "summary": f"[#{self.number}] {alert.title}",
                         "self": f"{self.api}/incidents/{iid}", "html_url": f"{self.web}/incidents/{iid}"},
            "suppressed": False, "severity": "critical" if alert.urgency == "high" else "warning",
            "integration": self.ref("generic_events_api_inbound_integration", _pd_id("integration", iid),
                                    "Events API V2", f"services/{self.service_id}/integrations"),
        }]

    def webhook_data(self, status: str) -> dict[str, Any]:
        inc = self.incident(status)
        return {
            "id": inc["id"], "type": "incident", "self": inc["self"], "html_url": inc["html_url"],
            "number": inc["incident_number"], "status": status, "incident_key": inc["incident_key"],
            "created_at": inc["created_at"], "title": inc["title"], "service": self.service(),
            "assignees": [], "escalation_policy": self.escalation_policy(), "teams": self.teams(),
            "priority": None, "urgency": inc["urgency"], "conference_bridge": None,
            "resolve_reason": None,
        }


def _int_arg(req: SandboxRequest, name: str, default: int) -> int:
    try:
        return int(req.q(name) or default)
    except ValueError:
        return default


def page(req: SandboxRequest, key: str, items: list[Any]) -> dict[str, Any]:
    """PagerDuty classic pagination: ``limit``/``offset`` in, ``more`` (and ``total``) out."""
    limit = min(max(_int_arg(req, "limit", DEFAULT_LIMIT), 1), MAX_LIMIT)
    offset = max(_int_arg(req, "offset", 0), 0)
    chunk = items[offset: offset + limit]
    total = len(items) if req.q("total") == "true" else None
    return {key: chunk, "limit": limit, "offset": offset, "more": offset + limit < len(items),
            "total": total}


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace(" ", "+"))  # a '+' may arrive unescaped as ' '
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _auth(ctx: SandboxContext) -> Any:
    def check(req: SandboxRequest) -> Reply | None:
        header = req.headers.get("authorization", "")
        if header == f"Token token={ctx.secrets.get('api_token')}":
            return None
        return error(401, "Unauthorized", 2006)

    return check


def build(ctx: SandboxContext) -> SystemApp:
    app = SystemApp("pagerduty", ctx, auth=_auth(ctx))

    def world() -> PagerDutyWorld:  # URLs are filled in after build, so render lazily
        return PagerDutyWorld(ctx.scenario, api=ctx.urls.get("pagerduty", API_BASE))

    def provenance() -> list[str]:
        return [ctx.scenario.alert.incident_id or ""]

    @app.route("GET", "/incidents/{incident_id}", "pagerduty.get_incident")
    async def get_incident(req: SandboxRequest) -> Reply:
        pd = world()
        if pd.incident_id is None or req.path_params["incident_id"] != pd.incident_id:
            return error(404, "Not Found", 2100)
        return Reply({"incident": pd.incident()}, provenance=provenance())

    @app.route("GET", "/incidents/{incident_id}/alerts", "pagerduty.list_alerts")
    async def list_alerts(req: SandboxRequest) -> Reply:
        pd = world()
        if pd.incident_id is None or req.path_params["incident_id"] != pd.incident_id:
            return error(404, "Not Found", 2100)
        body = page(req, "alerts", pd.alerts())
        return Reply(body, provenance=provenance() if body["alerts"] else [])

    @app.route("GET", "/services", "pagerduty.list_services")
    async def list_services(req: SandboxRequest) -> Reply:
        pd = world()
        order = req.q("sort_by", "name") or "name"
        if order not in SERVICE_SORTS:
            return error(400, "Invalid Input Provided", 2001, ["Sort by is not a valid sort field"])
        directory = pd.directory()[::-1] if SERVICE_SORTS[order] else pd.directory()
        return Reply(page(req, "services", [pd.service_object(listed) for listed in directory]))

    @app.route("GET", "/incidents", "pagerduty.list_incidents")
    async def list_incidents(req: SandboxRequest) -> Reply:
        pd = world()
        try:
            since, until = _parse_time(req.q("since")), _parse_time(req.q("until"))
        except ValueError:
            return error(400, "Invalid Input Provided", 2001, ["Since or until is not a valid date"])
        services = req.query.get("service_ids[]")
        statuses = req.query.get("statuses[]")
        found = []
        if pd.incident_id is not None:
            inc = pd.incident()
            if ((services is None or pd.service_id in services)
                    and (statuses is None or inc["status"] in statuses)
                    and (since is None or pd.created_at >= since)
                    and (until is None or pd.created_at < until)):
                found.append(inc)
        body = page(req, "incidents", found)
        return Reply(body, provenance=provenance() if body["incidents"] else [])

    return app


def build_webhook(
    scenario: Scenario,
    event_type: str = "incident.triggered",
    *,
    event_id: str | None = None,
    secret: str | list[str] = DEFAULT_WEBHOOK_SECRET,
    occurred_at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A signed PagerDuty v3 webhook delivery for the scenario's incident: (raw body, headers).

    Ids default to values derived from the scenario, so a redelivery of the same event carries
    the same ``X-Webhook-Id`` (what receivers dedupe on). A list of secrets signs with each,
    as PagerDuty does while a secret is rotated.
    """
    if scenario.alert.incident_id is None:
        raise ValueError(f"scenario {scenario.id!r} has no PagerDuty incident (alert.incident_id)")
    if event_type not in _STATUS_BY_EVENT:
        raise ValueError(f"unsupported webhook event type {event_type!r}")
    pd = PagerDutyWorld(scenario)
    status = _STATUS_BY_EVENT[event_type]
    at = occurred_at or (scenario.alert.triggered_at if status == "triggered" else scenario.now)
    eid = event_id or _ulid_like("event", scenario.id, pd.incident_id or "", event_type)
    event = {
        "id": eid, "event_type": event_type, "resource_type": "incident",
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "agent": pd.service() if status == "triggered" else None,
        "client": None, "data": pd.webhook_data(status),
    }
    body = _json_bytes({"event": event})
    secrets = [secret] if isinstance(secret, str) else list(secret)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-PagerDuty-Signature": ",".join(sign_pagerduty(s, body) for s in secrets),
        "X-Webhook-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pagerduty-webhook:{eid}")),
        "X-Webhook-Subscription": _pd_id("subscription", scenario.id),
    }
    return body, headers


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def send_webhook(url: str, body: bytes, headers: dict[str, str], *,
                       timeout_s: float = 5.0,
                       transport: httpx.AsyncBaseTransport | None = None) -> httpx.Response:
    """POST a delivery as PagerDuty does (it gives up on a receiver after 5 s)."""
    async with httpx.AsyncClient(timeout=timeout_s, transport=transport) as client:
        return await client.post(url, content=body, headers=headers)
