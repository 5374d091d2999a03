from webhook_server.jobs.queue import SqlJobQueue, list_jobs
from webhook_server.jobs.scheduler import build_scheduler, enqueue_reconcile


def test_a_repeated_trigger_in_the_same_interval_inserts_one_row(svc):
    q = SqlJobQueue(svc.store)
    assert enqueue_reconcile(svc.store, q, 60, now=1_800_000_010) is True
    assert enqueue_reconcile(svc.store, q, 60, now=1_800_000_050) is False
    assert enqueue_reconcile(svc.store, q, 60, now=1_800_000_070) is True
    with svc.store.tx() as conn:
        assert sorted(j["key"] for j in list_jobs(conn)) == ["reconcile:30000000",
                                                              "reconcile:30000001"]


def test_the_scheduler_holds_reconcile_and_reap_triggers(svc):
    q = SqlJobQueue(svc.store)
    sched = build_scheduler(svc.store, q, reconcile_interval_s=60, reap_interval_s=30)
    assert {j.id for j in sched.get_jobs()} == {"reconcile", "reap-leases"}
    without = build_scheduler(svc.store, q, reconcile_interval_s=None, reap_interval_s=30)
    assert {j.id for j in without.get_jobs()} == {"reap-leases"}
