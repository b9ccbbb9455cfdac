"""`incident-brief eval --drafter llm --canary`: the suite on the baseline routes and on the
candidates, side by side, with the simulated-model caveat; bad input exits 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from evals.canary import SIMULATED, main
from tests.helpers.scenarios import SCENARIOS
from tests.helpers.telemetry import sandbox_model

CANDIDATE = "anthropic:claude-haiku-4-5@20251001"  # priced by default: no price to add


def test_the_compare_shows_both_sides_and_says_the_model_is_simulated(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(SCENARIOS / "checkout-5xx-after-deploy.yaml", suite)
    console = Console(record=True, width=200)
    report = tmp_path / "compare.json"
    with sandbox_model():
        code = main(["--scenarios", str(suite), "--drafter", "llm", "--candidate", f"brief={CANDIDATE}",
                     "--json", str(report)], console=console)
    text = console.export_text()
    assert CANDIDATE in text
    assert "cause_kind_correct" in text
    assert "validation failures" in text
    assert "simulated" in text
    written = json.loads(report.read_text())
    assert written["simulated_model"] is True
    assert written["note"] == SIMULATED
    assert written["candidates"] == {"brief": CANDIDATE}
    assert written["model_measures"]["baseline"]["requests"] >= 1
    assert written["model_measures"]["canary"]["requests"] >= 1
    # The exit code is the gate's, for both sides at once (the simulated model misses some
    # must_mention strings of this scenario on either side: that is the suite's finding).
    assert code == (0 if written["baseline"]["passed"] and written["canary"]["passed"] else 1), text
    assert written["passed"] == (code == 0)


@pytest.mark.parametrize(("argv", "message"), [
    (["--candidate", f"brief={CANDIDATE}"], "use it with --drafter llm"),
    (["--drafter", "llm"], "no canary to compare"),
    (["--drafter", "llm", "--candidate", f"summary={CANDIDATE}"], "unknown route(s) summary"),
    (["--drafter", "llm", "--candidate", "brief"], "expected ROUTE=provider:model@version"),
])
def test_bad_input_exits_2_and_says_why(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IB_LLM__CANARY__ROUTES", raising=False)
    assert main(argv) == 2
    assert message in " ".join(capsys.readouterr().err.split())
