"""A webhook and the job it queued are one trace, through the job row; the HTTP span
continues a caller's trace; every answer's status is on its span."""

from tests.support.signing import mlflow_headers, tag_set
from tests.support.tracing import by_name, in_memory_spans, parent_of
from webhook_server.jobs.worker import Worker
from webhook_server.service.handlers import for_services
from webhook_server.web.app import create_app

UPSTREAM_TRACE, UPSTREAM_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_the_webhook_and_the_worker_job_it_queued_are_one_trace(svc):
    with in_memory_spans() as exported:
        client = create_app(svc.settings, services=svc).test_client()
        body = tag_set(model="churn", version="4")
        headers = {**mlflow_headers(body, delivery_id="d-42"),
                   "traceparent": f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"}
        assert client.post("/webhooks/mlflow", data=body, headers=headers).status_code == 200
        job = Worker(svc.queue, for_services(svc), owner="w1").run_once()
    assert job is not None and job.trace_context
    spans = by_name(exported.get_finished_spans())
    web, work = spans["POST /webhooks/mlflow"], spans["job request"]
    assert format(web.context.trace_id, "032x") == UPSTREAM_TRACE
    assert format(parent_of(web), "016x") == UPSTREAM_SPAN
    assert work.context.trace_id == web.context.trace_id
    assert parent_of(work) == web.context.span_id
    assert (web.kind.name, work.kind.name) == ("SERVER", "CONSUMER")
    assert web.attributes["http.response.status_code"] == 200
    assert web.attributes["podium.delivery_id"] == "d-42"
    assert web.attributes["podium.request_id"] == 1
    assert work.attributes["podium.request_id"] == 1
    assert work.attributes["podium.job_key"] == "request:1"


def test_a_refused_delivery_is_a_span_with_its_status_and_queues_nothing(svc):
    with in_memory_spans() as exported:
        client = create_app(svc.settings, services=svc).test_client()
        body = tag_set()
        resp = client.post("/webhooks/mlflow", data=body,
                           headers=mlflow_headers(body, secret="wrong-secret"))
        assert resp.status_code == 401
        assert Worker(svc.queue, for_services(svc), owner="w1").run_once() is None
    (web,) = exported.get_finished_spans()
    assert web.name == "POST /webhooks/mlflow"
    assert web.attributes["http.response.status_code"] == 401


def test_with_tracing_off_the_job_row_carries_no_context(svc, client):
    body = tag_set()
    assert client.post("/webhooks/mlflow", data=body,
                       headers=mlflow_headers(body)).status_code == 200
    job = Worker(svc.queue, for_services(svc), owner="w1").run_once()
    assert job is not None and job.trace_context is None
