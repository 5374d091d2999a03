"""An ask made in the registry and withdrawn there is not promoted, whatever order MLflow's
webhooks arrive in. A person sets the ``transition_request`` tag (or the challenger alias) on
a version and deletes it (removes it) again; MLflow delivers from a thread pool and retries
failed deliveries, so the withdrawal can arrive first (no open request: nothing cancelled)
and the set second (a retry: a request). The request job's ``queued`` step reads the ask
back from the registry: gone, or changed, the request ends ``cancelled`` with the reason and
runs no check. The same for a request the reconciler made from a scan that read the tag just
before the person deleted it. A transient MLflow error on that read retries the job; a
request recorded by Podium's CLI (before it sets the tag) is not read back."""

from __future__ import annotations

import pytest

from podium_policy.policy import parse_policy
from tests.support.registry import Faults, FaultyRegistry, MemoryRegistry, comparison, passing
from tests.support.settings import make_settings
from webhook_server.adapters.registry import RequestedVersion
from webhook_server.intake.events import RequestCancelled, TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.worker import Worker
from webhook_server.store import ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import Gates
from webhook_server.workflow.reconcile import reconcile

ALIAS = "candidate"  # the settings' challenger alias (PODIUM_CHALLENGER_ALIAS), not the default


class Rig:
    """churn: champion v1 (through Podium), no approval; an in-memory registry whose N-th
    call may fail once; the checks and comparisons the gates ran."""

    def __init__(self, make_svc, db_url, faults: Faults | None = None) -> None:
        self.svc = make_svc(make_settings(db_url, mlflow_tracking_uri="http://127.0.0.1:9",
                                          challenger_alias=ALIAS, job_backoff_s=0))
        self.memory = MemoryRegistry({"champion": "1"})
        self.faults = faults or Faults()
        self.svc.registry = FaultyRegistry(self.memory, self.faults)
        self.svc.policy = parse_policy({})
        self.judged: list[str] = []

        def check(uri):
            self.judged.append(uri)
            return passing(uri)

        self.workflow = self.svc.use_gates(Gates(check, lambda m, c, k: comparison(c, k)))
        with self.svc.store.tx() as conn:
            ledger.record(conn, model="churn", alias="champion", from_version=None,
                          to_version="1", kind=ledger.PROMOTE, actor="policy")

    def deliver(self, delivery_id: str, name: str, event):
        return self.svc.intake.record(Delivery("mlflow", delivery_id, name, "{}", event))

    def run(self) -> None:
        worker = Worker(self.svc.queue, {"request": self.workflow.handle}, poll_s=0)
        while worker.run_once() is not None:
            pass

    def get(self, request_id: int):
        with self.svc.store.read() as conn:
            return reqs.get(conn, request_id)


@pytest.fixture
def rig(make_svc, db_url):
    return Rig(make_svc, db_url)


def assert_cancelled_unjudged(rig: Rig, rid: int, reason: str) -> None:
    req = rig.get(rid)
    assert (req.state, req.reason) == (states.CANCELLED, reason)
    assert rig.judged == []  # no check ran, nothing compared
    assert rig.memory.aliases["champion"] == "1" and rig.memory.moves == []
    assert rig.memory.tags["2"]["podium.status"] == states.CANCELLED


def test_a_tag_set_and_deleted_whose_deletion_arrives_first_is_not_promoted(rig):
    rig.memory.ask("2")  # the person sets transition_request=Production on v2 ...
    rig.memory.withdraw("2")  # ... and deletes it again
    first = rig.deliver("tag-deleted", "model_version_tag.deleted",
                        RequestCancelled("churn", "2", "tag"))
    assert first.detail == "no open request to cancel"
    rid = rig.deliver("tag-set-retried", "model_version_tag.set",
                      TransitionRequested("churn", "2", "Production", "tag")).request_id
    rig.run()
    assert_cancelled_unjudged(rig, rid, "the transition_request tag was removed from v2 "
                                        "before the request started")


def test_an_alias_set_and_removed_whose_removal_arrives_first_is_not_promoted(rig):
    rig.memory.ask("2", "alias", alias=ALIAS)
    rig.memory.withdraw("2", "alias", alias=ALIAS)
    first = rig.deliver("alias-deleted", "model_version_alias.deleted",
                        RequestCancelled("churn", None, "alias"))
    assert first.detail == "no open request to cancel"
    rid = rig.deliver("alias-created-retried", "model_version_alias.created",
                      TransitionRequested("churn", "2", "Production", "alias")).request_id
    rig.run()
    assert_cancelled_unjudged(rig, rid, f"the {ALIAS} alias no longer points at v2 (it is "
                                        "not set) before the request started")


def test_an_alias_moved_on_to_another_version_cancels_the_first_versions_request(rig):
    rig.memory.ask("2", "alias", alias=ALIAS)
    rig.memory.ask("3", "alias", alias=ALIAS)  # moved on: MLflow sends no deletion for v2
    rid = rig.deliver("alias-v2", "model_version_alias.created",
                      TransitionRequested("churn", "2", "Production", "alias")).request_id
    rig.run()
    assert_cancelled_unjudged(rig, rid, f"the {ALIAS} alias no longer points at v2 (it "
                                        "points at v3) before the request started")


def test_a_tag_that_now_asks_for_another_target_cancels_the_request(rig):
    rig.memory.ask("2", target="Staging")  # Production, then Staging: the first arrives last
    rid = rig.deliver("tag-production", "model_version_tag.set",
                      TransitionRequested("churn", "2", "Production", "tag")).request_id
    rig.run()
    assert_cancelled_unjudged(rig, rid, "the transition_request tag on v2 asks for "
                                        "'Staging', not Production, since this request was "
                                        "made")


def test_an_archive_tag_set_and_deleted_out_of_order_archives_nothing(rig):
    rig.memory.ask("2", target="archived")
    rig.memory.withdraw("2")
    rig.deliver("tag-deleted", "model_version_tag.deleted", RequestCancelled("churn", "2", "tag"))
    rid = rig.deliver("tag-set-retried", "model_version_tag.set",
                      TransitionRequested("churn", "2", "archived", "tag")).request_id
    rig.run()
    assert_cancelled_unjudged(rig, rid, "the transition_request tag was removed from v2 "
                                        "before the request started")


@pytest.mark.parametrize("origin", ["tag", "alias"])
def test_an_ask_that_still_stands_is_promoted_the_tag_read_case_insensitively(rig, origin):
    rig.memory.ask("2", origin, target="production", alias=ALIAS)
    rid = rig.deliver(f"{origin}-set", "x",
                      TransitionRequested("churn", "2", "production", origin)).request_id
    rig.run()
    assert rig.get(rid).state == states.PROMOTED
    assert rig.memory.aliases["champion"] == "2" and rig.judged == ["models:/churn/2"]


class Scan:
    """The reconciler's sight of the registry: what it read before the person acted."""

    def __init__(self, *found: RequestedVersion) -> None:
        self.found = list(found)

    def requested_versions(self, challenger_alias):
        return self.found


@pytest.mark.parametrize("withdrawn", [False, True], ids=["standing", "deleted-after-scan"])
def test_a_request_the_reconciler_made_from_a_stale_scan_is_cancelled(rig, withdrawn):
    rig.memory.ask("2")
    report = reconcile(rig.svc.store, rig.svc.intake,
                       Scan(RequestedVersion("churn", "2", "Production", "tag")), ALIAS)
    [rid] = report.created
    if withdrawn:  # deleted after the scan read it; its webhook is lost (or came first)
        rig.memory.withdraw("2")
    rig.run()
    if withdrawn:
        assert_cancelled_unjudged(rig, rid, "the transition_request tag was removed from v2 "
                                            "before the request started")
    else:
        assert rig.get(rid).state == states.PROMOTED


def test_a_transient_mlflow_error_reading_the_ask_retries_and_never_cancels(make_svc, db_url):
    rig = Rig(make_svc, db_url, Faults(fail_at=2))  # 1: the version exists, 2: its tags
    rig.memory.ask("2")
    rid = rig.deliver("tag-set", "model_version_tag.set",
                      TransitionRequested("churn", "2", "Production", "tag")).request_id
    rig.run()
    assert rig.faults.fired == "version_tags"
    assert rig.get(rid).state == states.PROMOTED


def test_a_request_recorded_by_podiums_cli_before_it_sets_the_tag_is_not_read_back(rig):
    """``podium request`` records the request first (its asker authenticated), then sets the
    tag: a worker quicker than the CLI finds no tag yet, and goes on."""
    rid = rig.svc.intake.record(Delivery(
        "cli", "cli:1", "cli.request", "{}",
        TransitionRequested("churn", "2", "Production", "tag", requested_by="cli:ana"))
    ).request_id
    rig.run()
    assert rig.get(rid).state == states.PROMOTED
