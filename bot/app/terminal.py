"""A brief printed for a person at a terminal: the same content as the Slack card."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.core.audit import MemoryAudit
from bot.core.models import BriefResult, Claim


def _cite(claim: Claim, numbers: dict[str, int]) -> str:
    refs = "".join(f"[{numbers[c]}]" for c in claim.citations if c in numbers)
    return f"{escape(claim.text)} [dim]{refs}[/dim]" if refs else escape(claim.text)


def render_brief(result: BriefResult, console: Console, *, title: str = "Incident brief") -> None:
    brief = result.brief
    numbers = {eid: n for n, eid in enumerate(brief.cited_ids(), start=1)}
    by_id = {e.id: e for e in result.evidence}
    parts: list[str] = [f"[bold]{_cite(brief.headline, numbers)}[/bold]", "",
                        f"[bold]Impact[/bold]  {_cite(brief.impact, numbers)}"]
    if brief.likely_causes:
        parts += ["", "[bold]Likely causes[/bold]"]
        parts += [f"  • ({c.confidence.value}, {c.kind.value}) {_cite(c.claim, numbers)}"
                  for c in brief.likely_causes]
    if brief.timeline:
        parts += ["", "[bold]Timeline (UTC)[/bold]"]
        parts += [f"  {t.at:%H:%M}  {_cite(t.claim, numbers)}" for t in brief.timeline]
    if brief.next_actions:
        parts += ["", "[bold]Next actions[/bold]"]
        parts += [f"  {i}. {_cite(a, numbers)}" for i, a in enumerate(brief.next_actions, start=1)]
    if brief.gaps:
        parts += ["", "[bold yellow]Source gaps[/bold yellow]"]
        parts += [f"  ⚠ {g.source.value}{f' ({g.tool})' if g.tool else ''}: {escape(g.reason)}"
                  for g in brief.gaps]
    if brief.ticket:
        parts += ["", f"[bold]Proposed ticket[/bold]  {brief.ticket.project}: {escape(brief.ticket.summary)}"
                      f" ({brief.ticket.priority})"]
    if brief.notes:
        parts += ["", "[dim]" + escape("; ".join(brief.notes)) + "[/dim]"]
    sources = ["[bold]Sources[/bold]"]
    for eid, n in numbers.items():
        item = by_id.get(eid)
        if item is None:
            continue
        link = f"\n      [link={item.link}]{escape(item.link)}[/link]" if item.link else ""
        sources.append(f"  [{n}] {escape(item.title)} [dim]({item.source.value}, {eid})[/dim]{link}")
    draft = brief.draft
    footer = Text(f"drafter: {draft.drafter}"
                  + (f" · model {draft.model}" if draft.model else "")
                  + (f" · prompt {draft.prompt_version}" if draft.prompt_version else "")
                  + (f" · ${draft.cost_usd:.4f}" if draft.cost_usd else "")
                  + f" · {len(result.evidence)} evidence items", style="dim")
    console.print(Panel(Group("\n".join(parts), "", "\n".join(sources), footer), title=title, expand=True))


def render_audit(audit: MemoryAudit, console: Console) -> None:
    """The audit trail of one brief: every tool call with its policy decision, every model call,
    and the citation check."""
    tools = Table(title="Audit · tool calls", show_lines=False)
    for column in ("tool", "decision", "outcome", "items", "ms", "detail"):
        tools.add_column(column, overflow="fold")
    for row in audit.tool_calls:
        tools.add_row(row.tool, row.decision, row.outcome, str(row.evidence_count), f"{row.latency_ms:.0f}",
                      row.detail[:80])
    console.print(tools)
    if audit.model_calls:
        models = Table(title="Audit · model calls")
        for column in ("task", "model", "prompt", "tokens in/out", "cost $", "ms", "cache", "outcome"):
            models.add_column(column, overflow="fold")
        for call in audit.model_calls:
            models.add_row(call.task, call.model, call.prompt_version or "",
                           f"{call.input_tokens}/{call.output_tokens}", f"{call.cost_usd:.5f}",
                           f"{call.latency_ms:.0f}", "hit" if call.cache_hit else "miss", call.outcome)
        console.print(models)
    else:
        console.print("[dim]no model calls (offline drafter)[/dim]")
    for check in audit.brief_checks:
        drafter = check.drafter + (f" ({check.model})" if check.model else "")
        line = (f"citation check · {drafter} · {check.outcome} · "
                f"{check.coverage:.0%} of claims cited valid evidence")
        console.print(escape(line))
        for problem in check.problems:
            console.print(escape(f"  - {problem}"), style="yellow")
