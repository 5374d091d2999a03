"""Tracing switched by the standard OTEL_* variables only; off, it costs nothing."""

import subprocess
import sys

import pytest

from tests.support.tracing import in_memory_spans, parent_of
from webhook_server.core import tracing


@pytest.mark.parametrize("env,exporter", [
    ({}, None),
    ({"OTEL_SERVICE_NAME": "podium-a"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
    ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None),
])
def test_tracing_is_on_only_when_the_otel_variables_ask_for_an_exporter(env, exporter):
    assert tracing.wanted(env) == exporter


def test_off_a_span_is_nothing_and_a_job_carries_no_context():
    tracing.shutdown()
    assert tracing.configure({}) is False and not tracing.enabled()
    with tracing.span("step checking", attributes={"podium.model": "churn"}) as span:
        assert span is None
        assert tracing.carrier() is None
    assert tracing.extract('{"traceparent": "00-' + "1" * 32 + "-" + "2" * 16 + '-01"}') is None


def test_off_neither_the_sdk_nor_the_exporter_is_imported_by_podium():
    code = ("import sys; from webhook_server.core import tracing; tracing.configure({}); "
            "import webhook_server.web.app, webhook_server.jobs.worker; "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.exporter')"
            " or m == 'opentelemetry.sdk.trace'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin",
                                           "PYTHONPATH": ":".join(sys.path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_carrier_written_with_a_job_makes_the_workers_span_a_child():
    with in_memory_spans() as exported:
        with tracing.span("POST /webhooks/mlflow", kind="server") as web:
            text = tracing.carrier()
        with tracing.span("job request", kind="consumer", parent=tracing.extract(text),
                          attributes=tracing.attrs(request_id=3, model="churn", version="2")):
            pass
    job = exported.get_finished_spans()[-1]
    assert job.context.trace_id == web.get_span_context().trace_id
    assert parent_of(job) == web.get_span_context().span_id
    assert dict(job.attributes) == {"podium.request_id": 3, "podium.model": "churn",
                                    "podium.version": "2"}


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"traceparent": "garbage"}', ""])
def test_a_bad_carrier_is_no_parent_never_an_error(text):
    with in_memory_spans() as exported:
        with tracing.span("job request", parent=tracing.extract(text)):
            pass
    assert exported.get_finished_spans()[0].parent is None


def test_an_exception_inside_a_span_marks_it_failed_and_goes_on():
    with in_memory_spans() as exported, pytest.raises(KeyError):
        with tracing.span("mlflow get_model_version", kind="client"):
            raise KeyError("gone")
    span = exported.get_finished_spans()[0]
    assert span.status.status_code.name == "ERROR"
    assert span.events[0].name == "exception"
