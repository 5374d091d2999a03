"""The request job reports the request's state on the model version."""

import pytest

from webhook_server.events import TransitionRequested
from webhook_server.jobs.handlers import request_handler
from webhook_server.jobs.queue import Job
from webhook_server.jobs.worker import PermanentJobError
from webhook_server.sources import Delivery
from webhook_server.store import requests as reqs


class MissingVersion(Exception):
    error_code = "RESOURCE_DOES_NOT_EXIST"


class RecordingRegistry:
    def __init__(self, fail=None):
        self.tags, self.fail = [], fail

    def set_tags(self, model, version, tags):
        if self.fail:
            raise self.fail
        self.tags.append((model, version, tags))


def stored_request(svc, target="Production"):
    result = svc.intake.record(Delivery("mlflow", "d", "model_version_tag.set", "{}",
                                        TransitionRequested("churn", "3", target, "tag")))
    return Job(1, f"request:{result.request_id}", "request",
               {"request_id": result.request_id}, 1, 6, "w"), result.request_id


def test_the_state_and_request_id_are_written_on_the_version(svc):
    job, request_id = stored_request(svc)
    registry = RecordingRegistry()
    request_handler(svc.store, registry)(job)
    assert registry.tags == [("churn", "3", {"podium.status": "queued",
                                             "podium.request_id": str(request_id)})]
    assert list(registry.tags[0][2])[-1] == "podium.status"  # written last


def test_a_rejected_request_carries_its_reason_to_the_version(svc):
    job, _ = stored_request(svc, target="Prod")
    registry = RecordingRegistry()
    request_handler(svc.store, registry)(job)
    tags = registry.tags[0][2]
    assert tags["podium.status"] == "rejected" and "invalid target" in tags["podium.reason"]


def test_a_missing_version_fails_the_request_permanently(svc):
    job, request_id = stored_request(svc)
    with pytest.raises(PermanentJobError, match="does not exist"):
        request_handler(svc.store, RecordingRegistry(fail=MissingVersion()))(job)
    with svc.store.tx() as conn:
        assert reqs.get(conn, request_id)["state"] == "failed"


def test_a_transient_registry_error_propagates_for_a_retry(svc):
    job, request_id = stored_request(svc)
    with pytest.raises(ConnectionError):
        request_handler(svc.store, RecordingRegistry(fail=ConnectionError("down")))(job)
    with svc.store.tx() as conn:
        assert reqs.get(conn, request_id)["state"] == "queued"
