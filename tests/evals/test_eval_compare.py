"""Two scenario sets in one run, and `eval --compare`: a scenario that passed a scorer and now
fails it is a regression (exit 1), an improvement is not, the tolerance lets a small drop of a
ratio through, and a report that does not load is bad input (exit 2)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from bot.core.models import CauseKind, Claim, Confidence, LikelyCause
from evals.report import EvalReport
from evals.runner import EvalInputError, main, run_eval
from evals.thresholds import GateThresholds, Thresholds
from sandbox.scenario import Scenario, bundled_scenarios_dir
from tests.evals.test_eval_runner import Run, checkout_doc, renamed
from tests.helpers.briefs import FLAG, NPE, good_brief, result

GATE = GateThresholds({"dev": Thresholds({"cause_kind_correct": 1.0}), "heldout": Thresholds({"cause_correct": 0.5})})


def folder(root: Path, name: str, *docs: dict[str, Any]) -> Path:
    out = root / name
    out.mkdir(parents=True)
    for doc in docs:
        (out / f"{doc['id']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def two_sets(tmp_path: Path) -> list[tuple[str, str | Path]]:
    dev = folder(tmp_path, "dev", checkout_doc(), renamed(checkout_doc(), "second"))
    held = folder(tmp_path / "dev", "heldout", renamed(checkout_doc(), "held-one"), renamed(checkout_doc(), "held-two"))
    return [("dev", dev), ("heldout", held)]


def wrong_for(*ids: str) -> Any:
    async def task(scenario: Scenario) -> Run:
        if scenario.id in ids:
            wrong = LikelyCause(kind=CauseKind.CONFIG, confidence=Confidence.HIGH,
                                claim=Claim(text="the flag did it", citations=[FLAG.id]))
            return Run(result(good_brief(likely_causes=[wrong])))
        return Run(result())
    return task


def report_of(root: Path, *wrong: str) -> EvalReport:
    return run_eval(two_sets(root), thresholds=GATE, task=wrong_for(*wrong))


def write(report: EvalReport, path: Path) -> Path:
    path.write_text(json.dumps(report.to_json()))
    return path


def run_main(*argv: str) -> tuple[int, str]:
    buffer = io.StringIO()
    code = main(list(argv), console=Console(file=buffer, width=100, no_color=True))
    return code, buffer.getvalue()


def test_both_sets_are_scored_and_gated_apart(tmp_path: Path) -> None:
    report = run_eval(two_sets(tmp_path), thresholds=GATE, task=wrong_for("held-one"))
    dev, held = report.sets
    assert (dev.name, len(dev.scenarios), dev.passed) == ("dev", 2, True)
    assert (held.name, len(held.scenarios)) == ("heldout", 2)
    assert held.passed, "cause_correct 0.5 meets the held-out bar of 0.5"
    means = {s.name: s.mean for s in held.scorers}
    assert means["cause_correct"] == 0.5
    data = report.to_json()
    assert data["version"] == 2
    assert {case["id"]: case["set"] for case in data["scenarios"]} == {
        "checkout-5xx-after-deploy": "dev", "second": "dev", "held-one": "heldout", "held-two": "heldout"}
    assert data["sets"]["heldout"]["scorers"]["cause_correct"]["mean"] == 0.5
    # one wrong held-out answer more and the held-out set, hence the gate, fails
    failing = run_eval(two_sets(tmp_path / "again"), thresholds=GATE, task=wrong_for("held-one", "held-two"))
    assert not failing.passed
    assert failing.missed() == ["heldout: cause_correct: mean 0.000 < min 0.5"]


def test_a_scenario_in_both_sets_is_refused(tmp_path: Path) -> None:
    sets = two_sets(tmp_path)
    (Path(sets[1][1]) / "second.yaml").write_text(yaml.safe_dump(renamed(checkout_doc(), "second")))
    with pytest.raises(EvalInputError, match="also in the dev set"):
        run_eval(sets, thresholds=GATE, task=wrong_for())


def test_compare_exits_1_on_a_scenario_that_regressed(tmp_path: Path) -> None:
    base = write(report_of(tmp_path / "a", "held-one"), tmp_path / "base.json")
    # NEW: held-one is fixed, but "second" (dev) now blames the flag
    new = write(report_of(tmp_path / "b", "second"), tmp_path / "new.json")
    code, text = run_main("--compare", str(base), str(new))
    assert code == 1, text
    flat = " ".join(text.split())
    assert "regression dev/second · cause_kind_correct: passed -> failed" in flat
    assert "improved heldout/held-one · cause_correct: failed -> passed" in flat
    assert "dev · cause_kind_correct: mean 1.000 -> 0.500" in flat
    # the other way round is only improvements... except the dev scenario's scores, which rose
    code, text = run_main("--compare", str(new), str(base))
    assert code == 1  # held-one regressed in this direction
    same_code, same_text = run_main("--compare", str(base), str(base))
    assert same_code == 0, same_text
    assert "no regression" in same_text


def test_improvements_and_new_scenarios_pass_the_compare(tmp_path: Path) -> None:
    base = write(report_of(tmp_path / "a", "held-one"), tmp_path / "base.json")
    sets = two_sets(tmp_path / "b")
    (Path(sets[0][1]) / "third.yaml").write_text(yaml.safe_dump(renamed(checkout_doc(), "third")))
    new = write(run_eval(sets, thresholds=GATE, task=wrong_for()), tmp_path / "new.json")
    code, text = run_main("--compare", str(base), str(new))
    assert code == 0, text
    assert "+ new scenario dev/third" in text


def test_a_new_failing_scenario_moves_no_mean_and_is_no_regression(tmp_path: Path) -> None:
    base = write(report_of(tmp_path / "a"), tmp_path / "base.json")
    sets = two_sets(tmp_path / "b")
    (Path(sets[0][1]) / "third.yaml").write_text(yaml.safe_dump(renamed(checkout_doc(), "third")))
    new = write(run_eval(sets, thresholds=GATE, task=wrong_for("third")), tmp_path / "new.json")
    assert not json.loads(new.read_text())["sets"]["dev"]["passed"], "the new scenario fails the gate..."
    code, text = run_main("--compare", str(base), str(new))
    assert code == 0, text  # ...which is the gate's business, not the compare's
    assert "+ new scenario dev/third" in text


def test_a_removed_scenario_is_a_regression(tmp_path: Path) -> None:
    base = write(run_eval(two_sets(tmp_path / "a"), thresholds=GATE, task=wrong_for()), tmp_path / "base.json")
    sets = two_sets(tmp_path / "b")
    (Path(sets[0][1]) / "second.yaml").unlink()
    new = write(run_eval(sets, thresholds=GATE, task=wrong_for()), tmp_path / "new.json")
    code, text = run_main("--compare", str(base), str(new))
    assert code == 1
    assert "dev/second: missing from new.json" in text


def test_the_tolerance_lets_a_small_ratio_drop_through_but_never_a_failed_bool(tmp_path: Path) -> None:
    sets = two_sets(tmp_path / "a")
    base = write(run_eval(sets, thresholds=GATE, task=wrong_for()), tmp_path / "base.json")

    async def drops_a_citation(scenario: Scenario) -> Run:
        brief = good_brief()
        if scenario.id == "second":  # must_cite_recall 1.0 -> 2/3: the NPE pattern is no longer cited
            causes = [c.model_copy(update={"claim": Claim(text=c.claim.text, citations=[
                cid for cid in c.claim.citations if cid != NPE.id])}) for c in brief.likely_causes]
            brief = brief.model_copy(update={"likely_causes": causes})
        return Run(result(brief))

    new = write(run_eval(two_sets(tmp_path / "b"), thresholds=GATE, task=drops_a_citation), tmp_path / "new.json")
    strict, text = run_main("--compare", str(base), str(new))
    assert strict == 1, text
    assert "dev/second · must_cite_recall: passed -> failed" in " ".join(text.split())
    # the scenario's recall fell by 1/3 and the dev mean by 1/6: a tolerance of 0.4 covers both
    assert run_main("--compare", str(base), str(new), "--tolerance", "0.4")[0] == 0
    wrong = write(run_eval(two_sets(tmp_path / "c"), thresholds=GATE, task=wrong_for("second")), tmp_path / "w.json")
    assert run_main("--compare", str(base), str(wrong), "--tolerance", "0.9")[0] == 1


def test_compare_reads_a_version_1_report_as_the_development_set(tmp_path: Path) -> None:
    report = run_eval(two_sets(tmp_path / "a"), thresholds=GATE, task=wrong_for()).to_json()
    dev = report["sets"]["dev"]
    old = {"version": 1, "drafter": "offline", "scorers": dev["scorers"],
           "scenarios": [{k: v for k, v in case.items() if k != "set"} for case in report["scenarios"]
                         if case["set"] == "dev"]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(report))
    code, text = run_main("--compare", str(tmp_path / "old.json"), str(tmp_path / "new.json"))
    assert code == 0, text


@pytest.mark.parametrize(("content", "named"), [
    ("{", "not valid JSON"),
    ('{"version": 7, "scenarios": []}', "not an eval report"),
    ('{"version": 2, "scenarios": [{"set": "dev"}]}', "malformed eval report"),
    ('{"version": 2, "scenarios": [{"id": "x", "scores": []}]}', "malformed eval report"),
    ('{"version": 2, "scenarios": [{"id": "x", "scores": {"claims_cited": 1}}]}', "malformed eval report"),
])
def test_a_report_that_does_not_load_is_bad_input(tmp_path: Path, content: str, named: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    good = write(run_eval(two_sets(tmp_path / "a"), thresholds=GATE, task=wrong_for()), tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert run_main("--compare", str(good), str(bad))[0] == 2
    err = capsys.readouterr().err
    assert named in " ".join(err.split())
    assert run_main("--compare", str(good), str(tmp_path / "absent.json"))[0] == 2
    assert run_main("--compare", str(good), str(good), "--tolerance", "1.5")[0] == 2


def test_the_committed_baseline_loads_and_names_both_sets() -> None:
    baseline = Path(__file__).resolve().parents[2] / "evals" / "baseline" / "offline.json"
    data = json.loads(baseline.read_text())
    assert data["version"] == 2
    assert set(data["sets"]) == {"dev", "heldout"}
    dev_ids = {p.stem for p in bundled_scenarios_dir().glob("*.yaml")}
    held_ids = {p.stem for p in (bundled_scenarios_dir() / "heldout").glob("*.yaml")}
    assert {c["id"] for c in data["scenarios"] if c["set"] == "heldout"} == held_ids
    assert {c["id"] for c in data["scenarios"] if c["set"] == "dev"} <= dev_ids | held_ids
    assert all(not Path(c["path"]).is_absolute() for c in data["scenarios"]), "no machine's checkout path"


def test_the_cli_command_compares_and_exits_1_on_a_regression(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.app.cli import app

    base = write(report_of(tmp_path / "a"), tmp_path / "base.json")
    new = write(report_of(tmp_path / "b", "held-two"), tmp_path / "new.json")
    runner = CliRunner()
    regressed = runner.invoke(app, ["eval", "--compare", str(base), str(new)])
    assert regressed.exit_code == 1, regressed.output
    assert "heldout/held-two" in regressed.output
    tolerated = runner.invoke(app, ["eval", "--compare", str(base), str(base), "--tolerance", "0.1"])
    assert tolerated.exit_code == 0, tolerated.output
