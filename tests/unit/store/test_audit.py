"""The audit repository: rows in, approvals by actor, entries newest first."""

from webhook_server.store import audit


def test_approvals_map_each_actor_to_their_first_approve_on_that_subject(svc):
    with svc.store.tx() as conn:
        first = audit.record(conn, actor="slack:U1", action="approve", subject="request:1")
        audit.record(conn, actor="slack:U2", action="reject", subject="request:1")
        audit.record(conn, actor="slack:U3", action="approve", subject="request:2")
        audit.record(conn, actor="slack:U1", action="approve", subject="request:1")
    with svc.store.read() as conn:
        approvals = audit.approvals(conn, "request:1")
        (row,) = [e for e in audit.entries(conn, subject="request:1") if e["id"] == first]
    assert list(approvals) == ["slack:U1"] and approvals["slack:U1"] == row["at"]
    assert row["at"].tzinfo is not None


def test_entries_filter_newest_first_with_the_detail_decoded(svc):
    with svc.store.tx() as conn:
        audit.record(conn, actor="scheduler", action="drift", subject="churn",
                     detail={"psi": 0.3, "drifted": ["tenure"]})
        audit.record(conn, actor="scheduler", action="retrain", subject="churn")
        audit.record(conn, actor="cli:ana", action="rollback", subject="churn",
                     detail={"from": "3", "to": "2"})
        audit.record(conn, actor="scheduler", action="drift", subject="other", detail={})
    with svc.store.read() as conn:
        drift = audit.entries(conn, action="drift")
        churn = audit.entries(conn, subject="churn", limit=2)
        both = audit.entries(conn, subject="churn", action="drift")
    assert [(e["subject"], e["detail"]) for e in drift] == \
        [("other", {}), ("churn", {"psi": 0.3, "drifted": ["tenure"]})]
    assert [(e["action"], e["actor"], e["detail"]) for e in churn] == \
        [("rollback", "cli:ana", {"from": "3", "to": "2"}), ("retrain", "scheduler", None)]
    assert [e["action"] for e in both] == ["drift"]
