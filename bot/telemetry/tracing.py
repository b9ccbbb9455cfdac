"""OpenTelemetry traces: one span per stage of the flow, off unless an exporter is configured.

`configure_tracing` reads the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns on the OTLP/HTTP exporter, which reads its own
headers, timeout and certificate variables; ``OTEL_TRACES_EXPORTER=console`` prints spans
instead, ``none`` (or ``OTEL_SDK_DISABLED=true``) keeps them off; ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` name the process. Without any of them no span is exported and
`span` costs next to nothing.

Attributes are the incident key, the source or model, outcomes, counts, tokens and cost:
never a prompt, evidence text or a person. `span` drops ``None`` and redacts every string as a
last line of defence (`bot.core.redaction`), so a caller's mistake cannot export a secret.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from bot.core.redaction import redact

TRACER_NAME = "incident_brief"
SERVICE_NAME = "incident-brief"
_MAX_ATTRIBUTE_CHARS = 300
_provider: TracerProvider | None = None

AttributeValue = str | bool | int | float


def use_provider(provider: TracerProvider | None) -> TracerProvider | None:
    """Record spans with `provider` from now on (None: off); returns the one it replaces.
    The process's own, not the global provider: tests swap in an in-memory exporter."""
    global _provider
    previous, _provider = _provider, provider
    return previous


def provider() -> TracerProvider | None:
    """The provider spans go to, or None when tracing is off (pydantic-ai's instrumentation
    of the gateway's agents follows it)."""
    return _provider


def tracer() -> Tracer:
    return (_provider or trace.get_tracer_provider()).get_tracer(TRACER_NAME)


def exporter_from_environment(environ: Mapping[str, str] | None = None) -> SpanExporter | None:
    """The exporter the standard ``OTEL_*`` variables ask for, or None (tracing off)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    choice = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if choice == "none":
        return None
    if choice == "console":
        return ConsoleSpanExporter(service_name=env.get("OTEL_SERVICE_NAME") or SERVICE_NAME)
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if choice == "otlp" or endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout: from the same variables
    return None


def configure_tracing(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Turn tracing on when the environment names an exporter; a no-op otherwise."""
    exporter = exporter_from_environment(environ)
    if exporter is None:
        return None
    env = os.environ if environ is None else environ
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    configured = TracerProvider(resource=resource)
    configured.add_span_processor(BatchSpanProcessor(exporter))
    use_provider(configured)
    return configured


def clean(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Attributes as OpenTelemetry takes them: no None, strings redacted and bounded."""
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, bool | int | float):
            out[key] = value
        else:
            out[key] = redact(str(value))[:_MAX_ATTRIBUTE_CHARS]
    return out


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span]:
    """A span for one stage, current for what runs inside it; an exception marks it failed
    (type only: an exception's message may quote what a source said)."""
    with tracer().start_as_current_span(name, attributes=clean(attributes), record_exception=False,
                                        set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            current.set_attribute("error.type", type(exc).__name__)
            raise


def annotate(**attributes: Any) -> None:
    """Add attributes to the current span (no-op without one)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(clean(attributes))


def trace_ids() -> dict[str, str]:
    """The current trace and span ids, for events to point at their trace (empty when off)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
