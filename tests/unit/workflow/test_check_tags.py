"""The check tags go out beside the comparison, are on the version before its decision, and
come back after a failed write; a run writes an unchanged tag once."""

import pytest

from podium_policy.policy import parse_policy
from tests.support.registry import MemoryRegistry, comparison, passing
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.jobs.worker import Worker
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import Deferred, Gates, Workflow
from webhook_server.workflow.check_tags import CheckTags

CHECK_TAGS = {f"podium.check.{r.name}" for r in passing("models:/churn/2").results}


class Recording(MemoryRegistry):
    """Every tag write, in order: (version, {key: value}); fails the writes of check tags
    ``fail_checks`` times (MLflow did not answer)."""

    def __init__(self, aliases, fail_checks: int = 0):
        super().__init__(aliases)
        self.writes: list[tuple[str, dict]] = []
        self.fail_checks = fail_checks

    def set_tags(self, model, version, tags):
        if self.fail_checks and CHECK_TAGS & set(tags):
            self.fail_checks -= 1
            raise ConnectionError("MLflow did not answer")
        self.writes.append((version, dict(tags)))
        super().set_tags(model, version, tags)


def promote(svc, registry) -> str:
    queue = SqlJobQueue(svc.store, backoff_s=0, max_attempts=5)
    workflow = Workflow(svc.store, queue, registry, parse_policy({}),
                        Gates(passing, lambda m, c, k: comparison(c, k)))
    worker = Worker(queue, {"request": workflow.handle}, poll_s=0)
    registry.ask("2")
    request_id = svc.intake.record(Delivery(
        "mlflow", "d-2", "model_version_tag.set", "{}",
        TransitionRequested("churn", "2", "Production", "tag"))).request_id
    while worker.run_once() is not None:
        pass
    with svc.store.read() as conn:
        return reqs.get(conn, request_id).state


def keys_written(registry, version="2") -> list[str]:
    return [k for v, tags in registry.writes if v == version for k in tags]


def test_the_check_tags_are_on_the_version_before_its_decision(svc):
    registry = Recording({"champion": "1"})
    assert promote(svc, registry) == "promoted"
    statuses = [(i, tags["podium.status"]) for i, (v, tags) in enumerate(registry.writes)
                if v == "2" and "podium.status" in tags]
    checks_at = max(i for i, (v, tags) in enumerate(registry.writes) if CHECK_TAGS & set(tags))
    assert [s for _, s in statuses] == ["checking", "comparing", "promoting", "promoted"]
    assert checks_at < statuses[2][0]  # written before the version says promoting
    assert CHECK_TAGS <= set(registry.tags["2"]) and registry.tags["2"]["podium.checks"] == \
        f"{len(CHECK_TAGS)}/{len(CHECK_TAGS)} passed"


def test_a_run_writes_a_tag_whose_value_did_not_change_once(svc):
    registry = Recording({"champion": "1"})
    promote(svc, registry)
    assert keys_written(registry).count("podium.request_id") == 1
    assert keys_written(registry).count("podium.status") == 4


def test_check_tags_that_could_not_be_written_are_written_by_the_retry(svc):
    """The write failed after the request moved on to its comparison: the job's next
    attempt, past its checks, writes them again from the stored evidence."""
    registry = Recording({"champion": "1"}, fail_checks=1)
    assert promote(svc, registry) == "promoted"
    assert CHECK_TAGS <= set(registry.tags["2"])
    assert registry.tags["2"]["podium.status"] == "promoted"


class Down:
    """A fenced registry whose tag writes fail (MLflow did not answer)."""

    def set_tags(self, model, version, tags):
        raise ConnectionError("MLflow did not answer")


@pytest.mark.parametrize(("ended_by", "raises"), [
    (None, True),  # the run succeeded: the job must be retried to write them
    (Deferred("model churn has a request awaiting approval"), True),  # no attempt spent
    (RuntimeError("the comparison failed"), False),  # retried anyway: its own error stays
])
def test_a_failed_check_tag_write_makes_the_job_retry_unless_it_is_retried_anyway(
        ended_by, raises):
    writer = CheckTags(Down())
    writer.write("churn", "2", {"podium.checks": "22/22 passed"})
    if raises:
        with pytest.raises(ConnectionError):
            writer.close(ended_by)
    else:
        writer.close(ended_by)
