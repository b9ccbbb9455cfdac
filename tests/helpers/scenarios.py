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


def checkout() -> Scenario:
    """The bundled deploy regression: PagerDuty incident Q1CHK5XX on checkout-api."""
    return scenario("checkout-5xx-after-deploy")


def with_faults(base: Scenario, **faults: Any) -> Scenario:
    """The same world with ``world.faults`` replaced, e.g. ``errors={"slack.chat_postMessage":
    "http_429"}``; validated like a file, so a misspelt fault is an error, not a no-op."""
    raw = json.loads(base.model_dump_json(by_alias=True, exclude_none=True))
    raw["world"]["faults"] = faults
    raw.pop("path", None)
    return parse_scenario(raw, f"{base.id} (variant)")


def pagerduty_world(details: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                    incident_id: str | None = "PINC042", services: list[dict[str, str]] | None = None) -> Scenario:
    """A small PagerDuty-triggered world (service ``shop``, low urgency) with optional alert
    details, faults and PagerDuty services the catalog does not name (``world.pagerduty.services``):
    what the PagerDuty connector and sender tests read."""
    return parse_scenario({
        "version": 1, "id": "pd-test", "title": "pagerduty test", "now": "2026-05-12T14:05:00Z",
        "alert": {"via": "pagerduty", "incident_id": incident_id, "title": "shop: error rate high",
                  "service": "shop", "urgency": "low", "triggered_at": "2026-05-12T14:01:00Z",
                  "details": details or {}},
        "catalog": [{"name": "shop", "team": "payments", "pagerduty": {"service_id": "PSHOP01"}}],
        "world": {"faults": {"errors": errors or {}}, "pagerduty": {"services": services or []}},
        "expect": {"cause": {"kind": "unknown"}},
    })
