"""Scenario files, format v1: every bundled scenario loads and is a fair test, and the strict
loader's errors name the file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from sandbox.scenario import (
    SCHEMA_PATH,
    Scenario,
    ScenarioError,
    _NoTimestampLoader,
    bundled_scenarios_dir,
    load_scenario,
    parse_scenario,
    world_item_ids,
)

SCENARIOS = sorted(bundled_scenarios_dir().glob("*.yaml"))
# Written blind and reported, not gated (evals/scenarios-probe/README.md): held to the same format.
PROBES = sorted((bundled_scenarios_dir().parent / "scenarios-probe").glob("*.yaml"))
SHARED = Path("/work/shared/scenarios")
READ_SOURCES = {"datadog", "github", "confluence", "pagerduty"}


def raw(name: str = "checkout-5xx-after-deploy") -> dict[str, Any]:
    text = (bundled_scenarios_dir() / f"{name}.yaml").read_text()
    return yaml.load(text, Loader=_NoTimestampLoader)  # a SafeLoader subclass


def load_error(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message, "the error must name the file"
    return message


# --- the bundled suite -------------------------------------------------------------------


def test_the_probe_set_is_there_and_shares_no_id_with_the_gated_sets() -> None:
    gated = {p.stem for p in [*SCENARIOS, *(bundled_scenarios_dir() / "heldout").glob("*.yaml")]}
    assert len(PROBES) >= 8
    assert not gated & {p.stem for p in PROBES}


def test_the_suite_has_the_required_scenarios() -> None:
    kinds = {load_scenario(p).expect.cause.kind for p in SCENARIOS}
    assert len(SCENARIOS) >= 5
    assert {"deploy", "config", "dependency", "traffic", "unknown"} <= kinds


@pytest.mark.parametrize("path", SCENARIOS + PROBES, ids=lambda p: p.stem)
def test_every_bundled_scenario_loads_and_matches_the_schema(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.id == path.stem, "file name and id agree, so a report line finds its file"
    assert scenario.path == path
    document = yaml.load(path.read_text(), Loader=_NoTimestampLoader)
    assert list(Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).iter_errors(document)) == []


@pytest.mark.parametrize("path", SCENARIOS + PROBES, ids=lambda p: p.stem)
def test_every_bundled_scenario_is_a_fair_test(path: Path) -> None:
    """What `expect` asks for is there to be found, and the world holds something to mislead."""
    s = load_scenario(path)
    ids = world_item_ids(s)
    assert s.alert.triggered_at <= s.now
    assert s.alert.service in {c.name for c in s.catalog}, "the alert's service is in the catalog"
    for item in s.expect.must_cite:
        assert item in ids
    # every source faulted for the whole source is one the brief must report as a gap
    faulted = {key.split(".", 1)[0] for key in s.world.faults.errors} & READ_SOURCES
    assert faulted <= set(s.expect.gaps), f"faulted sources {faulted} missing from expect.gaps"
    # a distractor: an older deploy, an unrelated event, or a log pattern that predates the alert
    older_deploys = [d for d in s.world.deploys if d.created_at < s.alert.triggered_at
                     and d.id != s.expect.cause.item]
    unrelated_events = [e for e in s.world.events if e.id != s.expect.cause.item]
    steady_logs = [log for log in s.world.logs if log.from_ < s.alert.triggered_at
                   and log.id not in s.expect.must_cite]
    assert older_deploys or unrelated_events or steady_logs, "nothing in the world to mislead"
    if s.expect.cause.kind == "unknown":
        assert s.expect.cause.item is None


@pytest.mark.parametrize("name", ["checkout-5xx-after-deploy.yaml", "search-latency-injection.yaml"])
def test_the_shared_examples_are_bundled_unchanged(name: str) -> None:
    if not (SHARED / name).exists():
        pytest.skip("the shared design folder is not present")
    assert (bundled_scenarios_dir() / name).read_text() == (SHARED / name).read_text()


def test_ids_are_unique_across_the_suite() -> None:
    ids = [load_scenario(p).id for p in SCENARIOS]
    assert len(ids) == len(set(ids))


# --- strict loading: errors name the file and the field ----------------------------------


def test_an_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    doc = raw()
    doc["expct"] = {}
    message = load_error(tmp_path, doc)
    assert "'expct' was unexpected" in message


def test_an_unknown_nested_key_is_named_with_its_path(tmp_path: Path) -> None:
    doc = raw()
    doc["world"]["deploys"][1]["shaa"] = "abc"
    message = load_error(tmp_path, doc)
    assert "world.deploys[1]:" in message
    assert "'shaa' was unexpected" in message


@pytest.mark.parametrize(("where", "value", "field"), [
    (("alert", "via"), "email", "alert.via"),
    (("alert", "urgency"), "critical", "alert.urgency"),
    (("expect", "cause", "kind"), "dns", "expect.cause.kind"),
    (("world", "faults"), {"errors": {"github": "http_503"}}, "world.faults.errors.github"),
    (("model",), {"behaviour": "confused"}, "model.behaviour"),
])
def test_a_bad_enum_value_is_named(tmp_path: Path, where: tuple[str, ...], value: object, field: str) -> None:
    doc = raw()
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    message = load_error(tmp_path, doc)
    assert f"{field}: " in message
    assert "is not one of" in message


@pytest.mark.parametrize("bad", [
    "yesterday",
    "2026-05-12 14:05",  # no T, no offset
    "2026-05-12T14:05:00",  # no offset: local time is ambiguous
    "2026-13-40T00:00:00Z",  # the right shape, an impossible date
])
def test_a_bad_timestamp_is_named(tmp_path: Path, bad: str) -> None:
    doc = raw()
    doc["world"]["logs"][0]["from"] = bad
    message = load_error(tmp_path, doc)
    assert f"world.logs[0].from: '{bad}' is not a 'date-time'" in message


def test_good_timestamps_with_offsets_and_fractions_load(tmp_path: Path) -> None:
    doc = raw()
    doc["now"] = "2026-05-12T16:05:00.250+02:00"
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_scenario(path).now.utcoffset() is not None


@pytest.mark.parametrize(("drop", "field"), [
    (("alert", "service"), "alert: 'service' is a required property"),
    (("expect",), "(top level): 'expect' is a required property"),
    (("world", "metrics", 0, "segments", 0, "from"), "world.metrics[0].segments[0]: 'from' is a required"),
])
def test_a_missing_required_field_is_named(tmp_path: Path, drop: tuple[Any, ...], field: str) -> None:
    doc = raw()
    target: Any = doc
    for key in drop[:-1]:
        target = target[key]
    del target[drop[-1]]
    assert field in load_error(tmp_path, doc)


def test_a_wrong_type_is_named(tmp_path: Path) -> None:
    doc = raw()
    doc["world"]["monitors"][0]["id"] = "abc"
    assert "world.monitors[0].id: 'abc' is not of type 'integer'" in load_error(tmp_path, doc)


def test_expect_must_name_real_world_items(tmp_path: Path) -> None:
    doc = raw()
    doc["expect"]["must_cite"] = ["bad-deploy", "bad-deploi"]
    doc["expect"]["cause"]["item"] = "nope"
    message = load_error(tmp_path, doc)
    assert "expect.must_cite[1]: 'bad-deploi' is not the id of any world item" in message
    assert "expect.cause.item: 'nope' is not the id of any world item" in message


def test_monitor_ids_and_jira_keys_can_be_expected(tmp_path: Path) -> None:
    doc = raw()
    doc["expect"]["must_cite"] = ["4101", "CHK-100"]
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_scenario(path).expect.must_cite == ["4101", "CHK-100"]


def test_duplicate_world_ids_are_named(tmp_path: Path) -> None:
    doc = raw()
    doc["world"]["logs"][1]["id"] = "npe"
    assert "world.logs[1].id: duplicate id 'npe'" in load_error(tmp_path, doc)


def test_pagerduty_services_beyond_the_catalog_load_and_their_ids_are_checked(tmp_path: Path) -> None:
    doc = raw()
    doc["world"]["pagerduty"] = {"services": [{"id": "PBILL01", "name": "Billing API"},
                                              {"id": "PZETA01", "name": "zeta", "status": "disabled"}]}
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(doc))
    services = load_scenario(path).world.pagerduty.services
    assert [(s.id, s.name, s.status) for s in services] == [("PBILL01", "Billing API", "active"),
                                                            ("PZETA01", "zeta", "disabled")]
    doc["world"]["pagerduty"]["services"] += [{"id": "PBILL01", "name": "again"}, {"id": "PSVCCHK", "name": "x"}]
    message = load_error(tmp_path, doc)
    assert "world.pagerduty.services[2].id: duplicate id 'PBILL01'" in message
    assert "world.pagerduty.services[3].id: 'PSVCCHK' is the catalog's checkout-api already" in message
    doc["world"]["pagerduty"]["services"] = [{"id": "P/../x", "name": "bad"}]
    assert "world.pagerduty.services[0].id: 'P/../x' does not match" in load_error(tmp_path, doc)


def test_not_yaml_and_missing_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nalert: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match=r"absent\.yaml: cannot read"):
        load_scenario(tmp_path / "absent.yaml")


def test_parse_scenario_names_its_origin() -> None:
    doc = copy.deepcopy(raw())
    doc["version"] = 2
    with pytest.raises(ScenarioError, match=r"inline: version: 1 was expected"):
        parse_scenario(doc, "inline")
    assert isinstance(parse_scenario(raw(), "inline"), Scenario)


def test_yaml_timestamps_stay_strings_for_the_schema() -> None:
    """PyYAML would turn an unquoted time into a datetime and hide a missing offset."""
    assert raw()["now"] == "2026-05-12T14:05:00Z"
