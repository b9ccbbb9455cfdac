"""`LlmDrafter`: the brief through the gateway, and the offline drafter when the model path fails.

The model answers as the typed `Brief`. Before it is accepted it is checked against the
evidence that was actually sent (every claim cited, every id known, a deploy or config cause
resting on a change, the ticket in the service's own project); a failed check is sent back
once for repair. Whatever happens, the brief says how it was drafted (`DraftInfo`) and, on a
fallback, why, in its notes.
"""

from __future__ import annotations

import asyncio

from bot.analyse.analyser import analyse
from bot.core.audit import AuditSink, MemoryAudit
from bot.core.config import LlmSettings
from bot.core.keys import incident_key
from bot.core.models import (
    Alert,
    Brief,
    CauseKind,
    DraftInfo,
    Evidence,
    EvidenceKind,
    ServiceEntry,
    SourceGap,
    TimeWindow,
)
from bot.core.policy import Policy
from bot.draft.analysis_note import analysis_notes, expand_analysis
from bot.draft.calibration import calibrate
from bot.draft.citations import check_citations
from bot.draft.drafter import Drafter, OfflineDrafter
from bot.draft.prompts import render_brief_prompt
from bot.gateway.canary import CanaryStates
from bot.gateway.gateway import Gateway, GatewayResult, GatewayRules
from bot.gateway.metered import Caller, StepCounter
from bot.gateway.store import GatewayStore, MemoryGatewayStore
from bot.gateway.tickets import propose_ticket, ticket_problems

CHANGE_KINDS = {EvidenceKind.DEPLOY, EvidenceKind.EVENT}


def brief_problems(brief: Brief, sent: dict[str, EvidenceKind], jira_project: str | None) -> list[str]:
    """What is wrong with a model's brief, judged only against the evidence it was shown: the
    citation check every brief passes (`bot.draft.citations`), a deploy or config cause resting
    on a change, and the ticket's own rules."""
    problems = list(check_citations(brief, sent).claim_problems)
    for cause in brief.likely_causes:
        if cause.kind in {CauseKind.DEPLOY, CauseKind.CONFIG} and not any(
                sent.get(cid) in CHANGE_KINDS for cid in cause.claim.citations):
            problems.append(f"a {cause.kind.value} cause must cite a deploy or change event, "
                            f"not only {cause.claim.citations}")
    if brief.ticket is not None:
        problems += ticket_problems(brief.ticket, sent, jira_project)
    return problems


class LlmDrafter:
    """The `bot.draft.drafter.Drafter` protocol over the gateway's ``brief`` route."""

    def __init__(self, gateway: Gateway, *, workspace: str, fallback: Drafter | None = None) -> None:
        self.gateway = gateway
        self.workspace = workspace  # the default: for alerts that carry no Slack team
        self.fallback: Drafter = fallback or OfflineDrafter()
        self.last_result: GatewayResult[Brief] | None = None  # for the CLI and tests to inspect

    async def draft(self, alert: Alert, service: ServiceEntry, window: TimeWindow,
                    evidence: list[Evidence], gaps: list[SourceGap], *, key: str | None = None) -> Brief:
        by_id = {item.id: item.kind for item in evidence}
        # The offline analysis goes to the model as evidence it may cite, so the model improves
        # on the offline brief instead of starting over (`bot.draft.analysis_note`).
        # The analysis is CPU work: off the event loop that also acknowledges webhooks.
        signals = await asyncio.to_thread(analyse, alert, service, window, evidence)
        candidates = analysis_notes(signals, known=by_id)
        prompt = render_brief_prompt(alert, service, evidence, gaps, analysis=candidates,
                                     budget_tokens=self.gateway.settings.evidence_token_budget)
        # What the model may cite: the blocks it was shown, and through a note the evidence that
        # note rests on (gathered evidence, if cut from the prompt for the budget).
        sent = {cid: by_id[cid] for cid in prompt.packed.included}
        sent |= {cid: by_id[cid] for note in candidates for cid in note.rests_on}
        # The flow passes the incident key its tool calls are filed under; the model calls join them.
        # The ledger charges the person who asked and their Slack team (a PagerDuty trigger has
        # neither: the configured default workspace pays).
        caller = Caller(brief_key=key or incident_key(alert), user=alert.requested_by,
                        workspace=alert.workspace or self.workspace)
        # One step counter for the brief and its ticket: the per-brief cap covers both.
        steps = StepCounter(self.gateway.rules.max_model_calls_per_brief)
        result = await self.gateway.run(
            "brief", prompt, Brief, caller=caller, steps=steps,
            validate=lambda brief: brief_problems(expand_analysis(brief, candidates), sent, service.jira_project))
        self.last_result = result
        notes = result.notes()
        if cut := prompt.packed.cut_note():
            notes.append(cut)
        info = DraftInfo(drafter="llm", model=result.model, prompt_version=result.prompt_version,
                         input_tokens=result.input_tokens, output_tokens=result.output_tokens,
                         cost_usd=round(result.cost_usd, 6), cache_hit=result.cache_hit)
        if result.output is not None:
            # The model's confidence is held to what the analysis shows (lowered only, and said).
            calibrated = calibrate(expand_analysis(result.output, candidates), signals)
            answer = calibrated.brief
            notes += calibrated.notes
            drafted = await propose_ticket(self.gateway, answer, alert=alert, service=service,
                                           evidence=evidence, caller=caller, steps=steps)
            if (spent := drafted.result) is not None:
                info = info.model_copy(update={
                    "input_tokens": info.input_tokens + spent.input_tokens,
                    "output_tokens": info.output_tokens + spent.output_tokens,
                    "cost_usd": round(result.cost_usd + spent.cost_usd, 6)})
            return answer.model_copy(update={"gaps": gaps, "draft": info, "ticket": drafted.ticket,
                                                    "notes": [*notes, *drafted.notes]})
        reason = result.fallback_reason or "the model path failed"
        offline = await self.fallback.draft(alert, service, window, evidence, gaps, key=key)
        info = info.model_copy(update={"drafter": "offline", "fallback_reason": reason})
        return offline.model_copy(update={
            "draft": info,
            "notes": [*offline.notes, f"Drafted without a model (offline drafter): {reason}", *notes],
        })


def llm_drafter(settings: LlmSettings, policy: Policy, *, store: GatewayStore | None = None,
                audit: AuditSink | None = None, canary_states: CanaryStates | None = None) -> LlmDrafter:
    """The model-backed drafter for these model settings under this policy's rules;
    `canary_states` is the store's record of switched-off canaries (`Runtime.canaries`)."""
    gateway = Gateway(settings, store=store or MemoryGatewayStore(), audit=audit or MemoryAudit(),
                      rules=GatewayRules.from_policy(policy), canary_states=canary_states)
    return LlmDrafter(gateway, workspace=settings.workspace)


def describe_drafting(settings: LlmSettings) -> str:
    """One sentence on how briefs will be drafted with these settings: said once at start-up and
    by ``incident-brief config``."""
    brief = settings.routes["brief"]
    provider = settings.provider_of("brief")
    if not settings.enabled:
        return "briefs are drafted offline: the model is switched off (IB_LLM__ENABLED=false)"
    if not settings.drafts_with_model():
        variable = f"IB_LLM__{provider.upper()}__API_KEY"
        return (f"briefs are drafted offline: no model provider is configured (set {variable}, or "
                f"IB_LLM__{provider.upper()}__BASE_URL for a compatible server, to draft with {brief})")
    endpoint = (settings.provider_settings(provider) or settings.openai).base_url or f"{provider}'s public API"
    fallbacks = ", ".join(settings.fallbacks) or "none"
    return (f"briefs are drafted by {brief} at {endpoint} through the gateway (fallbacks: {fallbacks}; "
            "the offline drafter when every model fails or a budget is spent)")
