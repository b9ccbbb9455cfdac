"""The bundled scenarios, loaded by name (the one way tests and conftest's fixtures read them),
and variants of one with faults injected into its world."""

from __future__ import annotations

import json
from typing import Any

from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario, parse_scenario

SCENARIOS = bundled_scenarios_dir()


def scenario(name: str) -> Scenario:
    """The bundled scenario ``<name>.yaml`` (its id), parsed and validated."""
    return load_scenario(SCENARIOS / f"{name}.yaml")


def with_faults(base: Scenario, **faults: Any) -> Scenario:
    """The same world with ``world.faults`` replaced, e.g. ``errors={"slack.chat_postMessage":
    "http_429"}``; validated like a file, so a misspelt fault is an error, not a no-op."""
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw["world"]["faults"] = faults
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} (variant)")
