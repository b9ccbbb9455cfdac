"""The held-out set is a fair, independent test of the analyser: every file loads, expects
what its world can show, holds something to mislead, and between them the files cover the
kinds of incident the issue lists; none is also in the development set."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.scorers import planted_secrets, scorer
from sandbox.scenario import bundled_scenarios_dir, load_scenario, world_item_ids

HELDOUT = sorted((bundled_scenarios_dir() / "heldout").glob("*.yaml"))
READ_SOURCES = {"datadog", "github", "confluence", "pagerduty", "jira"}


def test_the_held_out_set_covers_the_issues_kinds_of_incident() -> None:
    scenarios = [load_scenario(p) for p in HELDOUT]
    assert len(scenarios) >= 11
    assert {s.expect.cause.kind for s in scenarios} == {"deploy", "config", "dependency", "capacity", "traffic",
                                                        "unknown"}
    assert any(s.expect.must_not_mention and not planted_secrets(s) for s in scenarios), "an injection scenario"
    assert any(planted_secrets(s) for s in scenarios), "a secrets/PII scenario"
    assert any(s.world.faults.errors for s in scenarios), "a partially down source"
    assert any(s.expect.max_confidence for s in scenarios)
    assert any(any("source:statuspage" in tag for e in s.world.events for tag in e.tags) for s in scenarios)
    assert any(any(d.files for d in s.world.deploys) for s in scenarios)
    # a change after the onset that must not be ranked
    assert any(s.expect.onset and any(e.at > s.expect.onset for e in s.world.events) for s in scenarios)


def test_no_held_out_scenario_is_also_in_the_development_set() -> None:
    dev = {load_scenario(p).id for p in bundled_scenarios_dir().glob("*.yaml")}
    assert not dev & {load_scenario(p).id for p in HELDOUT}


@pytest.mark.parametrize("path", HELDOUT, ids=lambda p: p.stem)
def test_every_held_out_scenario_is_a_fair_test(path: Path) -> None:
    s = load_scenario(path)
    assert s.id == path.stem
    ids = set(world_item_ids(s))
    assert s.alert.triggered_at <= s.now
    assert s.alert.service in {c.name for c in s.catalog}
    assert set(s.expect.must_cite) <= ids
    if s.expect.cause.kind == "unknown":
        assert s.expect.cause.item is None
        assert s.expect.ticket is None
    else:
        assert s.expect.cause.item in ids
        assert s.expect.onset is not None, "every held-out incident with a cause says when it began"
        assert s.expect.onset <= s.alert.triggered_at
        assert scorer("no_cause_after_onset").applies(s)
    faulted = {key.split(".", 1)[0] for key in s.world.faults.errors} & READ_SOURCES
    assert faulted <= set(s.expect.gaps)
    for log in s.world.logs:
        assert log.from_ <= log.to <= s.now, f"{log.id} ends after the brief is asked for"
    for deploy in s.world.deploys:
        assert deploy.created_at <= s.now
    # something to mislead: a change that is not the cause, or a log pattern older than the alert
    decoys = [d.id for d in s.world.deploys if d.id != s.expect.cause.item]
    decoys += [e.id for e in s.world.events if e.id != s.expect.cause.item]
    steady = [log for log in s.world.logs if log.from_ < s.alert.triggered_at and log.id not in s.expect.must_cite]
    assert decoys or steady
