"""A scenario run does not depend on machine load: only the systems a scenario times out on
purpose keep the sandbox's short client timeouts; every other one waits patiently, so a
saturated CI machine cannot turn evidence into a gap."""

from __future__ import annotations

import pytest

from sandbox.harness import PATIENT_HTTP_S, PATIENT_MODEL_S, PATIENT_SOURCE_S, patient_settings
from sandbox.scenario import bundled_scenarios_dir, load_scenario
from sandbox.server import Sandbox

SLOW = bundled_scenarios_dir() / "checkout-partial-faults-slow.yaml"  # confluence.search: timeout


def test_a_system_timed_out_on_purpose_keeps_the_short_timeout_and_the_rest_wait_patiently() -> None:
    scenario = load_scenario(SLOW)
    assert scenario.world.faults.errors.get("confluence.search") == "timeout"
    with Sandbox(scenario) as sandbox:
        fast = sandbox.settings()
        settings, per_source = patient_settings(fast, scenario)
    assert settings.confluence.timeout_s == fast.confluence.timeout_s
    assert per_source["confluence"] == fast.source_timeout_s
    # github has an injected latency (2.5 s) under its client timeout: slowness, not a timeout.
    for source in ("datadog", "github", "jira", "pagerduty"):
        assert getattr(settings, source).timeout_s == PATIENT_HTTP_S
        assert per_source[source] == PATIENT_SOURCE_S
    assert settings.llm.timeout_s == PATIENT_MODEL_S
    assert settings.datadog.base_url == fast.datadog.base_url  # only the timeouts change


@pytest.mark.parametrize(("latency_ms", "patient"), [(4_999, True), (5_000, False)])
def test_a_latency_past_the_client_timeout_is_a_timeout_on_purpose(latency_ms: int, patient: bool) -> None:
    scenario = load_scenario(SLOW)
    scenario.world.faults.latency_ms["datadog.search_logs"] = latency_ms
    with Sandbox(scenario) as sandbox:
        fast = sandbox.settings()
        settings, per_source = patient_settings(fast, scenario)
    assert fast.datadog.timeout_s == 5.0
    assert (settings.datadog.timeout_s == PATIENT_HTTP_S) is patient
    assert (per_source["datadog"] == PATIENT_SOURCE_S) is patient
