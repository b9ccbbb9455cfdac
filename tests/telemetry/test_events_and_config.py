"""Structured events pass the redactor and render as JSON or key=value with the trace they belong
to; tracing is off unless the standard OTEL_* variables name an exporter; span attributes are
redacted and bounded whatever a caller passes."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from bot.telemetry.events import LOGGER_NAME, configure_events, event
from bot.telemetry.tracing import clean, configure_tracing, exporter_from_environment, provider, span, use_provider
from tests.helpers.telemetry import recorded_spans

SECRET = "sk-live-51HxQaBcDeFgHiJkLmNoPqRsTuVwXyZ0123"


@pytest.fixture
def json_events() -> object:
    configure_events(log_format="json")
    yield
    configure_events(log_format="console")


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER_NAME]


def test_an_event_is_one_redacted_json_object_with_its_trace(caplog: pytest.LogCaptureFixture,
                                                             json_events: object) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    with recorded_spans(), span("tool_call") as current:
        event("tool_call", incident="pd:Q1", detail=f"token={SECRET} from jane.doe@example.com", skipped=None)
    [line] = _lines(caplog)
    parsed = json.loads(line)
    assert parsed["event"] == "tool_call"
    assert parsed["incident"] == "pd:Q1"
    assert parsed["level"] == "info"
    assert "skipped" not in parsed
    assert SECRET not in line
    assert "jane.doe@example.com" not in line
    assert "[REDACTED:" in parsed["detail"]
    assert parsed["trace_id"] == format(current.get_span_context().trace_id, "032x")


def test_console_events_are_key_value_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    event("brief", incident="pd:Q1", outcome="posted")
    [line] = _lines(caplog)
    assert line.startswith("event='brief'")
    assert "outcome='posted'" in line


def test_tracing_is_off_without_an_exporter_in_the_environment() -> None:
    assert exporter_from_environment({}) is None
    assert configure_tracing({}) is None
    assert provider() is None
    assert exporter_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                                      "OTEL_SDK_DISABLED": "true"}) is None
    assert exporter_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                                      "OTEL_TRACES_EXPORTER": "none"}) is None


def test_the_standard_variables_choose_the_exporter() -> None:
    assert isinstance(exporter_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}),
                      OTLPSpanExporter)
    assert isinstance(exporter_from_environment({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1"}),
                      OTLPSpanExporter)
    assert isinstance(exporter_from_environment({"OTEL_TRACES_EXPORTER": "console"}), ConsoleSpanExporter)
    configured = configure_tracing({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "ib-web-2"})
    try:
        assert configured is not None
        assert provider() is configured
        assert configured.resource.attributes["service.name"] == "ib-web-2"
    finally:
        use_provider(None)
        if configured is not None:
            configured.shutdown()


def test_span_attributes_are_redacted_bounded_and_never_none() -> None:
    cleaned = clean({"detail": f"password={SECRET}", "count": 3, "ok": True, "missing": None, "long": "x" * 1000})
    assert set(cleaned) == {"detail", "count", "ok", "long"}
    assert SECRET not in str(cleaned["detail"])
    assert len(str(cleaned["long"])) == 300
    with recorded_spans() as exporter, pytest.raises(RuntimeError), span("gather", detail=f"api_key={SECRET}"):
        raise RuntimeError(f"boom {SECRET}")
    [recorded] = exporter.get_finished_spans()
    assert recorded.status.status_code.name == "ERROR"
    assert SECRET not in str(dict(recorded.attributes or {}))
    assert SECRET not in (recorded.status.description or "")
    assert recorded.events == ()  # no exception event: its message may quote a source
