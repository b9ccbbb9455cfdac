"""The exact `chat.update` payload the bot posts for a brief, as a reviewable file.

`incident-brief draft --blocks OUT.json` writes it and the checked-in snapshots under
`tests/snapshots/blocks/` pin it, so a change to the message is a visible diff in review.
"""

from __future__ import annotations

import json
from typing import Any

from bot.models import BriefResult
from bot.scenario import Scenario
from bot.slack.blocks import BriefCardState, brief_blocks, brief_fallback_text


def scenario_incident_key(scenario: Scenario) -> str:
    alert = scenario.alert
    if alert.incident_id:
        return f"pd:{alert.incident_id}"
    return f"slack:{scenario.alert.service}"


def brief_payload(result: BriefResult, scenario: Scenario) -> dict[str, Any]:
    entries = {entry.name: entry for entry in scenario.service_entries()}
    entry = entries.get(scenario.alert.service)
    state = BriefCardState(brief_version=1)
    return {
        "channel": (entry.slack_channel if entry else None) or "C0INCIDENT",
        "text": brief_fallback_text(result),
        "blocks": brief_blocks(result, incident_key=scenario_incident_key(scenario), state=state),
    }


def brief_payload_json(result: BriefResult, scenario: Scenario) -> str:
    return json.dumps(brief_payload(result, scenario), indent=2, ensure_ascii=False, sort_keys=False)
