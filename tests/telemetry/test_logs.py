"""The processes' logging: one root handler, text or JSON, every record through the redactor."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
import uvicorn

from bot.telemetry import logs
from bot.telemetry.logs import configure_logging

ACCESS = '%s - "%s %s HTTP/%s" %d'


@pytest.fixture
def captured(restore_logging: None) -> io.StringIO:
    """Where the root handler writes; the process's logging set-up is restored afterwards."""
    return io.StringIO()


def _emit_everything() -> None:
    logging.getLogger("uvicorn.access").info(ACCESS, "198.51.100.7:5123", "POST", "/webhooks/pagerduty", "1.1", 202)
    logging.getLogger("incident_brief.test").warning("user %s asked", "jane.doe@example.com")
    try:
        raise RuntimeError("connect postgres://svc:pa55word@db:5432/x failed")
    except RuntimeError:
        logging.getLogger("incident_brief.test").exception("store down")
    structlog.get_logger("incident_brief.structured").info("charged", user="U1", email="jane.doe@example.com")


def test_json_is_one_object_per_line_masked_with_the_access_log_in_fields(captured: io.StringIO) -> None:
    configure_logging("INFO", "json", captured)
    _emit_everything()
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert len(lines) == 4
    assert all({"event", "level", "logger", "time"} <= set(line) for line in lines)
    access, warned, failed, structured = lines
    assert (access["method"], access["path"], access["status"], access["client"]) == (
        "POST", "/webhooks/pagerduty", 202, "[REDACTED:ipv4]:5123")
    assert warned["event"] == "user [REDACTED:email] asked"
    assert "pa55word" not in failed["exception"]
    assert "RuntimeError" in failed["exception"]
    assert (structured["event"], structured["email"], structured["logger"]) == (
        "charged", "[REDACTED:email]", "incident_brief.structured")


def test_text_is_one_line_per_record_masked(captured: io.StringIO) -> None:
    configure_logging("INFO", "text", captured)
    _emit_everything()
    out = captured.getvalue()
    assert 'INFO uvicorn.access: [REDACTED:ipv4]:5123 - "POST /webhooks/pagerduty HTTP/1.1" 202' in out
    assert "user [REDACTED:email] asked" in out
    assert "event='charged'" in out
    for leaked in ("jane.doe@example.com", "pa55word", "198.51.100.7"):
        assert leaked not in out


def test_uvicorn_handlers_of_its_own_are_released_to_the_root_handler(captured: io.StringIO) -> None:
    uvicorn.Config(lambda: None)  # the default log_config installs uvicorn's handlers, propagation off
    assert logging.getLogger("uvicorn.access").handlers
    configure_logging("INFO", "json", captured)
    assert not logging.getLogger("uvicorn.access").handlers
    logging.getLogger("uvicorn.access").info(ACCESS, "127.0.0.1:1", "GET", "/healthz", "1.1", 200)
    assert json.loads(captured.getvalue())["client"] == "127.0.0.1:1", "loopback is not PII"


def test_configuring_again_replaces_the_handler_and_quiets_chatty_libraries(captured: io.StringIO) -> None:
    configure_logging("INFO", "text", captured)
    configure_logging("INFO", "json", captured)
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._OurHandler)]
    assert len(ours) == 1
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1:9/ 200")
    assert captured.getvalue() == "", "a request log per outgoing call only at DEBUG"
    configure_logging("DEBUG", "json", captured)
    logging.getLogger("httpx").debug("HTTP Request: GET http://127.0.0.1:9/ 200")
    assert "HTTP Request" in captured.getvalue()


def test_json_step_events_are_flat_objects_on_the_same_lines(captured: io.StringIO) -> None:
    from bot.telemetry.events import configure_events, event

    configure_logging("INFO", "json", captured)
    configure_events(log_format="json")
    try:
        event("tool_call", tool="datadog.search_logs", detail="token=sk-live-51HxQaBcDeFgHiJkLm jane.doe@example.com")
    finally:
        configure_events(log_format="console")
    [line] = [json.loads(text) for text in captured.getvalue().splitlines()]
    assert (line["event"], line["tool"], line["logger"]) == ("tool_call", "datadog.search_logs",
                                                               "incident_brief.events")
    assert line["detail"] == "token=[REDACTED:api_key] [REDACTED:email]"
