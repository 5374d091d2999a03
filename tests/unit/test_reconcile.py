"""Reconciler against an in-memory registry (the real-MLflow version is an integration test)."""

from webhook_server.reconcile import reconcile
from webhook_server.registry import RequestedVersion
from webhook_server.store import requests as reqs


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
    assert sorted((r["version"], r["origin"], r["requested_by"]) for r in rows) == \
        [("3", "tag", "reconciler"), ("4", "alias", "reconciler")]


def test_versions_whose_webhook_arrived_are_left_alone(svc):
    from webhook_server.events import TransitionRequested
    from webhook_server.sources import Delivery

    svc.intake.record(Delivery("mlflow", "d-1", "model_version_tag.set", "{}",
                               TransitionRequested("churn", "3", "production", origin="tag")))
    report = reconcile(svc.store, svc.intake,
                       FakeRegistry([RequestedVersion("churn", "3", "Production", "tag")]),
                       "challenger")
    assert report.created == []
