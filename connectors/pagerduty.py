"""PagerDuty: the incident being briefed, its alerts' custom details, and the service's history;
for ``doctor``, the account's services, to compare with the catalog.

Read-only at the wire: the client refuses anything but the four GETs in `RULES` (no
acknowledging, resolving or noting from here). Alert custom details come from whatever fired
the alert and are untrusted text: they are quoted, never followed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from bot.core.config import PagerDutySettings
from bot.core.errors import ConfigError, SourceUnavailable, WireRefused
from bot.core.models import Evidence, EvidenceKind, Provenance, Source, TimeWindow, evidence_id
from bot.core.redaction import clip
from connectors._http import Allowlist, ReadOnlyTransport, base_path, get_json
from connectors._retry import RetryPolicy
from connectors._time import iso_time

SOURCE = "pagerduty"
RULES = (
    ("GET", "/incidents"),
    ("GET", "/incidents/{incident_id}"),
    ("GET", "/incidents/{incident_id}/alerts"),
    ("GET", "/services"),
)
HEADERS = {"Accept": "application/vnd.pagerduty+json;version=2", "User-Agent": "incident-brief"}
PAGE_LIMIT = 25
MAX_PAST_INCIDENTS = 20  # the most recent ones; older history adds little to a brief
SERVICES_PAGE_LIMIT = 100  # PagerDuty's largest page: an account's services in few requests
# The whole directory of all but the largest accounts; past it the listing says it was cut,
# so a service missing from it is "not seen", never "does not exist".
MAX_SERVICES = 1000
LIST_SERVICES = "pagerduty.list_services"
MAX_DETAILS_CHARS = 400
WRITE_PROBE_PATH = "/incidents"

_ID = re.compile(r"[A-Za-z0-9]{1,64}")


class PagerDutyService(BaseModel):
    """One service as PagerDuty lists it (`GET /services`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    status: str  # active, warning, critical, maintenance or disabled
    html_url: str | None = None


class ServiceListing(BaseModel):
    """The account's services, in PagerDuty's order (by name), each id once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    services: list[PagerDutyService]
    cut: bool = False  # PagerDuty had more than were read (`max_services`)
    request: str = ""  # the first page's request line

    def ids(self) -> set[str]:
        return {service.id for service in self.services}


@dataclass(frozen=True)
class _Pages:
    items: list[dict[str, Any]]
    request: str  # the first page's request line, for provenance
    cut: bool  # PagerDuty still said ``more`` when the page bound was reached


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
            alerts = await self._pages(f"{path}/alerts", "alerts", {}, "pagerduty.list_alerts")
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
                                request=alerts.request, fetched_at=datetime.now(UTC))
        return [first] + [self._alert_evidence(incident, alert, provenance) for alert in alerts.items]

    async def recent_incidents(self, service_id: str, window: TimeWindow, days: int = 30,
                               exclude: str | None = None) -> list[Evidence]:
        """The service's incidents in the `days` before the alert (newest first), minus `exclude`."""
        _check_id(service_id, "service id", "pagerduty.list_incidents")
        params = {
            "service_ids[]": service_id, "since": _iso(window.alert_at - timedelta(days=days)),
            "until": _iso(window.end), "sort_by": "created_at:desc", "time_zone": "UTC",
        }
        found = await self._pages("/incidents", "incidents", params, "pagerduty.list_incidents")
        provenance = Provenance(system=Source.PAGERDUTY, tool="pagerduty.list_incidents",
                                request=found.request, fetched_at=datetime.now(UTC))
        past = [i for i in found.items if i.get("id") != exclude and isinstance(i.get("id"), str)]
        past.sort(key=lambda i: str(i.get("created_at") or ""), reverse=True)
        return [self._incident_evidence(i, EvidenceKind.PAST_INCIDENT, provenance)
                for i in past[:MAX_PAST_INCIDENTS]]

    async def list_services(self, max_services: int = MAX_SERVICES) -> ServiceListing:
        """The account's services (id, name, status, link), at most `max_services`, sorted by
        name; `cut` says PagerDuty had more. Not evidence: ``doctor`` compares them with the catalog."""
        pages = max(math.ceil(max_services / SERVICES_PAGE_LIMIT), 1)
        found = await self._pages("/services", "services", {"sort_by": "name"}, LIST_SERVICES,
                                  limit=SERVICES_PAGE_LIMIT, max_pages=pages)
        services: dict[str, PagerDutyService] = {}
        for item in found.items:
            service = _service(item)
            # Offset pages can overlap when a service is added mid-listing: each id counts once.
            if service is not None and service.id not in services:
                services[service.id] = service
        listed = list(services.values())
        return ServiceListing(services=listed[:max_services], cut=found.cut or len(listed) > max_services,
                              request=found.request)

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

    async def _pages(self, path: str, key: str, params: dict[str, Any], tool: str, *,
                     limit: int = PAGE_LIMIT, max_pages: int | None = None) -> _Pages:
        """Classic offset paging: follow ``more`` for at most `max_pages` pages (by default
        ``settings.max_pages``)."""
        items: list[dict[str, Any]] = []
        first = str(httpx.URL(self._prefix + path, params={**params, "limit": limit, "offset": 0}))
        offset, more = 0, False
        for _ in range(max(max_pages or self.settings.max_pages, 1)):
            body = await self._get(path, tool, {**params, "limit": limit, "offset": offset})
            page = _field(body, key, list, tool)
            items += [item for item in page if isinstance(item, dict)]
            more = body.get("more") is True and bool(page)
            if not more:
                break
            offset += len(page)
        return _Pages(items, f"GET {first}", cut=more)

    def _incident_evidence(self, incident: dict[str, Any], kind: EvidenceKind,
                           provenance: Provenance) -> Evidence:
        iid = _text(incident.get("id")) or "unknown"
        number = incident.get("incident_number")
        title = _text(incident.get("title")) or _text(incident.get("summary")) or "(untitled)"
        status = _text(incident.get("status")) or "unknown"
        urgency = _text(incident.get("urgency")) or "unknown"
        service = _obj(incident.get("service"))
        created, resolved = iso_time(incident.get("created_at")), iso_time(incident.get("resolved_at"))
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
        created = iso_time(alert.get("created_at"))
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


def _service(item: dict[str, Any]) -> PagerDutyService | None:
    """A listed service, or None when it has no id to match a catalog entry by."""
    sid = _text(item.get("id"))
    if sid is None:
        return None
    return PagerDutyService(id=sid, name=_text(item.get("name")) or _text(item.get("summary")) or sid,
                            status=_text(item.get("status")) or "unknown", html_url=_text(item.get("html_url")))


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


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(span: timedelta) -> str:
    minutes = max(int(span.total_seconds() // 60), 0)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
