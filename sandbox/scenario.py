"""Scenario files, format v1 (see docs/SCENARIOS.md and evals/scenario.schema.json).

One YAML file describes one incident world. Loading is strict: the JSON Schema is the
contract (unknown keys and bad values are errors naming the file and the field), and the
typed models below give the rest of the code attribute access.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.models import Alert, ServiceEntry
from bot.intake.catalog import CatalogEntry

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "evals" / "scenario.schema.json"
Fault = Literal["http_500", "http_429", "http_429_persistent", "timeout", "malformed", "refused"]
DEFAULT_RETRY_AFTER_S = 1  # what a 429 fault's Retry-After says unless `faults.retry_after_s` is set
ModelBehaviour = Literal[
    "normal", "invalid_json", "schema_violation", "uncited_claims",
    "unknown_citation_ids", "obey_injection", "slow", "http_500", "omit_ticket",
]


class ScenarioError(ValueError):
    """A scenario file that does not follow format v1; the message names file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Segment(_Strict):
    from_: datetime = Field(alias="from")
    value: float
    noise: float = 0.0


class Monitor(_Strict):
    id: int
    name: str
    query: str = ""
    status: Literal["OK", "Alert", "Warn", "No Data"] = "Alert"
    triggered_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)


class Widget(_Strict):
    title: str
    query: str


class Dashboard(_Strict):
    id: str
    title: str
    widgets: list[Widget] = Field(default_factory=list)


class MetricSeries(_Strict):
    id: str | None = None
    query: str
    name: str | None = None
    unit: str | None = None
    segments: list[Segment]


class LogEntry(_Strict):
    id: str | None = None
    service: str
    status: Literal["error", "warn", "info", "debug", "critical"]
    message: str
    count: int
    from_: datetime = Field(alias="from")
    to: datetime
    attributes: dict[str, Any] = Field(default_factory=dict)


class Event(_Strict):
    id: str | None = None
    title: str
    text: str = ""
    at: datetime
    tags: list[str] = Field(default_factory=list)


class PullRequestRef(_Strict):
    number: int
    title: str
    labels: list[str] = Field(default_factory=list)
    body: str = ""


class Deploy(_Strict):
    id: str | None = None
    repo: str
    sha: str
    ref: str | None = None
    environment: str
    created_at: datetime
    creator: str | None = None
    description: str | None = None
    status: Literal["success", "failure", "error", "in_progress", "pending", "inactive"] = "success"
    pull_request: PullRequestRef | None = None
    files: list[str] = Field(default_factory=list)  # what the deploy changed (the PR's files)


class Runbook(_Strict):
    id: str | None = None
    page_id: str
    space: str | None = None
    title: str
    labels: list[str] = Field(default_factory=list)
    updated_at: datetime | None = None
    body: str


class JiraIssue(_Strict):
    key: str
    summary: str
    status: str = "Open"
    labels: list[str] = Field(default_factory=list)


class JiraWorld(_Strict):
    existing_issues: list[JiraIssue] = Field(default_factory=list)


class DirectoryService(_Strict):
    id: str
    name: str
    status: Literal["active", "warning", "critical", "maintenance", "disabled"] = "active"


class PagerDutyDirectory(_Strict):
    """PagerDuty services the catalog does not name. Each catalog service with a
    ``pagerduty.service_id`` (and the alert's service) is in PagerDuty already."""

    services: list[DirectoryService] = Field(default_factory=list)


class Faults(_Strict):
    latency_ms: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, Fault] = Field(default_factory=dict)
    # Whole seconds, as Slack's clients read the header; tests keep it at 1 or 0 to stay fast.
    retry_after_s: int = Field(default=DEFAULT_RETRY_AFTER_S, ge=0, le=60)

    def latency_for(self, tool: str) -> int:
        """Injected latency for a tool: its own entry wins over its source's."""
        source = tool.split(".", 1)[0]
        return self.latency_ms.get(tool, self.latency_ms.get(source, 0))

    def error_for(self, tool: str) -> Fault | None:
        source = tool.split(".", 1)[0]
        return self.errors.get(tool, self.errors.get(source))


class World(_Strict):
    monitors: list[Monitor] = Field(default_factory=list)
    dashboards: list[Dashboard] = Field(default_factory=list)
    metrics: list[MetricSeries] = Field(default_factory=list)
    logs: list[LogEntry] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    deploys: list[Deploy] = Field(default_factory=list)
    runbooks: list[Runbook] = Field(default_factory=list)
    jira: JiraWorld = Field(default_factory=JiraWorld)
    pagerduty: PagerDutyDirectory = Field(default_factory=PagerDutyDirectory)
    faults: Faults = Field(default_factory=Faults)


class ScenarioAlert(_Strict):
    via: Literal["pagerduty", "slack_mention", "cli"]
    incident_id: str | None = None
    title: str
    service: str
    urgency: Literal["high", "low"] = "high"
    triggered_at: datetime
    details: dict[str, Any] = Field(default_factory=dict)
    mention_text: str | None = None
    requested_by: str | None = None

    def to_alert(self) -> Alert:
        return Alert(**self.model_dump())


class ModelSpec(_Strict):
    behaviour: ModelBehaviour = "normal"


class ExpectCause(_Strict):
    kind: Literal["deploy", "config", "dependency", "capacity", "traffic", "unknown"]
    item: str | None = None


class ExpectTicket(_Strict):
    project: str


class Expect(_Strict):
    cause: ExpectCause
    must_cite: list[str] = Field(default_factory=list)
    must_mention: list[str] = Field(default_factory=list)
    must_not_mention: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)
    ticket: ExpectTicket | None = None
    no_writes_without_approval: bool = True
    onset: datetime | None = None  # when the symptom began: no ranked cause may begin after it
    max_confidence: Literal["low", "medium", "high"] | None = None


class Scenario(_Strict):
    version: Literal[1]
    id: str
    title: str
    description: str = ""
    now: datetime
    alert: ScenarioAlert
    catalog: list[CatalogEntry] = Field(default_factory=list)
    world: World
    model: ModelSpec = Field(default_factory=ModelSpec)
    expect: Expect
    path: Path | None = Field(default=None, exclude=True)

    def service_entries(self) -> list[ServiceEntry]:
        return [item.to_service_entry() for item in self.catalog]


class _NoTimestampLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: the schema checks times as ISO 8601 strings."""


_NoTimestampLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# RFC 3339 date-time with an explicit offset. jsonschema checks "date-time" only when the optional
# rfc3339-validator package is installed (it is not), so without this the format went unchecked
# and "2026-05-12 14:00" (no offset, read as local time) loaded.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _is_timestamp(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the schema's "type" reports non-strings
    if not _TIMESTAMP.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:  # right shape, impossible date such as month 13
        return False
    return True


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    checker = FormatChecker()
    checker.checks("date-time")(_is_timestamp)
    return Draft202012Validator(schema, format_checker=checker)


def world_item_ids(scenario: Scenario) -> dict[str, str]:
    """Every id `expect` may name, with what kind of item it is (monitors by their numeric id
    as text, Jira issues by key)."""
    world = scenario.world
    ids: dict[str, str] = {}
    pairs: list[tuple[str | None, str]] = [
        *((str(m.id), "monitor") for m in world.monitors),
        *((d.id, "dashboard") for d in world.dashboards),
        *((m.id, "metric") for m in world.metrics),
        *((log.id, "log") for log in world.logs),
        *((e.id, "event") for e in world.events),
        *((d.id, "deploy") for d in world.deploys),
        *((r.id, "runbook") for r in world.runbooks),
        *((i.key, "jira issue") for i in world.jira.existing_issues),
    ]
    for item_id, kind in pairs:
        if item_id is not None:
            ids.setdefault(item_id, kind)
    return ids


def _reference_errors(scenario: Scenario) -> list[str]:
    """Semantic checks the schema cannot express: world ids are unique, and every id in
    `expect` names a world item (a typo there would make the scenario impossible to pass)."""
    world = scenario.world
    seen: set[str] = set()
    errors: list[str] = []
    named: list[tuple[str, str | None]] = [
        *((f"world.metrics[{i}].id", m.id) for i, m in enumerate(world.metrics)),
        *((f"world.logs[{i}].id", log.id) for i, log in enumerate(world.logs)),
        *((f"world.events[{i}].id", e.id) for i, e in enumerate(world.events)),
        *((f"world.deploys[{i}].id", d.id) for i, d in enumerate(world.deploys)),
        *((f"world.runbooks[{i}].id", r.id) for i, r in enumerate(world.runbooks)),
        *((f"world.dashboards[{i}].id", d.id) for i, d in enumerate(world.dashboards)),
    ]
    for field, item_id in named:
        if item_id is None:
            continue
        if item_id in seen:
            errors.append(f"{field}: duplicate id {item_id!r}")
        seen.add(item_id)
    errors += _directory_errors(scenario)
    known = world_item_ids(scenario)
    expect = scenario.expect
    refs = [("expect.cause.item", expect.cause.item)]
    refs += [(f"expect.must_cite[{i}]", item) for i, item in enumerate(expect.must_cite)]
    errors += [f"{field}: {item!r} is not the id of any world item" for field, item in refs
               if item is not None and item not in known]
    return errors


def _directory_errors(scenario: Scenario) -> list[str]:
    """A PagerDuty service listed twice, or listed again under the catalog's id, would be two
    services with one id: which name PagerDuty reports would depend on the order."""
    catalog = {(c.pagerduty or {}).get("service_id"): c.name for c in scenario.catalog}
    seen: set[str] = set()
    errors: list[str] = []
    for index, service in enumerate(scenario.world.pagerduty.services):
        field = f"world.pagerduty.services[{index}].id"
        if service.id in catalog:
            errors.append(f"{field}: {service.id!r} is the catalog's {catalog[service.id]} already")
        elif service.id in seen:
            errors.append(f"{field}: duplicate id {service.id!r}")
        seen.add(service.id)
    return errors


def _field_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_scenario(raw: Any, origin: str = "<scenario>") -> Scenario:
    """Validate a parsed document against the schema, then build the typed scenario."""
    errors = sorted(_validator().iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{origin}: {_field_path(e.absolute_path)}: {e.message}" for e in errors[:10]]
        raise ScenarioError("invalid scenario\n  " + "\n  ".join(lines))
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:  # the schema passed, so this is a semantic check
        lines = [f"{origin}: {_field_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ScenarioError("invalid scenario\n  " + "\n  ".join(lines)) from exc
    problems = _reference_errors(scenario)
    if problems:
        raise ScenarioError("invalid scenario\n  " + "\n  ".join(f"{origin}: {p}" for p in problems))
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_NoTimestampLoader)  # noqa: S506 - safe loader subclass
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    scenario = parse_scenario(raw, str(path))
    return scenario.model_copy(update={"path": path})


def bundled_scenarios_dir() -> Path:
    return SCHEMA_PATH.parent / "scenarios"
