"""Shared test set-up: no real model requests, the bundled scenarios as fixtures, the DB fixtures plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_ai import models

from sandbox.scenario import Scenario
from tests.helpers.scenarios import SCENARIOS, scenario

pytest_plugins = ["tests.helpers.db", "tests.helpers.logging_state"]

# Tests talk to the sandbox's model endpoints or pydantic-ai test models, never a provider.
models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture
def checkout() -> Scenario:
    return scenario("checkout-5xx-after-deploy")


@pytest.fixture
def search_injection() -> Scenario:
    return scenario("search-latency-injection")


@pytest.fixture
def scenario_paths() -> list[Path]:
    paths = sorted(SCENARIOS.glob("*.yaml"))
    assert paths, f"no bundled scenarios in {SCENARIOS}: tests looping over them would check nothing"
    return paths
