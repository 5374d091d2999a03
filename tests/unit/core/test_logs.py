"""Log lines: JSON with each request's ids (or text on a terminal), secrets never."""

import io
import json
import logging

import pytest
from click.testing import CliRunner

from tests.support.tracing import in_memory_spans
from webhook_server.cli import main
from webhook_server.core import logs, scrub, tracing


@pytest.fixture
def capture():
    """(a logger writing through Podium's handler, the function giving its lines)."""
    def make(fmt):
        stream = io.StringIO()
        logger = logging.getLogger(f"test.logs.{fmt}")
        logger.handlers[:] = [logs.make_handler(fmt, stream)]
        logger.propagate, logger.level = False, logging.INFO
        return logger, lambda: stream.getvalue().splitlines()

    return make


def test_json_lines_carry_the_bound_request_fields_and_the_node(capture):
    log, lines = capture("json")
    with logs.bind(request_id=7, model="churn", version="3", delivery_id="d-1"), \
            logs.bind(job_id=12, job_kind="request"):
        log.info("checked %s", "v3")
    log.info("between requests → v4")
    inside, outside = (json.loads(line) for line in lines())
    assert inside["message"] == "checked v3" and inside["level"] == "INFO"
    assert inside["logger"] == "test.logs.json" and inside["time"]
    assert {k: inside[k] for k in ("request_id", "model", "version", "delivery_id", "job_id",
                                   "job_kind")} == {
        "request_id": 7, "model": "churn", "version": "3", "delivery_id": "d-1",
        "job_id": 12, "job_kind": "request"}
    assert inside["node"] and outside["node"] == inside["node"]
    assert "request_id" not in outside and "trace_id" not in outside
    assert "between requests → v4" in lines()[1]  # readable, not \u2192


def test_a_secret_never_reaches_a_json_line_nor_its_traceback(capture):
    log, lines = capture("json")
    secret = "xoxb-super-secret-token-123"
    scrub.use([secret])
    try:
        try:
            raise RuntimeError(f"Slack said no to {secret}")
        except RuntimeError:
            log.exception("post failed with token %s", secret)
    finally:
        scrub.use([])
    text = "\n".join(lines())
    assert secret not in text
    line = json.loads(lines()[0])
    assert line["message"] == "post failed with token [redacted]"
    assert "Slack said no to [redacted]" in line["exc_info"]


def test_json_lines_carry_the_trace_ids_while_a_span_records(capture):
    log, lines = capture("json")
    with in_memory_spans() as exported, tracing.span("step checking"):
        log.info("inside")
    line = json.loads(lines()[0])
    span = exported.get_finished_spans()[0]
    assert line["trace_id"] == format(span.context.trace_id, "032x")
    assert line["span_id"] == format(span.context.span_id, "016x")


def test_text_lines_show_the_fields_after_the_message_and_before_a_traceback(capture):
    log, lines = capture("text")
    with logs.bind(request_id=7, model="churn"):
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("step failed")
    first = lines()[0]
    assert first.endswith("ERROR test.logs.text: step failed [request_id=7 model=churn]")
    assert lines()[1] == "Traceback (most recent call last):"


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("env,stream,chosen", [
    ({}, _Tty(), "text"), ({}, io.StringIO(), "json"),
    ({"PODIUM_LOG_FORMAT": "auto"}, _Tty(), "text"),
    ({"PODIUM_LOG_FORMAT": "JSON"}, _Tty(), "json"),
    ({"PODIUM_LOG_FORMAT": "text"}, io.StringIO(), "text"),
])
def test_the_format_is_text_on_a_terminal_and_json_otherwise_unless_chosen(env, stream,
                                                                           chosen):
    assert logs.chosen_format(env, stream) == chosen


def test_a_bad_log_format_stops_the_command_with_the_choices():
    result = CliRunner().invoke(main, ["requests"], env={"PODIUM_LOG_FORMAT": "xml"})
    assert result.exit_code == 2
    assert "PODIUM_LOG_FORMAT='xml' is not one of json, text, auto" in result.output


def test_configure_leaves_a_root_logger_someone_else_set_up_alone():
    root = logging.getLogger()
    before = list(root.handlers)
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        assert logs.configure("json", stream=io.StringIO()) is None
        assert foreign in root.handlers
    finally:
        root.removeHandler(foreign)
    assert root.handlers == before
