"""What a later version of a brief changed against the one it replaces, in one line for the
card: which pending sources answered (and what they added) or failed, and whether the top cause
moved ("GitHub answered: deploy v2.3.1 added; top cause unchanged"). Pure."""

from __future__ import annotations

from bot.core.models import BriefResult, LikelyCause, Source

NAMES = {Source.DATADOG: "Datadog", Source.GITHUB: "GitHub", Source.CONFLUENCE: "Confluence",
         Source.PAGERDUTY: "PagerDuty", Source.JIRA: "Jira", Source.SLACK: "Slack", Source.LLM: "the model"}
MAX_TITLES = 2
TITLE_CHARS = 60


def source_name(source: Source) -> str:
    return NAMES.get(source, source.value)


def _clip(text: str) -> str:
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _cause_id(cause: LikelyCause | None) -> tuple[str, tuple[str, ...]] | None:
    """A cause is the same when its kind and the evidence it rests on are: the wording of two
    drafters (offline, model) may differ for the same cause."""
    return None if cause is None else (cause.kind.value, tuple(cause.claim.citations[:1]))


def _cause_line(before: BriefResult, after: BriefResult) -> str:
    old, new = before.brief.top_cause, after.brief.top_cause
    if _cause_id(old) == _cause_id(new):
        return "top cause unchanged"
    if new is None:
        return "top cause withdrawn"
    was = f" (was {old.kind.value})" if old is not None else ""
    return f"top cause now {new.kind.value}: {_clip(new.claim.text)}{was}"


def _source_line(source: Source, before: BriefResult, after: BriefResult) -> str:
    name = source_name(source)
    if source == Source.LLM:
        return f"{name} drafted this version (the first was drafted offline)"
    failed = [gap for gap in after.gaps if gap.source == source]
    if failed:
        return f"{name} did not answer ({_clip(failed[0].reason)})"
    known = {item.id for item in before.evidence}
    added = [item for item in after.evidence if item.source == source and item.id not in known]
    if not added:
        return f"{name} answered: nothing new"
    titles = ", ".join(_clip(item.title) for item in added[:MAX_TITLES])
    more = f" and {len(added) - MAX_TITLES} more" if len(added) > MAX_TITLES else ""
    return f"{name} answered: {titles}{more} added"


def what_changed(before: BriefResult, after: BriefResult) -> str:
    parts = [_source_line(source, before, after) for source in before.pending]
    parts.append(_cause_line(before, after))
    return "; ".join(parts)
