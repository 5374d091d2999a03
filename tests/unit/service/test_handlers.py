"""Without an MLflow server the request job only records that it ran."""

import pytest

from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import Job
from webhook_server.jobs.worker import PermanentJobError
from webhook_server.service.handlers import request_handler
from webhook_server.store import transition_requests as reqs


def test_the_request_stays_as_it_is_and_the_history_says_why(svc):
    result = svc.intake.record(Delivery("mlflow", "d", "model_version_tag.set", "{}",
                                        TransitionRequested("churn", "3", "Production", "tag")))
    request_handler(svc.store)(Job(1, "request:1", "request",
                                   {"request_id": result.request_id}, 1, 6, "w"))
    with svc.store.read() as conn:
        history = reqs.history(conn, result.request_id)
        assert reqs.get(conn, result.request_id).state == "queued"
    assert history[-1].note == "no MLflow server configured: request stays queued"


def test_an_unknown_request_is_a_permanent_failure(svc):
    with pytest.raises(PermanentJobError, match="request 42 does not exist"):
        request_handler(svc.store)(Job(1, "request:42", "request", {"request_id": 42}, 1, 6,
                                       "w"))
