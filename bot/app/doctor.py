"""`incident-brief doctor`: per connector, proof that a read works and that a write is refused.

Reads go through the tool choke point like any brief's (policy, timeout, audit), with
parameters from the first catalog entry that names the source. Writes are attempted through
each connector's own HTTP session, so the check is the real guard: a write must be refused
in-process by the wire allowlist (`WireRefused`) before anything is sent. The Jira writer's
one allowed write (create issue) is never exercised; a different write (DELETE) is.

Slack: auth.test works, and the token has every scope of the app manifest (Slack reports a
token's scopes in ``x-oauth-scopes``). The model: one tiny request through the gateway on the
brief's route (`bot.gateway.probe`), its cost shown; skipped when no provider is configured.
Channels: every catalog service has a Slack channel, its own or the default one, so no
PagerDuty alert has nowhere to be posted. PagerDuty services: the account's services (one
audited `pagerduty.list_services` read) against the catalog's ``pagerduty_service_id``s. A
catalog id PagerDuty does not have fails (a typo: that service's alerts miss their entry); a
service no entry names by id is a warning (its alerts go to the default channel, without the
entry's channel and, unless an entry has its name, without its context), and a failure when
there is no default channel to post them to. Catalog references: every dashboard, repository,
Confluence space and Jira project the catalog names resolves at its source (`bot.app.doctor_catalog`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table
from slack_sdk.errors import SlackApiError

from bot.app.doctor_catalog import MAX_REFERENCES, Checks, catalog_rows
from bot.core.audit import MemoryAudit
from bot.core.config import Settings
from bot.core.errors import ConfigError, WireRefused
from bot.core.models import Alert, ServiceEntry, Source
from bot.core.policy import Policy, default_policy, load_policy
from bot.gateway.drafter import describe_drafting
from bot.gateway.probe import probe_model
from bot.gather.connectors import Connectors
from bot.gather.plan import incident_window
from bot.gather.tools import ToolRunner
from bot.intake.catalog import Catalog, load_catalog, unpostable, unpostable_problem
from bot.runtime import slack_client
from bot.slack.manifest import MANIFESTS, bot_scopes, missing_scopes
from connectors.pagerduty import LIST_SERVICES, PagerDutyConnector, PagerDutyService, ServiceListing

SERVICES_ROW = "pagerduty services"
MAX_NAMED = 5  # services named per finding; the rest are counted, so one line stays readable


@dataclass(frozen=True)
class DoctorRow:
    connector: str
    read: str  # "ok", "warning" (works, but see the detail), "skipped", "n/a" or "FAILED"
    read_detail: str
    write: str  # "refused", "not applicable" or what went wrong
    write_detail: str

    @property
    def failed(self) -> bool:
        return self.read == "FAILED" or self.write == "NOT REFUSED"


async def _probe_write(attempt: Callable[[], Awaitable[Any]]) -> tuple[str, str]:
    try:
        result = await attempt()
    except WireRefused as refused:
        return "refused", str(refused)
    except Exception as exc:  # anything else means the request may have left the process
        return "NOT REFUSED", f"{type(exc).__name__}: {exc}"[:200]
    if result is True or (isinstance(result, str) and result):
        return "refused", result if isinstance(result, str) else "refused before sending"
    return "NOT REFUSED", "the write was not stopped by the allowlist"


def _first(catalog: Catalog, has: Callable[[ServiceEntry], object]) -> ServiceEntry | None:
    return next((catalog.get(name) for name in catalog.names() if has(catalog.get(name))), None)  # type: ignore[arg-type]


async def run_doctor(settings: Settings, policy: Policy | None = None, catalog: Catalog | None = None,
                     now: datetime | None = None) -> list[DoctorRow]:
    """One row per connector: a cheap real read, and a write that the wire allowlist must refuse.

    Policy and catalog default to the configured files (or the bundled policy and an empty
    catalog). The checks run concurrently, so the doctor takes as long as its slowest source.
    """
    policy = policy or (load_policy(settings.policy_file) if settings.policy_file else default_policy())
    if catalog is None:
        catalog = load_catalog(settings.catalog_file) if settings.catalog_file else Catalog([])
    now = now or datetime.now(UTC)
    connectors = Connectors.from_settings(settings)
    audit = MemoryAudit()
    runner = ToolRunner(policy=policy, audit=audit, brief_key="doctor", actor="doctor", timeout_s=15)
    # The catalog's references are checked by a runner of their own: far more reads than a brief's cap.
    catalog_runner = ToolRunner(policy=policy, audit=audit, brief_key="doctor", actor="doctor", timeout_s=15,
                                max_calls=MAX_REFERENCES)
    any_service = _first(catalog, lambda s: True) or ServiceEntry(name="doctor")
    alert = Alert(via="cli", title="doctor", service=any_service.name, triggered_at=now)
    window = incident_window(alert, now)

    async def read(tool: str, source: Source, call: Callable[[], Awaitable[Any]]) -> tuple[str, str]:
        started = time.perf_counter()
        outcome = await runner.read(tool, source, call)
        took = f"{(time.perf_counter() - started) * 1000:.0f} ms"
        if outcome.gap is not None:
            return "FAILED", f"{tool}: {outcome.gap.reason}"
        return "ok", f"{tool}: {len(outcome.evidence)} items in {took}"

    async def check(name: str, reading: Awaitable[tuple[str, str]],
                    write: Callable[[], Awaitable[Any]]) -> DoctorRow:
        status, detail = await reading
        write_status, write_detail = await _probe_write(write)
        return DoctorRow(name, status, detail, write_status, write_detail)

    try:
        if not (connectors.datadog and connectors.github and connectors.confluence and connectors.pagerduty
                and connectors.jira):
            raise ConfigError("doctor needs every read connector configured")
        dd, gh, cf, pd, jr = (connectors.datadog, connectors.github, connectors.confluence, connectors.pagerduty,
                              connectors.jira)
        dd_service = any_service.datadog.service if any_service.datadog else any_service.name
        repo = _first(catalog, lambda s: s.github_repo)
        space = _first(catalog, lambda s: s.confluence_space)
        pd_service = _first(catalog, lambda s: s.pagerduty_service_id)
        project = _first(catalog, lambda s: s.jira_project)
        checks = [
            check("datadog", read("datadog.query_metrics", Source.DATADOG,
                                  lambda: dd.query_metrics([f"sum:trace.http.request.hits{{service:{dd_service}}}"],
                                                           window)), dd.write_probe),
            check("github", read("github.list_deployments", Source.GITHUB,
                                 lambda: gh.recent_deploys(repo.github_repo or "", window))
                  if repo else _skip("no catalog service names a GitHub repo"), gh.write_probe),
            check("confluence", read("confluence.search", Source.CONFLUENCE,
                                     lambda: cf.find_runbooks(space.confluence_space if space else None,
                                                              space.confluence_labels if space else [], "doctor")),
                  cf.write_probe),
            check("pagerduty", read("pagerduty.list_incidents", Source.PAGERDUTY,
                                    lambda: pd.recent_incidents(pd_service.pagerduty_service_id or "", window))
                  if pd_service else _skip("no catalog service names a PagerDuty service"), pd.write_probe),
            _pagerduty_services(runner, pd, policy, catalog, settings.slack.default_channel),
            check("jira (read)", read("jira.search", Source.JIRA,
                                      lambda: jr.open_issues(project.jira_project or "", project.name))
                  if project else _skip("no catalog service names a Jira project"), jr.write_probe),
            _jira_writer(settings),
            _slack(settings),
            _model(settings, policy),
        ]
        resolving = catalog_rows(catalog_runner, policy, catalog, Checks(dd.dashboard_check, gh.repo_check,
                                                                         cf.space_check, jr.project_check))
        rows, found = await asyncio.gather(asyncio.gather(*checks), resolving)
        return [*rows, channels_row(settings, catalog),
                *(DoctorRow(f.row, f.status, f.detail, "n/a", "") for f in found)]
    finally:
        await connectors.aclose()


def channels_row(settings: Settings, catalog: Catalog) -> DoctorRow:
    """Where PagerDuty alerts are posted: every catalog service needs a Slack channel of its own
    or the default one, else its alerts are dropped (recorded, but never posted)."""
    default = settings.slack.default_channel
    if not len(catalog):
        return DoctorRow("channels", "skipped", "no catalog: PagerDuty alerts go to "
                         + (f"the default channel {default}" if default else "IB_SLACK__DEFAULT_CHANNEL, not set"),
                         "n/a", "")
    unrouted = unpostable(catalog, default)
    if unrouted:
        return DoctorRow("channels", "FAILED", unpostable_problem(unrouted), "n/a", "")
    fallback = catalog.without_channel()
    detail = f"each of {len(catalog)} service(s) has a Slack channel" + (
        f"; {', '.join(fallback)} use the default channel {default}" if fallback else "")
    return DoctorRow("channels", "ok", detail, "n/a", "")


async def _pagerduty_services(runner: ToolRunner, pd: PagerDutyConnector, policy: Policy, catalog: Catalog,
                              default_channel: str | None) -> DoctorRow:
    """PagerDuty's services against the catalog, read through the choke point like every read."""
    if not len(catalog):
        return DoctorRow(SERVICES_ROW, "skipped", "no catalog: every PagerDuty service is briefed without one",
                         "n/a", "")
    decision = policy.decide(LIST_SERVICES)
    if decision.outcome != "allow":
        # Only this check needs the tool, so a policy without it skips the check, not the doctor.
        return DoctorRow(SERVICES_ROW, "skipped", f"{LIST_SERVICES}: {decision.reason}; PagerDuty's services "
                         "were not compared with the catalog", "n/a", "")
    started = time.perf_counter()
    outcome = await runner.lookup(LIST_SERVICES, Source.PAGERDUTY, pd.list_services,
                                  count=lambda listing: len(listing.services))
    took = f"{(time.perf_counter() - started) * 1000:.0f} ms"
    if outcome.value is None:
        reason = outcome.gap.reason if outcome.gap else "no answer"
        return DoctorRow(SERVICES_ROW, "FAILED", f"{LIST_SERVICES}: {reason}", "n/a", "")
    return services_row(outcome.value, catalog, default_channel, took)


def services_row(listing: ServiceListing, catalog: Catalog, default_channel: str | None,
                 took: str = "") -> DoctorRow:
    """What PagerDuty's services say about the catalog. FAILED: a catalog id PagerDuty does not
    have, or services the catalog lacks with no default channel to post their alerts to;
    warning: services the catalog lacks (their alerts go to the default channel)."""
    head = f"{LIST_SERVICES}: {len(listing.services)} service(s)" + (f" in {took}" if took else "")
    failures, notes = _unknown_ids(listing, catalog)
    # A disabled service opens no incidents: no alert of it can miss the catalog.
    uncatalogued = [s for s in listing.services
                    if s.status != "disabled" and catalog.by_pagerduty_service(s.id) is None]
    if uncatalogued:
        failed, finding = _uncatalogued(uncatalogued, default_channel)
        (failures if failed else notes).append(finding)
    if listing.cut:
        notes.append(f"PagerDuty has more; only these {len(listing.services)} were compared")
    status = "FAILED" if failures else "warning" if uncatalogued else "ok"
    if not failures and not notes:
        notes.append("each is in the catalog, and PagerDuty has each service the catalog names")
    return DoctorRow(SERVICES_ROW, status, "; ".join([head, *failures, *notes]), "n/a", "")


def _unknown_ids(listing: ServiceListing, catalog: Catalog) -> tuple[list[str], list[str]]:
    """Catalog entries whose PagerDuty id is not listed: a failure, or only a note when the
    listing was cut (the id may be past the cut)."""
    listed = listing.ids()
    by_name = {service.name.lower(): service.id for service in listing.services}
    unknown = [_unknown(name, sid, by_name.get(name.lower())) for name, sid in _pagerduty_ids(catalog)
               if sid not in listed]
    if not unknown:
        return [], []
    if listing.cut:
        return [], [f"not among the services read, so not checked: {_named(unknown)}"]
    return [f"the catalog names PagerDuty service id(s) PagerDuty does not have: {_named(unknown)} "
            "(a typo? those services' alerts would not find their catalog entry)"], []


def _pagerduty_ids(catalog: Catalog) -> list[tuple[str, str]]:
    """(service, PagerDuty service id) of each catalog entry that names one."""
    entries = [catalog.get(name) for name in catalog.names()]
    return [(e.name, e.pagerduty_service_id) for e in entries if e is not None and e.pagerduty_service_id]


def _unknown(name: str, sid: str, namesake: str | None) -> str:
    """A catalog entry and its unknown id, with the id of PagerDuty's service of that name: the
    likely correction of a typo."""
    return f"{name} ({sid}; PagerDuty's {name} is {namesake})" if namesake else f"{name} ({sid})"


def _uncatalogued(services: list[PagerDutyService], default_channel: str | None) -> tuple[bool, str]:
    """Services the catalog lacks: (whether that fails, what to say)."""
    labels = [f"{service.name} ({service.id})" for service in services]
    # The webhook briefs such a service as a bare entry with no channel of its own: the same
    # rule as a catalog service without one decides whether its alerts can be posted.
    unrouted = unpostable(Catalog([ServiceEntry(name=label) for label in labels]), default_channel)
    count = f"{len(services)} PagerDuty service(s) not in the catalog (no entry has their id)"
    if unrouted:
        return True, (f"{count} and no IB_SLACK__DEFAULT_CHANNEL: their alerts would not be posted: "
                      f"{_named(unrouted)} (add them to the catalog, each with its pagerduty service_id and a "
                      "slack_channel, or set IB_SLACK__DEFAULT_CHANNEL)")
    return False, f"{count}, so their alerts go to the default channel {default_channel}: {_named(labels)}"


def _named(labels: list[str]) -> str:
    shown = ", ".join(labels[:MAX_NAMED])
    return shown + (f" and {len(labels) - MAX_NAMED} more" if len(labels) > MAX_NAMED else "")


async def _skip(reason: str) -> tuple[str, str]:
    return "skipped", reason


async def _jira_writer(settings: Settings) -> DoctorRow:
    """The writer may create issues (behind approval) and nothing else. Its create is never
    exercised here: a different write (DELETE an issue) must be refused instead."""
    from connectors.jira import JiraWriter

    writer = JiraWriter(settings.jira)
    try:
        status, detail = await _probe_write(writer.write_probe)
    finally:
        await writer.aclose()
    return DoctorRow("jira (writer)", "n/a", "create_issue runs only after an approval", status, detail)


async def _slack(settings: Settings) -> DoctorRow:
    client = slack_client(settings)
    started = time.perf_counter()
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        return DoctorRow("slack", "FAILED", f"auth.test: {exc.response.get('error', 'error')}", "n/a", "")
    except Exception as exc:
        return DoctorRow("slack", "FAILED", f"auth.test: {type(exc).__name__}: {exc}"[:200], "n/a", "")
    took = (time.perf_counter() - started) * 1000
    who = answer.get("user") or answer.get("user_id") or "?"
    detail = f"auth.test as {who} in {took:.0f} ms"
    socket_mode = settings.slack.socket_mode
    manifest = MANIFESTS[socket_mode].name
    header = next((value for name, value in (answer.headers or {}).items() if name.lower() == "x-oauth-scopes"), None)
    if header is None:
        return DoctorRow("slack", "ok", f"{detail}; Slack did not report the token's scopes", "n/a", "")
    granted = {scope.strip() for scope in str(header).split(",") if scope.strip()}
    missing = missing_scopes(granted, socket_mode)
    if missing:
        return DoctorRow("slack", "FAILED", f"{detail}; the token lacks scopes of {manifest}: {', '.join(missing)} "
                         "(add them to the app and reinstall it)", "n/a", "")
    extra = sorted(granted - bot_scopes(socket_mode))
    more = f"; also granted, unused: {', '.join(extra)}" if extra else ""
    return DoctorRow("slack", "ok", f"{detail}; every scope of {manifest}{more}", "n/a",
                     "posting messages is the bot's job; Jira is its only gated write")


async def _model(settings: Settings, policy: Policy) -> DoctorRow:
    if not settings.llm.drafts_with_model():
        return DoctorRow("model", "skipped", describe_drafting(settings.llm), "n/a", "")
    started = time.perf_counter()
    outcome = await probe_model(settings.llm, policy)
    took = (time.perf_counter() - started) * 1000
    if not outcome.ok:
        return DoctorRow("model", "FAILED", f"{outcome.detail} ({took:.0f} ms); briefs would be drafted offline",
                         "n/a", "")
    return DoctorRow("model", "ok", outcome.detail, "n/a", "the model chooses no tools; it only drafts")


def doctor_table(rows: list[DoctorRow]) -> Table:
    table = Table(title="incident-brief doctor")
    for column in ("connector", "read", "detail", "write", "write detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        read_style = ("green" if row.read in {"ok", "n/a"} else "yellow" if row.read in {"skipped", "warning"}
                      else "red")
        write_style = "green" if row.write in {"refused", "n/a"} else "red"
        read = f"read {row.read}" if row.read in {"ok", "FAILED"} else row.read
        # Details quote what the sources said (service names, error text): printed, never markup.
        table.add_row(row.connector, f"[{read_style}]{read}[/]", escape(row.read_detail),
                      f"[{write_style}]{'write refused' if row.write == 'refused' else row.write}[/]",
                      escape(row.write_detail))
    return table
