"""The vendors' published OpenAPI descriptions (trimmed copies in tests/fixtures/*/openapi) as
JSON Schema validators of one operation's 200 answer.

OpenAPI 3.0 schemas are almost JSON Schema; two differences are bridged here: ``nullable: true``
becomes "or null", and ``oneOf`` becomes ``anyOf`` (the vendors use ``oneOf`` as a tagged union
whose members also accept each other's shapes, which strict ``oneOf`` would reject as "valid
under more than one"; the tag, an ``enum`` on ``type``, still tells the members apart).
``$ref``s resolve inside the trimmed document.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

from jsonschema import Draft202012Validator

from tests.helpers.replay import FIXTURES

Mode = Literal["strict", "nulls", "shapes"]


def _bridge(node: Any, mode: Mode = "strict") -> Any:
    if isinstance(node, list):
        return [_bridge(item, mode) for item in node]
    if not isinstance(node, dict):
        return node
    dropped = {"nullable", "discriminator", "readOnly", "writeOnly", "xml"}
    dropped |= {"required"} if mode == "shapes" else set()
    out = {("anyOf" if key == "oneOf" else key): _bridge(value, mode) for key, value in node.items()
           if key not in dropped}
    if node.get("nullable") is True or (mode != "strict" and "type" in node):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _document(vendor: str, name: str, mode: Mode) -> dict[str, Any]:
    raw = json.loads((FIXTURES / vendor / "openapi" / f"{name}.json").read_text())
    return {"components": _bridge(raw["components"], mode), "operations": raw["operations"]}


def answer_errors(vendor: str, name: str, operation: str, body: Any, *, limit: int = 5,
                  mode: Mode = "strict") -> list[str]:
    """What is wrong with `body` as the 200 answer of `operation` ("GET /path/{id}"), at most
    `limit` errors, each with its JSON path; [] when it conforms.

    ``strict`` is the schema as published. ``nulls`` also accepts null for any field (PagerDuty
    sends ``"priority": null`` and the like where its description says an object). ``shapes``
    checks types, enums and structure only: any field may be absent or null, which the vendors'
    own recordings need (a 2012 pull request lacks fields added since; Datadog sends
    ``unit: null`` where its schema says an array)."""
    doc = _document(vendor, name, mode)
    schema = {**_bridge(doc["operations"][operation]["schema"], mode), "components": doc["components"]}
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:200]}" for e in errors[:limit]]
