"""`make demo`'s command: one incident end to end in the sandbox. By default the offline drafter
drafts (no model, no credentials); `--model` drafts with the sandbox's simulated model."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from bot.app.demo import run_demo
from sandbox.scenario import Scenario


@pytest.mark.parametrize(("model", "says"), [
    (False, "drafted offline, no model involved"),
    (True, "drafted through the gateway by the sandbox's simulated model"),
])
async def test_the_demo_drafts_offline_unless_the_simulated_model_is_asked_for(
        checkout: Scenario, model: bool, says: str) -> None:
    out = io.StringIO()
    assert await run_demo(checkout, Console(file=out, width=200), model=model) == 0
    text = out.getvalue()
    assert says in text
    assert "ticket filed: CHK-101" in text
