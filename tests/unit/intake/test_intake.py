"""Intake: one transaction for delivery + request + first job; idempotent; consistent."""

import threading

import pytest
from sqlalchemy import func, select, text

from webhook_server.intake.events import (
    Ignored,
    RequestCancelled,
    TestDelivery,
    TransitionRequested,
)
from webhook_server.intake.sources import Delivery
from webhook_server.store import states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import deliveries, jobs, outbox, request_events, requests


def deliver(svc, event, delivery_id="d-1", source="mlflow"):
    return svc.intake.record(Delivery(source, delivery_id, "model_version_tag.set", "{}", event))


def count(svc, table):
    with svc.store.tx() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def req(model="churn", version="3", target="Production", origin="tag"):
    return TransitionRequested(model, version, target, origin=origin)


def test_a_request_is_stored_with_its_delivery_history_and_first_job(svc):
    result = deliver(svc, req())
    with svc.store.tx() as conn:
        row = reqs.get(conn, result.request_id)
        job = conn.execute(select(jobs)).mappings().one()
        delivery = conn.execute(select(deliveries)).mappings().one()
    assert (row.model, row.version, row.target, row.state) == \
        ("churn", "3", "Production", "queued")
    assert job["key"] == f"request:{result.request_id}" and job["lock_key"] == "model:churn"
    assert row.delivery_pk == delivery["id"] and delivery["status"] == "accepted"
    assert count(svc, request_events) == 1


def test_a_repeated_delivery_changes_nothing_but_its_duplicate_count(svc):
    first = deliver(svc, req())
    again = deliver(svc, req())
    assert again.duplicate and again.request_id == first.request_id
    assert (count(svc, deliveries), count(svc, requests), count(svc, jobs)) == (1, 1, 1)
    with svc.store.tx() as conn:
        assert conn.execute(select(deliveries.c.duplicates)).scalar_one() == 1


def test_the_same_delivery_id_from_two_sources_is_two_deliveries(svc):
    deliver(svc, req(), source="mlflow")
    deliver(svc, req(version="4"), source="databricks")
    assert count(svc, deliveries) == 2


def test_an_invalid_target_is_stored_as_a_rejected_request_with_the_reason(svc):
    result = deliver(svc, req(target="Prod"))
    with svc.store.tx() as conn:
        row = reqs.get(conn, result.request_id)
    assert row.state == "rejected" and row.target is None
    assert "invalid target 'Prod'" in row.reason
    assert count(svc, jobs) == 1  # the job reports the rejection on the version


def test_a_newer_request_for_the_same_version_supersedes_the_open_one(svc):
    old = deliver(svc, req(target="Staging"), "d-1").request_id
    new = deliver(svc, req(target="Production"), "d-2").request_id
    with svc.store.tx() as conn:
        assert reqs.get(conn, old).state == "cancelled"
        assert reqs.get(conn, old).reason == f"superseded by request {new}"
        assert reqs.get(conn, new).state == "queued"


def test_requests_for_other_versions_are_left_alone(svc):
    a = deliver(svc, req(version="3"), "d-1").request_id
    deliver(svc, req(version="4"), "d-2")
    with svc.store.tx() as conn:
        assert reqs.get(conn, a).state == "queued"


def test_deleting_the_tag_cancels_the_open_tag_request_only(svc):
    tag = deliver(svc, req(version="3"), "d-1").request_id
    alias = deliver(svc, req(version="5", origin="alias"), "d-2").request_id
    result = deliver(svc, RequestCancelled("churn", "3", origin="tag"), "d-3")
    with svc.store.tx() as conn:
        assert reqs.get(conn, tag).state == "cancelled"
        assert reqs.get(conn, tag).reason == "transition_request tag deleted"
        assert reqs.get(conn, alias).state == "queued"
    assert result.cancelled == (tag,)


def test_removing_the_challenger_alias_cancels_the_alias_request_of_that_model(svc):
    alias = deliver(svc, req(version="5", origin="alias"), "d-1").request_id
    result = deliver(svc, RequestCancelled("churn", None, origin="alias"), "d-2")
    assert result.cancelled == (alias,)


def test_cancelling_with_nothing_open_says_so(svc):
    result = deliver(svc, RequestCancelled("churn", "3", origin="tag"))
    assert result.cancelled == () and result.detail == "no open request to cancel"


@pytest.mark.parametrize("event,status", [(Ignored("tag 'x' is not watched"), "ignored"),
                                          (TestDelivery("model_version_tag.set"), "test")])
def test_ignored_and_test_deliveries_are_stored_without_a_request(svc, event, status):
    result = deliver(svc, event)
    assert result.status == status and result.request_id is None
    assert (count(svc, deliveries), count(svc, requests), count(svc, jobs)) == (1, 0, 0)


def test_a_failure_mid_transaction_leaves_nothing_behind(svc, monkeypatch):
    """A request that supersedes another (the general path, in Python, on both engines)
    fails at its job: neither its rows nor the supersession remain."""
    open_ = deliver(svc, req(origin="alias"), "d-1").request_id

    def broken_enqueue(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(svc.intake.queue, "enqueue", broken_enqueue)
    with pytest.raises(RuntimeError):
        deliver(svc, req(), "d-2")
    assert (count(svc, deliveries), count(svc, requests), count(svc, jobs)) == (1, 1, 1)
    with svc.store.read() as conn:
        assert reqs.get(conn, open_).state == "queued"


def test_a_new_request_whose_last_row_fails_leaves_nothing_behind(svc):
    """A new request for a version with none open (one call on PostgreSQL, the general path
    on SQLite): the job's row, written last, fails, and the delivery, the request, its
    history and its step written before it are gone too; the next delivery is stored."""
    with svc.store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE jobs RENAME TO jobs_away"))
    try:
        with pytest.raises(Exception, match="jobs"):
            deliver(svc, req(), "d-1")
    finally:
        with svc.store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE jobs_away RENAME TO jobs"))
    assert (count(svc, deliveries), count(svc, requests), count(svc, request_events),
            count(svc, outbox), count(svc, jobs)) == (0, 0, 0, 0, 0)
    assert deliver(svc, req(), "d-1").request_id is not None
    assert (count(svc, deliveries), count(svc, requests), count(svc, jobs)) == (1, 1, 1)


def request_jobs(svc):
    with svc.store.read() as conn:
        return sorted(conn.execute(select(jobs.c.key)).scalars())


def test_the_retried_webhook_after_the_reconciler_joins_its_request(svc):
    recovered = deliver(svc, req(), "churn:3:tag:production", source="reconcile")
    retried = deliver(svc, req(target="production"), "mlflow-retry", source="mlflow")
    assert (retried.request_id, retried.already_open, retried.duplicate) == \
        (recovered.request_id, True, False)
    assert retried.detail == f"request {recovered.request_id} is already open for this tag"
    assert request_jobs(svc) == [f"request:{recovered.request_id}"]
    with svc.store.read() as conn:
        assert [r.state for r in reqs.list_(conn)] == ["queued"]
        stored = conn.execute(select(deliveries).where(deliveries.c.id == retried.delivery_pk)
                              ).mappings().one()
    assert (stored["status"], stored["detail"]) == ("accepted", retried.detail)


def test_a_repeat_of_a_linked_delivery_answers_with_the_open_request(svc):
    first = deliver(svc, req(), "d-1").request_id
    deliver(svc, req(), "d-2")
    again = deliver(svc, req(), "d-2")
    assert (again.duplicate, again.request_id, again.already_open) == (True, first, True)
    assert again.as_json()["detail"] == f"request {first} is already open for this tag"
    assert (count(svc, deliveries), count(svc, requests), count(svc, jobs)) == (2, 1, 1)


def test_the_tag_set_again_after_the_request_ended_is_a_new_request(svc):
    old = deliver(svc, req(), "d-1").request_id
    with svc.store.tx() as conn:
        reqs.transition(conn, old, expect=states.OPEN, to=states.REJECTED, actor="test",
                        reason="checks failed")
    new = deliver(svc, req(), "d-2")
    assert new.request_id != old and not new.already_open
    with svc.store.read() as conn:
        assert [(r.id, r.state) for r in reqs.list_(conn)] == \
            [(new.request_id, "queued"), (old, "rejected")]
        assert reqs.get(conn, old).reason == "checks failed"  # not superseded
    assert request_jobs(svc) == sorted([f"request:{old}", f"request:{new.request_id}"])


@pytest.mark.parametrize("change", [{"target": "Staging"}, {"origin": "alias"}])
def test_another_target_or_origin_supersedes_the_open_request(svc, change):
    old = deliver(svc, req(), "d-1").request_id
    new = deliver(svc, req(**change), "d-2")
    assert new.request_id != old and not new.already_open
    with svc.store.read() as conn:
        assert reqs.get(conn, old).state == "cancelled"
        assert reqs.get(conn, old).reason == f"superseded by request {new.request_id}"
    assert count(svc, jobs) == 2


def promoting(svc, **kwargs) -> int:
    request_id = deliver(svc, req(**kwargs), "d-1").request_id
    with svc.store.tx() as conn:
        assert reqs.transition(conn, request_id, expect=states.OPEN, to=states.PROMOTING,
                               actor="test")
    return request_id


def test_deleting_the_tag_of_a_promoting_request_leaves_it_to_its_job(svc):
    promo = promoting(svc)
    result = deliver(svc, RequestCancelled("churn", "3", origin="tag"), "d-2")
    assert result.cancelled == ()
    assert result.detail == f"request(s) {promo} already promoting: left to finish"
    with svc.store.read() as conn:
        assert reqs.get(conn, promo).state == "promoting"
    assert request_jobs(svc) == [f"request:{promo}"]  # no ':cancelled' job


def test_a_newer_request_waits_behind_a_promoting_one_instead_of_superseding_it(svc):
    promo = promoting(svc)
    new = deliver(svc, req(target="Staging"), "d-2")
    same = deliver(svc, req(), "d-3")
    assert new.request_id != promo and not new.already_open
    assert (same.request_id, same.already_open) == (promo, True)  # promoting is still open
    with svc.store.read() as conn:
        assert reqs.get(conn, promo).state == "promoting"
        assert reqs.get(conn, new.request_id).state == "queued"
        assert [h.to_state for h in reqs.history(conn, promo)] == ["queued", "promoting"]
    assert request_jobs(svc) == sorted([f"request:{promo}", f"request:{new.request_id}"])


def test_two_deliveries_of_one_tag_at_the_same_moment_make_one_request(svc):
    """The reconciler and the retried webhook in two transactions at once: the second waits
    for the first (the store's write lock on SQLite, the version's lock on PostgreSQL) and
    then sees its request."""
    answers = []
    second = threading.Thread(
        target=lambda: answers.append(deliver(svc, req(), "mlflow-retry")))
    with svc.store.tx() as conn:
        first = svc.intake._record(
            conn, Delivery("reconcile", "churn:3:tag:production", "reconcile.request", "{}",
                           req()))
        second.start()
        second.join(0.5)
        assert second.is_alive(), "the second delivery did not wait for the first"
    second.join(10)
    assert (answers[0].request_id, answers[0].already_open) == (first.request_id, True)
    assert (count(svc, deliveries), count(svc, requests), count(svc, jobs)) == (2, 1, 1)
