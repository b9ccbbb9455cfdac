"""PagerDuty: the incident being briefed, its alerts' custom details, and the service's history.

Read-only at the wire: the client refuses anything but the three GETs in `RULES` (no
acknowledging, resolving or noting from here). Alert custom details come from whatever fired
the alert and are untrusted text: they are quoted, never followed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.core.config import PagerDutySettings
from bot.core.errors import ConfigError, SourceUnavailable, WireRefused
from bot.core.models import Evidence, EvidenceKind, Provenance, Source, TimeWindow, evidence_id
from bot.core.redaction import clip
from connectors._http import Allowlist, ReadOnlyTransport, base_path, get_json
from connectors._retry import RetryPolicy

SOURCE = "pagerduty"
RULES = (
    ("GET", "/incidents"),
    ("GET", "/incidents/{incident_id}"),
    ("GET", "/incidents/{incident_id}/alerts"),
)
HEADERS = {"Accept": "application/vnd.pagerduty+json;version=2", "User-Agent": "incident-brief"}
PAGE_LIMIT = 25
MAX_PAST_INCIDENTS = 20  # the most recent ones; older history adds little to a brief
MAX_DETAILS_CHARS = 400
WRITE_PROBE_PATH = "/incidents"

_ID = re.compile(r"[A-Za-z0-9]{1,64}")


def read_only_allowlist(settings: PagerDutySettings) -> Allowlist:
    return Allowlist(SOURCE, RULES, base_path=base_path(settings.base_url))


def build_client(settings: PagerDutySettings, transport: httpx.AsyncBaseTransport | None = None,
                 allowlist: Allowlist | None = None) -> httpx.AsyncClient:
    """The connector's HTTP client: ``Token token=`` auth, API v2 media type, read-only allowlist."""
    headers = dict(HEADERS)
    if token := settings.token.get_secret_value():
        headers["Authorization"] = f"Token token={token}"
    return httpx.AsyncClient(
        base_url=settings.base_url.rstrip("/"), headers=headers, timeout=settings.timeout_s,
        transport=ReadOnlyTransport(allowlist or read_only_allowlist(settings), transport),
        follow_redirects=False,
    )


class PagerDutyConnector:
    """Reads incidents and alerts from PagerDuty's REST API v2."""

    def __init__(self, settings: PagerDutySettings,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._allowlist = read_only_allowlist(settings)
        self._client = build_client(settings, transport, self._allowlist)
        self._prefix = base_path(settings.base_url)
        self._retry = RetryPolicy(settings.max_retries)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def incident(self, incident_id: str, *, with_alerts: bool = True) -> list[Evidence]:
        """The incident itself, then (unless `with_alerts` is off) one item per alert, with its
        custom details."""
        _check_id(incident_id, "incident id", "pagerduty.get_incident")
        path = f"/incidents/{incident_id}"
        body = await self._get(path, "pagerduty.get_incident")
        incident = _field(body, "incident", dict, "pagerduty.get_incident")
        first = self._incident_evidence(incident, EvidenceKind.INCIDENT, Provenance(
            system=Source.PAGERDUTY, tool="pagerduty.get_incident", request=f"GET {self._prefix}{path}",
            fetched_at=datetime.now(UTC)))
        if not with_alerts:
            return [first]
        try:
            alerts, request_line = await self._pages(f"{path}/alerts", "alerts", {}, "pagerduty.list_alerts")
        except WireRefused:
            raise
        except SourceUnavailable as exc:
            # The incident is still worth citing; say plainly that its alerts are missing.
            return [Evidence.model_validate({  # validated again: the excerpt bound must hold
                **first.model_dump(),
                "excerpt": f"{first.excerpt} Alerts not available from PagerDuty: {exc.reason}.",
                "data": {**first.data, "missing": ["alerts"]},
            })]
        provenance = Provenance(system=Source.PAGERDUTY, tool="pagerduty.list_alerts",
                                request=request_line, fetched_at=datetime.now(UTC))
        return [first] + [self._alert_evidence(incident, alert, provenance) for alert in alerts]

    async def recent_incidents(self, service_id: str, window: TimeWindow, days: int = 30,
                               exclude: str | None = None) -> list[Evidence]:
        """The service's incidents in the `days` before the alert (newest first), minus `exclude`."""
        _check_id(service_id, "service id", "pagerduty.list_incidents")
        params = {
            "service_ids[]": service_id, "since": _iso(window.alert_at - timedelta(days=days)),
            "until": _iso(window.end), "sort_by": "created_at:desc", "time_zone": "UTC",
        }
        found, request_line = await self._pages("/incidents", "incidents", params, "pagerduty.list_incidents")
        provenance = Provenance(system=Source.PAGERDUTY, tool="pagerduty.list_incidents",
                                request=request_line, fetched_at=datetime.now(UTC))
        past = [i for i in found if i.get("id") != exclude and isinstance(i.get("id"), str)]
        past.sort(key=lambda i: str(i.get("created_at") or ""), reverse=True)
        return [self._incident_evidence(i, EvidenceKind.PAST_INCIDENT, provenance)
                for i in past[:MAX_PAST_INCIDENTS]]

    async def write_probe(self) -> str:
        """Try a write (create an incident) through the connector's own client; return the
        refusal. Used by ``doctor`` to prove the connector cannot write."""
        if self._allowlist.allows("POST", self._prefix + WRITE_PROBE_PATH):
            raise ConfigError(f"pagerduty: the allowlist would let POST {WRITE_PROBE_PATH} through")
        try:
            await self._client.post(WRITE_PROBE_PATH, json={"incident": {"type": "incident"}})
        except WireRefused as exc:
            return str(exc)
        raise ConfigError(f"pagerduty: POST {WRITE_PROBE_PATH} was not refused by the read-only transport")

    async def _get(self, path: str, tool: str, params: dict[str, Any] | None = None) -> Any:
        return await get_json(self._client, path, source=SOURCE, tool=tool, retry=self._retry, params=params)

    async def _pages(self, path: str, key: str, params: dict[str, Any],
                     tool: str) -> tuple[list[dict[str, Any]], str]:
        """Classic offset paging: follow ``more`` for at most ``settings.max_pages`` pages."""
        items: list[dict[str, Any]] = []
        first = str(httpx.URL(self._prefix + path, params={**params, "limit": PAGE_LIMIT, "offset": 0}))
        offset = 0
        for _ in range(max(self.settings.max_pages, 1)):
            body = await self._get(path, tool, {**params, "limit": PAGE_LIMIT, "offset": offset})
            page = _field(body, key, list, tool)
            items += [item for item in page if isinstance(item, dict)]
            if body.get("more") is not True or not page:
                break
            offset += len(page)
        return items, f"GET {first}"

    def _incident_evidence(self, incident: dict[str, Any], kind: EvidenceKind,
                           provenance: Provenance) -> Evidence:
        iid = _text(incident.get("id")) or "unknown"
        number = incident.get("incident_number")
        title = _text(incident.get("title")) or _text(incident.get("summary")) or "(untitled)"
        status = _text(incident.get("status")) or "unknown"
        urgency = _text(incident.get("urgency")) or "unknown"
        service = _obj(incident.get("service"))
        created, resolved = _time(incident.get("created_at")), _time(incident.get("resolved_at"))
        label = f"#{number}" if isinstance(number, int) else iid
        excerpt = f"[{urgency} urgency] {title} on {_text(service.get('summary')) or 'unknown service'}"
        excerpt += f"; status {status}" + (f", opened {_when(created)}" if created else "")
        if resolved and created:
            excerpt += f", resolved after {_duration(resolved - created)}"
        return Evidence(
            id=evidence_id(kind, iid), kind=kind, source=Source.PAGERDUTY,
            title=f"{'PagerDuty' if kind is EvidenceKind.INCIDENT else 'Past'} incident {label}: {title}",
            excerpt=excerpt + ".", timestamp=created, link=f"{self.settings.link_base}/incidents/{iid}",
            provenance=provenance, ref={"incident_id": iid},
            data={"incident_id": iid, "status": status, "urgency": urgency,
                  "number": number if isinstance(number, int) else None,
                  "service_id": _text(service.get("id")), "service": _text(service.get("summary")),
                  "resolved_at": resolved.isoformat() if resolved else None},
        )

    def _alert_evidence(self, incident: dict[str, Any], alert: dict[str, Any],
                        provenance: Provenance) -> Evidence:
        iid = _text(incident.get("id")) or "unknown"
        aid = _text(alert.get("id")) or "unknown"
        details = _obj(_obj(alert.get("body")).get("details"))
        severity, status = _text(alert.get("severity")) or "unknown", _text(alert.get("status")) or "unknown"
        summary = _text(alert.get("summary")) or "(no summary)"
        created = _time(alert.get("created_at"))
        when = f", {_when(created)}" if created else ""
        excerpt = f"Alert ({severity}, {status}{when}): {summary}."
        if details:
            excerpt += f" Custom details: {_render_details(details)}"
        return Evidence(
            id=evidence_id(EvidenceKind.INCIDENT, f"{iid}/alerts/{aid}"), kind=EvidenceKind.INCIDENT,
            source=Source.PAGERDUTY, title=f"PagerDuty alert: {summary}", excerpt=excerpt, timestamp=created,
            link=f"{self.settings.link_base}/incidents/{iid}", provenance=provenance,
            ref={"incident_id": iid, "alert_id": aid},
            data={"incident_id": iid, "alert_id": aid, "status": status,
                  "urgency": _text(incident.get("urgency")) or "unknown", "severity": severity,
                  "details": details},
        )


def _check_id(value: str, what: str, tool: str) -> None:
    """Ids go into URL paths and queries: only PagerDuty's alphanumeric ids are accepted."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise SourceUnavailable(SOURCE, f"invalid {what} {str(value)[:80]!r}", tool)


def _field(body: Any, key: str, kind: type, tool: str) -> Any:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, kind):
        raise SourceUnavailable(SOURCE, f"unexpected response shape (no {key!r})", tool)
    return value


def _render_details(details: dict[str, Any]) -> str:
    """Custom details as ``key=value`` pairs, bounded: quoted data, never instructions."""
    parts = []
    for key, value in details.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}={shown}")
    text = "; ".join(parts)
    return text if len(text) <= MAX_DETAILS_CHARS else clip(text, MAX_DETAILS_CHARS, one_line=False)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(span: timedelta) -> str:
    minutes = max(int(span.total_seconds() // 60), 0)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
