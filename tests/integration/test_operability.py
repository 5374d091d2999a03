"""One request followed across processes: `podium serve` (gunicorn worker + job worker
process) exports its spans over OTLP/HTTP to a receiver that decodes the protobuf, and
writes JSON log lines carrying the request's ids and trace ids, with no secret in them."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.settings import API_TOKEN, DEFAULT_POLICY
from tests.support.signing import SECRET, mlflow_headers, tag_set
from tests.support.waiting import wait_for
from webhook_server.dev.otlp import OtlpReceiver, trace_of, tree
from webhook_server.dev.processes import start_podium

pytestmark = pytest.mark.integration
SLACK_TOKEN = "xoxb-operability-test-token-0123456789"


@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def traced_podium(tmp_path_factory, receiver):
    """`podium serve` without MLflow, tracing to the receiver, JSON logs."""
    tmp = tmp_path_factory.mktemp("traced")
    proc = start_podium(tmp, {
        "PODIUM_DATABASE_URL": f"sqlite:///{tmp / 'podium.db'}",
        "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET, "PODIUM_API_TOKEN": API_TOKEN,
        "PODIUM_POLICY": DEFAULT_POLICY, "PODIUM_WORKER_POLL": "0.1",
        "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_CHANNEL": "C0PODIUM",
        "PODIUM_SLACK_API_URL": "http://127.0.0.1:9/api/",  # nobody there: sends retry
        "PODIUM_LOG_FORMAT": "json", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "podium-test", "OTEL_BSP_SCHEDULE_DELAY": "100",
        "PODIUM_SANDBOX_SPARES": "0"},  # no model runs here: no sandbox to warm
        args=("--workers", "1"))
    yield proc
    proc.stop()


def _deliver(server, delivery_id: str, version: str) -> int:
    body = tag_set(model="churn-ops", version=version)
    resp = requests.post(f"{server.url}/webhooks/mlflow", data=body,
                         headers=mlflow_headers(body, delivery_id=delivery_id), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["request_id"]


def test_one_trace_spans_the_webhook_process_and_the_job_worker_process(traced_podium,
                                                                        receiver):
    request_id = _deliver(traced_podium, "ops-trace-1", "1")

    def joined(spans):
        web = [s for s in spans if s.name == "POST /webhooks/mlflow"
               and s.attributes.get("podium.delivery_id") == "ops-trace-1"]
        return web and any(s.name == "job request" and s.trace_id == web[0].trace_id
                           for s in spans)

    spans = receiver.wait_for(joined, timeout=60)
    web = next(s for s in spans if s.attributes.get("podium.delivery_id") == "ops-trace-1")
    trace = trace_of(spans, web.trace_id)
    job = next(s for s in trace if s.name == "job request")
    assert job.parent_id == web.span_id and job.kind == "consumer" and web.kind == "server"
    assert web.attributes["podium.request_id"] == request_id
    assert web.attributes["http.response.status_code"] == 200
    assert job.attributes["podium.request_id"] == request_id
    assert {s.service for s in trace} == {"podium-test"}
    drawn = tree(trace)
    assert drawn.splitlines()[0].startswith("POST /webhooks/mlflow  [server")
    assert "  job request  [consumer" in drawn and f"request_id={request_id}" in drawn


def test_log_lines_are_json_with_the_requests_ids_and_no_secret(traced_podium, receiver):
    request_id = _deliver(traced_podium, "ops-logs-1", "2")
    receiver.wait_for(lambda spans: any(
        s.name == "job request" and s.attributes.get("podium.request_id") == request_id
        for s in spans), timeout=60)

    def lines():
        text = traced_podium.log_path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    intake = wait_for(lambda: [r for r in lines() if r.get("delivery_id") == "ops-logs-1"
                               and r.get("request_id") == request_id],
                      what="the intake's log line")[0]
    assert intake["logger"] == "webhook_server.web.routes.webhooks"
    assert intake["node"] and len(intake["trace_id"]) == 32 and len(intake["span_id"]) == 16
    job = wait_for(lambda: [r for r in lines() if r.get("job_kind") == "request"
                            and r.get("request_id") == request_id], what="the job's line")[0]
    assert job["trace_id"] == intake["trace_id"] and job["job_id"]
    access = wait_for(lambda: [r for r in lines() if r.get("logger") == "podium.access"
                               and r.get("http_path") == "/webhooks/mlflow"],
                      what="gunicorn's access line")[0]
    assert access["http_status"] == 200 and access["http_method"] == "POST"
    assert access["duration_ms"] >= 0
    text = traced_podium.log_path.read_text()
    for secret in (SECRET, API_TOKEN, SLACK_TOKEN):
        assert secret not in text
    not_json = [line for line in text.splitlines() if line and not line.startswith("{")]
    assert not_json == [], not_json[:5]
