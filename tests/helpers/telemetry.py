"""Shared material for the telemetry tests (no tests here): the Prometheus exposition parsed back
into numbers, spans recorded in memory, and the model drafter a running bot drafts with."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from pydantic_ai import models

from bot.draft.drafter import Drafter
from bot.gateway.drafter import llm_drafter
from bot.runtime import Runtime
from bot.store.audit import StoreAudit
from bot.telemetry.tracing import use_provider
from sandbox.server import Sandbox


def exposition_totals(text: str) -> dict[str, float]:
    """Per metric family, the sum of its counting samples, parsed with the Prometheus client's
    own parser: a counter's ``_total``, a histogram's ``_count``, a gauge's value."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        wanted = {"counter": family.name + "_total", "histogram": family.name + "_count"}.get(family.type)
        total = sum(sample.value for sample in family.samples if wanted is None or sample.name == wanted)
        totals[family.name] = totals.get(family.name, 0.0) + total
    return totals


def labelled(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample by its name and labels."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def scrape(url: str) -> str:
    """The exposition `/metrics` serves."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain"), response.headers["content-type"]
    return response.text


@contextlib.contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Spans go to an in-memory exporter for the duration (tracing is off otherwise)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = use_provider(provider)
    try:
        yield exporter
    finally:
        use_provider(previous)
        provider.shutdown()


def span_tree(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """`root` and every span below it."""
    children: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)
    found, todo = [], [root]
    while todo:
        span = todo.pop()
        found.append(span)
        todo.extend(children.get(span.context.span_id, []))
    return found


def attribute_strings(spans: list[ReadableSpan]) -> list[tuple[str, str, str]]:
    """(span, attribute, value as text) for every attribute and event attribute of `spans`."""
    out: list[tuple[str, str, str]] = []
    for span in spans:
        for key, value in (span.attributes or {}).items():
            out.append((span.name, key, str(value)))
        for event in span.events:
            for key, value in (event.attributes or {}).items():
                out.append((span.name, f"{event.name}.{key}", str(value)))
    return out


def sandbox_model() -> contextlib.AbstractContextManager[None]:
    """conftest blocks model requests; these reach only the loopback sandbox's (simulated) model."""
    return models.override_allow_model_requests(True)


def model_drafter(**llm_updates: Any) -> Callable[[Sandbox, Runtime], Callable[[], Drafter]]:
    """The runtime's drafter factory: the gateway against the sandbox's (simulated) model, on
    the runtime's store, audit and canary states, as production wires it."""
    def factory(sb: Sandbox, rt: Runtime) -> Callable[[], Drafter]:
        settings = sb.settings().llm.model_copy(update=llm_updates)
        return lambda: llm_drafter(settings, rt.policy, store=rt.store, audit=StoreAudit(rt.store),
                                   canary_states=rt.canaries)
    return factory
