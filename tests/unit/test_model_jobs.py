from datetime import UTC, datetime

from podium_policy.policy import parse_policy
from webhook_server.jobs.queue import SqlJobQueue, list_jobs
from webhook_server.jobs.scheduler import build_scheduler
from webhook_server.model_jobs import add_policy_triggers, enqueue_dated


def test_a_dated_trigger_inserts_one_row_per_model_and_day(svc):
    q = SqlJobQueue(svc.store)
    day = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert enqueue_dated(svc.store, q, "retrain", "churn", now=day) is True
    assert enqueue_dated(svc.store, q, "retrain", "churn", now=day.replace(hour=9)) is False
    assert enqueue_dated(svc.store, q, "drift", "churn", now=day) is True
    with svc.store.read() as conn:
        assert sorted(j["key"] for j in list_jobs(conn)) == ["drift:churn:2026-12-01",
                                                              "retrain:churn:2026-12-01"]


def test_policy_schedules_become_scheduler_triggers(svc):
    q = SqlJobQueue(svc.store)
    policy = parse_policy({"models": {"churn": {"schedules": {"retrain": "0 3 * * 1",
                                                              "drift": "0 6 * * *"}},
                                      "fraud": {"schedules": {"drift": "30 5 * * *"}}}})
    sched = build_scheduler(svc.store, q, reconcile_interval_s=None, reap_interval_s=30)
    added = add_policy_triggers(sched, svc.store, q, policy)
    assert sorted(added) == ["drift:churn (0 6 * * *)", "drift:fraud (30 5 * * *)",
                             "retrain:churn (0 3 * * 1)"]
    assert {j.id for j in sched.get_jobs()} == {"reap-leases", "retrain:churn",
                                                "drift:churn", "drift:fraud"}
