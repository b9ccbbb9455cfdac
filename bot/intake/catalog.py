"""The service catalog: which channel, dashboards, repo, runbooks and project belong to a service.

Two file shapes are accepted: our own list (the same entries as a scenario's ``catalog``)
under a top-level ``services:`` key, and Backstage ``catalog-info.yaml`` documents
(``kind: Component``) whose annotations name the sources. Lookups are by service name, by
PagerDuty service id, or by a service name found in free text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import ConfigError
from bot.core.models import DatadogRef, ServiceEntry


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogDatadog(_Entry):
    service: str | None = None
    env: str | None = None
    dashboards: list[str] = Field(default_factory=list)


class CatalogEntry(_Entry):
    """One service in our own catalog format (also a scenario's ``catalog`` entries)."""

    name: str
    team: str | None = None
    slack_channel: str | None = None
    datadog: CatalogDatadog | None = None
    github: dict[Literal["repo"], str] | None = None
    confluence: dict[Literal["space", "labels"], Any] | None = None
    jira: dict[Literal["project"], str] | None = None
    pagerduty: dict[Literal["service_id"], str] | None = None

    def to_service_entry(self) -> ServiceEntry:
        dd = self.datadog
        confluence = self.confluence or {}
        return ServiceEntry(
            name=self.name,
            team=self.team,
            slack_channel=self.slack_channel,
            datadog=DatadogRef(
                service=dd.service or self.name, env=dd.env or "prod", dashboards=dd.dashboards
            ) if dd else None,
            github_repo=(self.github or {}).get("repo"),
            confluence_space=confluence.get("space"),
            confluence_labels=list(confluence.get("labels") or []),
            jira_project=(self.jira or {}).get("project"),
            pagerduty_service_id=(self.pagerduty or {}).get("service_id"),
        )



# Backstage annotations we understand (well-known ones where they exist).
_BACKSTAGE = {
    "github": "github.com/project-slug",
    "pagerduty": "pagerduty.com/service-id",
    "jira": "jira/project-key",
    "datadog_service": "datadoghq.com/service-name",
    "datadog_env": "datadoghq.com/env",
    "datadog_dashboards": "datadoghq.com/dashboard-ids",
    "slack": "slack.com/channel-id",
    "confluence_space": "confluence/space-key",
    "confluence_labels": "confluence/labels",
}


class Catalog:
    def __init__(self, entries: Iterable[ServiceEntry]) -> None:
        self._by_name = {e.name: e for e in entries}

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> ServiceEntry | None:
        return self._by_name.get(name)

    def jira_projects(self) -> list[str]:
        """The Jira projects the catalog's services name: where tickets go unless the policy's
        `jira.allowed_projects` narrows them."""
        return sorted({e.jira_project for e in self._by_name.values() if e.jira_project})

    def by_pagerduty_service(self, service_id: str) -> ServiceEntry | None:
        return next((e for e in self._by_name.values() if e.pagerduty_service_id == service_id), None)

    def by_channel(self, channel: str) -> ServiceEntry | None:
        return next((e for e in self._by_name.values() if e.slack_channel == channel), None)

    def find_in_text(self, text: str) -> ServiceEntry | None:
        """The longest catalog name that appears in the text as a whole word."""
        for name in sorted(self._by_name, key=len, reverse=True):
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE):
                return self._by_name[name]
        return None

    def resolve(self, name: str) -> ServiceEntry:
        """The entry for a service, or a bare one (so sources with defaults still work)."""
        return self.get(name) or ServiceEntry(name=name, datadog=DatadogRef(service=name))

    def without_channel(self) -> list[str]:
        """The services with no Slack channel of their own."""
        return [name for name, entry in sorted(self._by_name.items()) if not entry.slack_channel]


def no_channel_fix(service: str) -> str:
    return f"give {service} a slack_channel in the catalog, or set IB_SLACK__DEFAULT_CHANNEL"


def unpostable(catalog: Catalog, default_channel: str | None) -> list[str]:
    """The catalog's services whose PagerDuty alerts would have nowhere to be posted: no channel
    of their own and no default channel to fall back on."""
    return [] if default_channel else catalog.without_channel()


def unpostable_problem(names: list[str]) -> str:
    """What `doctor`, `config` and `serve` say about `unpostable` services."""
    return (f"no Slack channel for {', '.join(names)} and no IB_SLACK__DEFAULT_CHANNEL: their PagerDuty "
            f"alerts would not be posted ({no_channel_fix('each')})")


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read catalog: {exc}") from exc
    entries: list[ServiceEntry] = []
    for index, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == "Component":
            entries.append(_from_backstage(doc, f"{path}[{index}]"))
        elif isinstance(doc, dict) and "services" in doc:
            for pos, raw in enumerate(doc["services"] or []):
                entries.append(_from_ours(raw, f"{path}: services[{pos}]"))
        else:
            raise ConfigError(f"{path}[{index}]: expected `services:` or a Backstage Component")
    return Catalog(entries)


def _from_ours(raw: Any, where: str) -> ServiceEntry:
    try:
        return CatalogEntry.model_validate(raw).to_service_entry()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}.{field}: {first['msg']}") from exc


def _from_backstage(doc: dict[str, Any], where: str) -> ServiceEntry:
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ConfigError(f"{where}: metadata.name is required")
    notes: dict[str, str] = meta.get("annotations") or {}

    def note(key: str) -> str | None:
        return notes.get(_BACKSTAGE[key])

    def listed(key: str) -> list[str]:
        return [v.strip() for v in (note(key) or "").split(",") if v.strip()]

    spec = doc.get("spec") or {}
    owner = str(spec.get("owner", "")).removeprefix("group:") or None
    return ServiceEntry(
        name=name,
        team=owner,
        slack_channel=note("slack"),
        datadog=DatadogRef(service=note("datadog_service") or name, env=note("datadog_env") or "prod",
                           dashboards=listed("datadog_dashboards")),
        github_repo=note("github"),
        confluence_space=note("confluence_space"),
        confluence_labels=listed("confluence_labels") or [name],
        jira_project=note("jira"),
        pagerduty_service_id=note("pagerduty"),
    )
