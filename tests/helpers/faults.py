"""Shared material for the connector tests (no tests here): scenario variants with injected faults
or more world, and settings that make a source fail fast."""

from __future__ import annotations

import json
from typing import Any

from sandbox.scenario import Scenario, parse_scenario
from sandbox.server import Sandbox

FAULTS = ("http_429", "http_500", "timeout", "malformed", "refused")


def with_faults(base: Scenario, errors: dict[str, str]) -> Scenario:
    """`base` with ``world.faults.errors`` replaced: keys are systems or tools, values faults."""
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw["world"]["faults"] = {"errors": errors}
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} with faults")


def with_world(base: Scenario, **world: object) -> Scenario:
    """`base` with more world: lists are extended (the scenario's own items stay), others replaced."""
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    for key, value in world.items():
        current = raw["world"].get(key)
        raw["world"][key] = [*current, *value] if isinstance(current, list) and isinstance(value, list) else value
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} with more world")


def quick(sb: Sandbox, system: str, **overrides: Any) -> Any:
    """The sandbox's settings for one source with a short timeout and one retry (and whatever
    `overrides` say)."""
    return getattr(sb.settings(), system).model_copy(update={"timeout_s": 1.0, "max_retries": 1, **overrides})
