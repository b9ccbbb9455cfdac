"""Prompt templates (files in ``prompts/``) and evidence packing.

A template's version is derived from its content (``brief@<sha8>`` over the system prompt and
the task template together), so a cached answer or a recorded brief always names the exact
words the model saw. Evidence is ranked by relevance, packed under a token budget and quoted
as data between delimiters that evidence text cannot forge; whatever does not fit is listed
in the prompt and returned, never dropped silently.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from string import Template

from bot.core.models import Alert, Evidence, EvidenceKind, ServiceEntry, SourceGap
from bot.draft.analysis_note import ANALYSIS_KIND, ANALYSIS_SOURCE, AnalysisNote

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
CHARS_PER_TOKEN = 4  # a conservative estimate; exact counts come from the provider's usage
BLOCK_OPEN = "<<<EVIDENCE"
BLOCK_CLOSE = "<<<END EVIDENCE>>>"

# How much a kind of evidence tends to explain an incident, before timing and wording.
KIND_WEIGHT: dict[EvidenceKind, float] = {
    EvidenceKind.DEPLOY: 3.0,
    EvidenceKind.LOG_PATTERN: 3.0,
    EvidenceKind.MONITOR: 2.5,
    EvidenceKind.EVENT: 2.5,
    EvidenceKind.METRIC: 2.0,
    EvidenceKind.RUNBOOK: 2.0,
    EvidenceKind.INCIDENT: 1.5,
    EvidenceKind.PAST_INCIDENT: 1.0,
    EvidenceKind.JIRA_ISSUE: 1.0,
    EvidenceKind.DASHBOARD: 0.5,
}
_WORD = re.compile(r"[a-z0-9]{3,}")


def estimate_tokens(text: str) -> int:
    """Tokens before a call, without a tokenizer download (tiktoken fails offline)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    text: str
    version: str  # name@sha8 of the template together with the system prompt

    def render(self, **values: str) -> str:
        return Template(self.text).substitute(values)


@cache
def system_prompt() -> str:
    return (PROMPTS_DIR / "system.md").read_text()


@cache
def load_template(name: str) -> PromptTemplate:
    """``brief`` or ``ticket``: the file ``prompts/<name>.md`` with its content version."""
    text = (PROMPTS_DIR / f"{name}.md").read_text()
    digest = hashlib.sha256(f"{system_prompt()}\x00{text}".encode()).hexdigest()[:8]
    return PromptTemplate(name=name, text=text, version=f"{name}@{digest}")


@dataclass(frozen=True)
class CutEvidence:
    id: str
    title: str
    tokens: int


@dataclass(frozen=True)
class PackedEvidence:
    text: str  # the blocks, most relevant first
    included: tuple[str, ...]
    cut: tuple[CutEvidence, ...]
    tokens: int

    def cut_note(self) -> str | None:
        if not self.cut:
            return None
        names = ", ".join(item.id for item in self.cut)
        return f"{len(self.cut)} evidence item(s) did not fit the prompt budget and were not sent: {names}"


def relevance(item: Evidence, alert: Alert) -> float:
    """Kind weight, plus closeness to the alert time, plus words shared with the alert title."""
    score = KIND_WEIGHT.get(item.kind, 1.0)
    if item.timestamp is not None:
        minutes = abs((alert.triggered_at - item.timestamp).total_seconds()) / 60
        score += 2.0 / (1.0 + minutes / 30)
    alert_words = set(_WORD.findall(f"{alert.title} {alert.service}".lower()))
    item_words = set(_WORD.findall(f"{item.title} {item.excerpt}".lower()))
    score += 0.5 * min(len(alert_words & item_words), 4)
    return score


def rank_evidence(evidence: list[Evidence], alert: Alert) -> list[Evidence]:
    return sorted(evidence, key=lambda item: (-relevance(item, alert), item.id))


def quote_as_data(text: str) -> str:
    """Evidence text cannot open or close a block: the delimiter characters are replaced."""
    return text.replace("<<<", "‹‹‹").replace(">>>", "›››")


def evidence_block(item: Evidence) -> str:
    at = f" at={_iso(item.timestamp)}" if item.timestamp else ""
    header = f"{BLOCK_OPEN} id={item.id} kind={item.kind.value} source={item.source.value}{at}>>>"
    body = f"title: {quote_as_data(item.title)}\n{quote_as_data(item.excerpt)}"
    return f"{header}\n{body}\n{BLOCK_CLOSE}"


def analysis_block(note: AnalysisNote) -> str:
    """A note of the offline analysis in the evidence blocks' own format: data, quoted alike."""
    header = f"{BLOCK_OPEN} id={note.id} kind={ANALYSIS_KIND} source={ANALYSIS_SOURCE}>>>"
    return f"{header}\ntitle: {quote_as_data(note.title)}\n{quote_as_data(note.body)}\n{BLOCK_CLOSE}"


def pack_evidence(evidence: list[Evidence], alert: Alert, budget_tokens: int) -> PackedEvidence:
    """Most relevant first; a block that does not fit is cut (and listed), a smaller later one
    may still fit."""
    blocks: list[str] = []
    included: list[str] = []
    cut: list[CutEvidence] = []
    used = 0
    for item in rank_evidence(evidence, alert):
        block = evidence_block(item)
        cost = estimate_tokens(block) + 1
        if used + cost > budget_tokens:
            cut.append(CutEvidence(item.id, item.title, cost))
            continue
        blocks.append(block)
        included.append(item.id)
        used += cost
    return PackedEvidence("\n".join(blocks), tuple(included), tuple(cut), used)


@dataclass(frozen=True)
class RenderedPrompt:
    template: PromptTemplate
    system: str
    user: str
    packed: PackedEvidence
    analysis: tuple[str, ...] = ()  # the ids of the analysis notes sent (each rests on gathered evidence)

    @property
    def version(self) -> str:
        return self.template.version

    @property
    def digest(self) -> str:
        """What the cache keys on besides model and version: the packed request itself."""
        return hashlib.sha256(self.user.encode()).hexdigest()


def render_brief_prompt(alert: Alert, service: ServiceEntry, evidence: list[Evidence],
                        gaps: list[SourceGap], *, budget_tokens: int,
                        analysis: Sequence[AnalysisNote] = ()) -> RenderedPrompt:
    """The brief request. Nothing in it changes on a Refresh unless the evidence does (no
    "now"), so an unchanged Refresh hits the cache. The offline analysis's candidates come
    first and are paid for out of the same budget: they are short, and they are what the
    model should build on."""
    template = load_template("brief")
    notes = [analysis_block(note) for note in analysis]
    notes_tokens = sum(estimate_tokens(block) + 1 for block in notes)
    packed = pack_evidence(evidence, alert, max(budget_tokens - notes_tokens, 0))
    gap_lines = [f"- {gap.source.value}{f' ({gap.tool})' if gap.tool else ''}: {quote_as_data(gap.reason)}"
                 for gap in gaps]
    cut_lines = [f"- {item.id}: {quote_as_data(item.title)}" for item in packed.cut]
    user = template.render(
        alert_title=quote_as_data(alert.title),
        service=service.name,
        team=service.team or "unknown",
        alert_at=_iso(alert.triggered_at),
        urgency=alert.urgency,
        jira_project=service.jira_project or "none",
        gaps="\n".join(gap_lines) or "- none",
        analysis="\n".join(notes) or "(no analysis)",
        evidence=packed.text or "(no evidence was gathered)",
        cut="\n".join(cut_lines) or "- none",
    )
    return RenderedPrompt(template=template, system=system_prompt(), user=user, packed=packed,
                          analysis=tuple(note.id for note in analysis))


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _one_line(text: str) -> str:
    """Model-written text placed on a header line cannot add header lines of its own."""
    return " ".join(text.split())


def render_ticket_prompt(service: ServiceEntry, headline: str, top_cause: str, evidence: list[Evidence],
                         alert: Alert, *, budget_tokens: int) -> RenderedPrompt:
    """The ticket request (a proposal a person reviews), under the same packing rules."""
    template = load_template("ticket")
    packed = pack_evidence(evidence, alert, budget_tokens)
    user = template.render(
        service=service.name,
        jira_project=service.jira_project or "none",
        headline=quote_as_data(_one_line(headline)),
        top_cause=quote_as_data(_one_line(top_cause)),
        evidence=packed.text or "(no evidence was gathered)",
    )
    return RenderedPrompt(template=template, system=system_prompt(), user=user, packed=packed)
