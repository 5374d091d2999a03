"""Reconciler against an in-memory registry (the real-MLflow version is an integration test)."""

from datetime import timedelta

from webhook_server.adapters.registry import RequestedVersion
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow.reconcile import reconcile


class FakeRegistry:
    def __init__(self, found):
        self.found = found

    def requested_versions(self, challenger_alias):
        return list(self.found)


def test_missed_requests_are_created_exactly_once_across_repeated_scans(svc):
    registry = FakeRegistry([RequestedVersion("churn", "3", "Production", "tag"),
                             RequestedVersion("churn", "4", "Production", "alias")])
    first = reconcile(svc.store, svc.intake, registry, "challenger")
    second = reconcile(svc.store, svc.intake, registry, "challenger")
    assert (first.scanned, len(first.created)) == (2, 2)
    assert second.created == []
    with svc.store.tx() as conn:
        rows = reqs.list_(conn)
    assert sorted((r.version, r.origin, r.requested_by) for r in rows) == \
        [("3", "tag", "reconciler"), ("4", "alias", "reconciler")]


def test_versions_whose_webhook_arrived_are_left_alone(svc):
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery

    svc.intake.record(Delivery("mlflow", "d-1", "model_version_tag.set", "{}",
                               TransitionRequested("churn", "3", "production", origin="tag")))
    report = reconcile(svc.store, svc.intake,
                       FakeRegistry([RequestedVersion("churn", "3", "Production", "tag")]),
                       "challenger")
    assert report.created == []


def tag_webhook(svc, delivery_id="mlflow-retry"):
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery

    return svc.intake.record(Delivery("mlflow", delivery_id, "model_version_tag.set", "{}",
                                      TransitionRequested("churn", "3", "Production",
                                                          origin="tag")))


def jobs_and_requests(svc):
    from sqlalchemy import select

    from webhook_server.store.schema import jobs

    with svc.store.read() as conn:
        return (sorted(conn.execute(select(jobs.c.key)).scalars()),
                [(r.id, r.state) for r in reqs.list_(conn)])


def test_the_webhook_retried_after_the_reconciler_recovered_its_tag_makes_no_second_request(
        svc):
    registry = FakeRegistry([RequestedVersion("churn", "3", "Production", "tag")])
    (recovered,) = reconcile(svc.store, svc.intake, registry, "challenger").created
    retried = tag_webhook(svc)
    assert (retried.request_id, retried.already_open) == (recovered, True)
    assert jobs_and_requests(svc) == ([f"request:{recovered}"], [(recovered, "queued")])


def test_a_webhook_landing_during_the_scan_makes_the_reconciler_create_nothing(svc, monkeypatch):
    import webhook_server.workflow.reconcile as rec

    checked = reqs.exists_for
    arrived = []

    def webhook_lands_after_the_check(conn, *args):
        found = checked(conn, *args)
        arrived.append(tag_webhook(svc, "mlflow-1").request_id)
        return found

    monkeypatch.setattr(rec.reqs, "exists_for", webhook_lands_after_the_check)
    report = reconcile(svc.store, svc.intake,
                       FakeRegistry([RequestedVersion("churn", "3", "Production", "tag")]),
                       "challenger")
    assert report.created == []
    assert jobs_and_requests(svc) == ([f"request:{arrived[0]}"], [(arrived[0], "queued")])


class RegistryReadBeforeTheRequestEnded(FakeRegistry):
    """The registry is read while the version's request is open (it sits on the shadow
    alias, which is the challenger alias, as live evidence puts it there); the request ends
    (promoted) before the reconciler looks at the store."""

    def __init__(self, found, end):
        super().__init__(found)
        self.end = end

    def requested_versions(self, challenger_alias):
        seen = list(self.found)
        self.end()
        return seen


def test_a_request_that_ends_while_the_registry_is_read_gets_no_successor(svc):
    from webhook_server.store import states

    opened = tag_webhook(svc).request_id

    def promoted():
        with svc.store.tx() as conn:
            assert reqs.transition(conn, opened, expect=states.OPEN, to=states.PROMOTED,
                                   actor="policy")

    registry = RegistryReadBeforeTheRequestEnded(
        [RequestedVersion("churn", "3", "Production", "alias")], promoted)
    report = reconcile(svc.store, svc.intake, registry, "challenger")
    assert (report.scanned, report.created) == (1, [])
    assert jobs_and_requests(svc)[1] == [(opened, "promoted")]


def test_a_version_being_promoted_from_the_shadow_alias_gets_no_second_request(svc):
    """A promotion on live evidence moves the champion alias while the version still holds
    the shadow alias (the challenger alias): Podium's own alias is not a new request."""
    from webhook_server.store import states

    opened = tag_webhook(svc).request_id
    with svc.store.tx() as conn:
        assert reqs.transition(conn, opened, expect=states.OPEN, to=states.PROMOTING,
                               actor="policy")
    report = reconcile(svc.store, svc.intake,
                       FakeRegistry([RequestedVersion("churn", "3", "Production", "alias")]),
                       "challenger")
    assert report.created == []
    assert jobs_and_requests(svc)[1] == [(opened, "promoting")]


def test_an_alias_left_after_its_version_s_request_ended_long_ago_is_recovered(svc):
    """The observation is stale only for requests that ended during (or just before) the
    scan: a version whose request ended earlier and that holds the alias now gets one."""
    from sqlalchemy import update

    from webhook_server.store import states
    from webhook_server.store.schema import requests, utcnow

    ended = tag_webhook(svc).request_id
    with svc.store.tx() as conn:
        reqs.transition(conn, ended, expect=states.OPEN, to=states.REJECTED, actor="policy")
        conn.execute(update(requests).where(requests.c.id == ended)
                     .values(updated_at=utcnow() - timedelta(hours=1)))
    report = reconcile(svc.store, svc.intake,
                       FakeRegistry([RequestedVersion("churn", "3", "Production", "alias")]),
                       "challenger")
    assert len(report.created) == 1


def test_a_version_awaiting_approval_after_its_live_pass_gets_no_second_request(svc):
    """After a live pass the version still holds the shadow alias (the challenger alias)
    while a person decides: the reconciler's sight of it joins that request (intake: an
    alias ask for a version Podium put on the shadow alias), never supersedes it."""
    from webhook_server.store import states

    opened = tag_webhook(svc).request_id
    with svc.store.tx() as conn:
        for to in (states.SHADOWING, states.AWAITING_APPROVAL):
            assert reqs.transition(conn, opened, expect=states.OPEN, to=to, actor="policy")
    report = reconcile(svc.store, svc.intake,
                       FakeRegistry([RequestedVersion("churn", "3", "Production", "alias")]),
                       "challenger")
    assert report.created == []
    assert jobs_and_requests(svc)[1] == [(opened, "awaiting_approval")]
