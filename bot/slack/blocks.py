"""Block Kit for the brief card, its placeholder and failure, and the two modals.

Pure functions from domain models to Slack JSON: no I/O, so a snapshot pins every change.
Everything that came from outside (evidence, alert, model output) goes through
`bot.slack.mrkdwn` before it reaches a text field, and every text is cut to Slack's limits
(50 blocks a message, 3,000 characters a section, 150 a header), with a link to the rest
where one exists.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.models import Brief, BriefResult, Claim, Confidence, Evidence, EvidenceKind, Frozen, TicketProposal
from bot.draft.changes import source_name
from bot.slack.mrkdwn import escape, link, safe_url, truncate, user_mention

MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
CONTEXT_TEXT_MAX = 2000  # per context element; kept well under Slack's 3,000
MAX_CAUSES = 5
MAX_CHANGES = 8
MAX_ACTIONS = 8
MAX_SOURCES = 25
MODAL_TEXT_MAX = 3000
JIRA_SUMMARY_MAX = 255
PRIORITIES = ("Highest", "High", "Medium", "Low")

_CONFIDENCE_MARK = {Confidence.HIGH: "🟥", Confidence.MEDIUM: "🟧", Confidence.LOW: "⬜"}
_SEVERITY_MARK = {"high": "🔴", "low": "🟡", "resolved": "✅"}
_CHANGE_KINDS = {EvidenceKind.DEPLOY, EvidenceKind.EVENT}


class BriefCardState(Frozen):
    """What the card shows besides the brief itself: where the incident stands."""

    brief_version: int
    elapsed_s: float | None = None
    status_line: str | None = None  # "Acknowledged by Ana at 14:07 UTC"; None while triggered
    severity: str | None = None  # PagerDuty urgency; read from the incident evidence when unset
    ticket_key: str | None = None
    ticket_url: str | None = None
    approved_by: str | None = None  # Slack user ids, comma-separated
    approved_at: datetime | None = None
    chart_url: str | None = None  # a public PNG, or
    chart_file_id: str | None = None  # a file uploaded with files.uploadV2

    @property
    def status(self) -> str:
        """triggered | acknowledged | resolved (escalations and reopenings stay triggered)."""
        line = (self.status_line or "").lower()
        if line.startswith("resolved"):
            return "resolved"
        if line.startswith("acknowledged"):
            return "acknowledged"
        return "triggered"


# --- small builders -------------------------------------------------------------------------


def _plain(text: str, limit: int) -> dict[str, Any]:
    value = escape(text)
    return {"type": "plain_text", "text": truncate(value, limit) or " ", "emoji": True}


def _section(mrkdwn: str, block_id: str | None = None, more_url: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section",
                             "text": {"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_TEXT_MAX, more_url)}}
    if block_id:
        block["block_id"] = block_id
    return block


def _context(*texts: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(t, CONTEXT_TEXT_MAX)} for t in texts if t][:10]}
    if block_id:
        block["block_id"] = block_id
    return block


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id, "value": value,
                              "text": {"type": "plain_text", "text": text, "emoji": True}}
    if style:
        button["style"] = style
    return button


class _Citations:
    """Numbers evidence in order of first citation, as the terminal and the sources list do."""

    def __init__(self, brief: Brief, evidence: list[Evidence]) -> None:
        self.numbers = {eid: n for n, eid in enumerate(brief.cited_ids(), start=1)}
        self.by_id = {item.id: item for item in evidence}

    def refs(self, ids: list[str]) -> str:
        out = []
        for eid in dict.fromkeys(ids):
            number = self.numbers.get(eid)
            if number is None:
                continue
            item = self.by_id.get(eid)
            out.append(link(item.link if item else None, f"[{number}]"))
        return "".join(out)

    def claim(self, claim: Claim) -> str:
        refs = self.refs(claim.citations)
        return f"{escape(claim.text)} {refs}" if refs else escape(claim.text)

    def first_link(self, ids: list[str]) -> str | None:
        for eid in ids:
            item = self.by_id.get(eid)
            if item and safe_url(item.link):
                return item.link
        return None


# --- the brief card -------------------------------------------------------------------------


def _severity(result: BriefResult, state: BriefCardState) -> str | None:
    if state.severity:
        return state.severity
    for item in result.evidence:
        if item.kind == EvidenceKind.INCIDENT and item.data.get("urgency"):
            return str(item.data["urgency"])
    return None


def _header(result: BriefResult, state: BriefCardState) -> list[dict[str, Any]]:
    severity = _severity(result, state)
    mark = _SEVERITY_MARK["resolved"] if state.status == "resolved" else _SEVERITY_MARK.get(severity or "", "🟠")
    title = f"{mark} {result.brief.headline.text}"
    return [{"type": "header", "block_id": "headline", "text": _plain(title, HEADER_TEXT_MAX)}]


def _status_context(result: BriefResult, state: BriefCardState, cites: _Citations) -> dict[str, Any]:
    severity = _severity(result, state)
    parts = [f"*Severity:* {escape(severity)} urgency" if severity else "*Severity:* unknown",
             f"*Status:* {escape(state.status_line)}" if state.status_line else "*Status:* triggered"]
    headline_refs = cites.refs(result.brief.headline.citations)
    if headline_refs:
        parts.append(f"*Sources:* {headline_refs}")
    return _context(" · ".join(parts), block_id="status")


def _causes(brief: Brief, cites: _Citations) -> list[dict[str, Any]]:
    if not brief.likely_causes:
        return [_section("*Likely causes*\nNo cause stands out in the evidence gathered.", "causes")]
    blocks = [_section("*Likely causes*", "causes")]
    for n, cause in enumerate(brief.likely_causes[:MAX_CAUSES], start=1):
        mark = _CONFIDENCE_MARK.get(cause.confidence, "")
        line = (f"{n}. {mark} *{cause.confidence.value} confidence* · _{cause.kind.value}_\n"
                f"{cites.claim(cause.claim)}")
        blocks.append(_section(line, f"cause-{n}", cites.first_link(cause.claim.citations)))
    hidden = len(brief.likely_causes) - MAX_CAUSES
    if hidden > 0:
        blocks.append(_context(f"{hidden} less likely cause{'s' if hidden > 1 else ''} not shown"))
    return blocks


def _changes(result: BriefResult, cites: _Citations) -> list[dict[str, Any]]:
    """What changed: the drafted timeline, then deploys and events it does not already cite."""
    lines = [f"`{entry.at:%H:%M}` {cites.claim(entry.claim)}" for entry in result.brief.timeline]
    cited = {cid for entry in result.brief.timeline for cid in entry.claim.citations}
    changes = sorted((e for e in result.evidence if e.kind in _CHANGE_KINDS and e.id not in cited),
                     key=lambda e: e.timestamp.timestamp() if e.timestamp else 0.0, reverse=True)
    for item in changes:
        at = f"`{item.timestamp:%H:%M}` " if item.timestamp else ""
        refs = cites.refs([item.id])
        lines.append(f"{at}{item.kind.value} · {link(item.link, item.title)}{' ' + refs if refs else ''}")
    if not lines:
        return []
    shown = lines[:MAX_CHANGES]
    if len(lines) > MAX_CHANGES:
        shown.append(f"_…and {len(lines) - MAX_CHANGES} more_")
    return [_section("*What changed* (UTC)\n" + "\n".join(shown), "changes")]


def _next_actions(brief: Brief, cites: _Citations) -> list[dict[str, Any]]:
    if not brief.next_actions:
        return []
    lines = [f"{n}. {cites.claim(action)}" for n, action in enumerate(brief.next_actions[:MAX_ACTIONS], 1)]
    more = cites.first_link([c for a in brief.next_actions for c in a.citations])
    return [_section("*Next actions*\n" + "\n".join(lines), "next-actions", more)]


def _gaps(result: BriefResult) -> list[dict[str, Any]]:
    gaps = list({(g.source, g.tool, g.reason): g for g in [*result.brief.gaps, *result.gaps]}.values())
    if not gaps:
        return []
    lines = [f"⚠️ *{escape(g.source.value)}*{f' (`{escape(g.tool)}`)' if g.tool else ''}: {escape(g.reason)}"
             for g in gaps]
    return [_section("*Source gaps*: this brief could not read\n" + "\n".join(lines), "gaps")]


def _progress(result: BriefResult) -> list[dict[str, Any]]:
    """An early version says what it is still waiting for; a later one says what it changed."""
    texts = []
    if result.pending:
        names = ", ".join(source_name(source) for source in result.pending)
        texts.append(f"⏳ *Pending: {escape(names)}*: posted with what is in; this message updates as they answer")
    if result.changes:
        texts.append(f"🔄 Updated: {escape(result.changes)}")
    return [_context(*texts, block_id="progress")] if texts else []


def _ticket(brief: Brief, state: BriefCardState) -> list[dict[str, Any]]:
    if state.ticket_key:
        key = link(state.ticket_url, state.ticket_key) if state.ticket_url else escape(state.ticket_key)
        who = ", ".join(user_mention(u) for u in (state.approved_by or "").split(",") if u.strip())
        when = f" at {state.approved_at:%H:%M} UTC" if state.approved_at else ""
        text = f"🎫 Jira ticket *{key}* filed" + (f", approved by {who}" if who else "") + when
        return [_section(text, "ticket")]
    if brief.ticket:
        proposal = brief.ticket
        return [_context(f"*Proposed ticket* ({escape(proposal.project)}, {escape(proposal.priority)}): "
                         f"{escape(proposal.summary)}", block_id="ticket")]
    return []


def _sources(result: BriefResult, cites: _Citations) -> list[dict[str, Any]]:
    lines = []
    for eid, number in list(cites.numbers.items())[:MAX_SOURCES]:
        item = cites.by_id.get(eid)
        if item is None:
            continue
        lines.append(f"[{number}] {link(item.link, item.title)} · _{escape(item.source.value)}_")
    hidden = len(cites.numbers) - MAX_SOURCES
    if hidden > 0:
        lines.append(f"_…and {hidden} more_")
    return [_context("*Sources*\n" + "\n".join(lines), block_id="sources")] if lines else []


def _chart(result: BriefResult, state: BriefCardState) -> list[dict[str, Any]]:
    alt = next((f"Chart of {e.title}" for e in result.evidence if e.kind == EvidenceKind.METRIC), "Metric chart")
    image: dict[str, Any] = {"type": "image", "block_id": "chart", "alt_text": alt[:2000],
                             "title": _plain("Metric around the alert (UTC)", 2000)}
    if state.chart_file_id:
        image["slack_file"] = {"id": state.chart_file_id}
    elif safe_url(state.chart_url):
        image["image_url"] = state.chart_url
    else:
        return []
    return [image]


def _footer(result: BriefResult, state: BriefCardState) -> dict[str, Any]:
    draft = result.brief.draft
    parts = [f"drafter {draft.drafter}"]
    if draft.model:
        parts.append(f"model {escape(draft.model)}")
    if draft.prompt_version:
        parts.append(f"prompt {escape(draft.prompt_version)}")
    parts.append(f"${draft.cost_usd:.4f}")
    if state.elapsed_s is not None:
        parts.append(f"{state.elapsed_s:.1f} s")
    parts.append(f"{len(result.evidence)} evidence items")
    parts.append(f"brief v{state.brief_version}")
    if draft.fallback_reason:
        parts.append(f"fell back: {escape(draft.fallback_reason)}")
    texts = [" · ".join(parts)]
    if result.brief.notes:
        texts.append(escape("; ".join(result.brief.notes)))
    return _context(*texts, block_id="footer")


def _actions(result: BriefResult, incident_key: str, state: BriefCardState) -> dict[str, Any]:
    value = json.dumps({"incident_key": incident_key, "brief_version": state.brief_version},
                       separators=(",", ":"))
    buttons = []
    # A filed ticket takes its button away, and so does a resolved incident (nothing to file).
    if result.brief.ticket and not state.ticket_key and state.status != "resolved":
        buttons.append(_button("Create Jira ticket", "ticket_create", value, style="primary"))
    buttons += [_button("Refresh", "brief_refresh", value), _button("👍", "feedback_up", value),
                _button("👎", "feedback_down", value)]
    return {"type": "actions", "block_id": "actions", "elements": buttons}


def brief_blocks(result: BriefResult, *, incident_key: str, state: BriefCardState) -> list[dict[str, Any]]:
    """The brief card: what a person reads at 3 a.m., top to bottom, with buttons last."""
    brief = result.brief
    cites = _Citations(brief, result.evidence)
    blocks: list[dict[str, Any]] = [
        *_header(result, state),
        _status_context(result, state, cites),
        *_progress(result),
        _section(f"*Impact*\n{cites.claim(brief.impact)}", "impact", cites.first_link(brief.impact.citations)),
        {"type": "divider"},
        *_causes(brief, cites),
        *_changes(result, cites),
        *_next_actions(brief, cites),
        *_gaps(result),
        *_chart(result, state),
        *_ticket(brief, state),
        *_sources(result, cites),
        _footer(result, state),
    ]
    actions = _actions(result, incident_key, state)
    return [*blocks[: MAX_BLOCKS - 1], actions]


def brief_fallback_text(result: BriefResult, status_line: str | None = None) -> str:
    """The notification and screen-reader text for the card: where the incident stands first,
    once it is past triggered, so a closed incident's brief never reads as a live one."""
    brief = result.brief
    text = f"Incident brief: {escape(brief.headline.text)}"
    if status_line:
        text = f"{escape(status_line)} · {text}"
    if brief.top_cause:
        text += f" · likely cause ({brief.top_cause.confidence.value}): {escape(brief.top_cause.claim.text)}"
    return truncate(text, SECTION_TEXT_MAX)


def placeholder_blocks(title: str) -> list[dict[str, Any]]:
    return [
        _section(f"⏳ Gathering evidence for *{escape(title)}*…", "placeholder"),
        _context("Reading Datadog, GitHub, Confluence, PagerDuty and Jira. This message updates in place."),
    ]


def failure_blocks(reason: str, *, title: str | None = None) -> list[dict[str, Any]]:
    about = f" for *{escape(title)}*" if title else ""
    return [
        _section(f"⚠️ Could not draft the brief{about}.\n```{escape(reason)}```", "failure"),
        _context("Say `refresh` in this thread to try again; the logs have the details."),
    ]


# --- modals ---------------------------------------------------------------------------------


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value[:75]}, "value": value[:150]}


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False,
           hint: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "optional": optional,
                             "label": {"type": "plain_text", "text": label}, "element": element}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint[:2000]}
    return block


def _jira_link_text(text: str) -> str:
    """A title safe inside Jira wiki markup ``[title|url]``."""
    return text.replace("|", "/").replace("[", "(").replace("]", ")").replace("\n", " ")


def ticket_description(proposal: TicketProposal, evidence: list[Evidence]) -> str:
    """The proposal's description followed by its citations as Jira links, within the modal's limit."""
    by_id = {item.id: item for item in evidence}
    lines = []
    for n, cid in enumerate(dict.fromkeys(proposal.citations), start=1):
        item = by_id.get(cid)
        if item is None:
            continue
        title = _jira_link_text(item.title)
        url = safe_url(item.link)
        lines.append(f"[{n}] [{title}|{item.link}]" if url else f"[{n}] {title}")
    sources = ("\n\nEvidence:\n" + "\n".join(lines)) if lines else ""
    room = MODAL_TEXT_MAX - len(sources)
    body = proposal.description if len(proposal.description) <= room else proposal.description[: room - 1] + "…"
    return (body + sources)[:MODAL_TEXT_MAX]


def ticket_modal(proposal: TicketProposal, *, evidence: list[Evidence], allowed_projects: list[str],
                 approval_id: str, dry_run: bool) -> dict[str, Any]:
    """The approval modal, prefilled from the proposal and editable; submitting files (or previews).
    Its metadata names the approval only: where the card lives comes from the store, never from
    what the client sends back."""
    if allowed_projects:
        project: dict[str, Any] = {"type": "static_select", "action_id": "value",
                                   "options": [_option(p) for p in allowed_projects[:100]],
                                   "placeholder": {"type": "plain_text", "text": "Choose a project"}}
        if proposal.project in allowed_projects:
            project["initial_option"] = _option(proposal.project)
    else:
        project = {"type": "plain_text_input", "action_id": "value", "initial_value": proposal.project}
    summary = {"type": "plain_text_input", "action_id": "value", "max_length": JIRA_SUMMARY_MAX,
               "initial_value": proposal.summary[:JIRA_SUMMARY_MAX]}
    description = {"type": "plain_text_input", "action_id": "value", "multiline": True,
                   "max_length": MODAL_TEXT_MAX, "initial_value": ticket_description(proposal, evidence)}
    priority = {"type": "static_select", "action_id": "value", "options": [_option(p) for p in PRIORITIES],
                "initial_option": _option(proposal.priority)}
    mode = ("*Dry run*: submitting shows the exact request that would be sent. Nothing is sent to Jira."
            if dry_run else "Submitting files this ticket in Jira once, as the bot's Jira user.")
    metadata = json.dumps({"approval_id": approval_id}, separators=(",", ":"))
    return {
        "type": "modal", "callback_id": "ticket_submit", "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Create Jira ticket"},
        "submit": {"type": "plain_text", "text": "Preview" if dry_run else "File ticket"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _context(mode, block_id="mode"),
            _input("project", "Project", project,
                   hint=None if proposal.project in allowed_projects else
                   f"The proposed project {proposal.project} is not allowed here."),
            _input("summary", "Summary", summary),
            _input("description", "Description", description, hint="Citations are links to the evidence."),
            _input("priority", "Priority", priority),
        ],
    }


def dry_run_preview_blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The exact request a dry run would have sent, shown to the approver only."""
    shown = escape(json.dumps(request, indent=2, ensure_ascii=False, default=str))
    fence = "```"
    body = truncate(shown, SECTION_TEXT_MAX - 2 * len(fence) - 1)
    return [
        _section("🧪 *Dry run*: this is the request that would be sent to Jira. Nothing was sent.", "dry-run"),
        _section(f"{fence}{body}{fence}", "dry-run-request"),
    ]


def feedback_reason_modal(*, incident_key: str, brief_version: int) -> dict[str, Any]:
    """👎's follow-up: an optional reason, stored with the vote."""
    reason = {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 500,
              "placeholder": {"type": "plain_text", "text": "Wrong cause, missing source, noisy…"}}
    return {
        "type": "modal", "callback_id": "feedback_reason",
        "private_metadata": json.dumps({"incident_key": incident_key, "brief_version": brief_version},
                                       separators=(",", ":")),
        "title": {"type": "plain_text", "text": "What was wrong?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [_input("reason", "Reason (optional)", reason, optional=True)],
    }
