"""The exact Block Kit payload per bundled scenario is pinned as a reviewed snapshot.

Regenerate after an intended change with ``UPDATE_SNAPSHOTS=1 uv run pytest
tests/slack/test_block_snapshots.py`` (or ``incident-brief draft --scenario F --blocks OUT``) and
review the diff like code: it is what on-call engineers will read. A missing snapshot is written
and the test fails, so a new scenario's payload is reviewed before it is pinned.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from sandbox.harness import run_scenario, scenario_payload
from sandbox.scenario import bundled_scenarios_dir, load_scenario

SNAPSHOTS = Path(__file__).parent / "snapshots" / "blocks"
SCENARIOS = sorted(bundled_scenarios_dir().glob("*.yaml"))
MAX_BLOCKS = 50
MAX_TEXT = 3000
# Slack markup that outside text must never produce: broadcasts, user/channel mentions, and
# raw angle brackets or ampersands that are not part of our own links or entities.
_SPECIAL = re.compile(r"<!(?:channel|here|everyone)|<@[UW]|<#C|@(?:channel|here|everyone)\b")
_OUR_LINK = re.compile(r"<https?://[^\s<>|]+\|[^<>]*>|<https?://[^\s<>|]+>")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


def _texts(node: Any) -> list[tuple[str, str]]:
    """Every (type, text) pair of text objects in a block tree."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if node.get("type") in {"mrkdwn", "plain_text"} and isinstance(node.get("text"), str):
            found.append((node["type"], node["text"]))
        for value in node.values():
            found.extend(_texts(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_texts(value))
    return found


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_block_payload_matches_its_snapshot_and_slack_limits(path: Path) -> None:
    scenario = load_scenario(path)
    run = await run_scenario(scenario)
    payload = scenario_payload(run.result, scenario)

    blocks = payload["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    for kind, text in _texts(blocks):
        assert len(text) <= MAX_TEXT, f"{kind} text of {len(text)} characters"
        assert not _SPECIAL.search(text), f"unescaped mention or broadcast in {text!r}"
        if kind == "mrkdwn":
            bare = _ENTITY.sub("", _OUR_LINK.sub("", text))
            assert not re.search(r"[<>]", bare), f"raw angle bracket in {text!r}"
    for planted in scenario.expect.must_not_mention:
        assert planted not in json.dumps(payload, ensure_ascii=False)

    snapshot = SNAPSHOTS / f"{scenario.id}.json"
    rendered = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if not snapshot.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"missing snapshot {snapshot.name}: generate it locally and commit it")
        # Compared with itself it would pass, checking nothing: write it, and fail until reviewed.
        snapshot.write_text(rendered)
        pytest.fail(f"missing snapshot {snapshot.name}: written now; review it, commit it and run again")
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(rendered)
    assert rendered == snapshot.read_text(), (
        f"the Block Kit payload for {scenario.id} changed: review it and regenerate the snapshot "
        "with UPDATE_SNAPSHOTS=1")
