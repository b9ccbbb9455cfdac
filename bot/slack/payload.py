"""The exact `chat.update` payload the bot posts for a brief, as a reviewable file.

`incident-brief draft --blocks OUT.json` writes it and the checked-in snapshots under
`tests/snapshots/blocks/` pin it, so a change to the message is a visible diff in review.
"""

from __future__ import annotations

import json
from typing import Any

from bot.core.models import BriefResult
from bot.slack.blocks import BriefCardState, brief_blocks, brief_fallback_text


def brief_payload(result: BriefResult, *, incident_key: str, channel: str) -> dict[str, Any]:
    """The first version of a brief's card, as posted to `channel` for the incident `incident_key`."""
    return {
        "channel": channel,
        "text": brief_fallback_text(result),
        "blocks": brief_blocks(result, incident_key=incident_key, state=BriefCardState(brief_version=1)),
    }


def payload_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False)
