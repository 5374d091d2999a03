"""The scheduled monitoring job: one job per model and period, one Slack message per model
and period through the outbox, a retrain queued on decay when the policy says so, and an
audit row for every run."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from podium_policy.policy import parse_policy
from tests.support.settings import make_settings
from tests.unit.monitoring.logdata import labelled_batch, promoted
from webhook_server.adapters.notify import messages
from webhook_server.jobs.queue import list_jobs
from webhook_server.jobs.scheduler import build_scheduler
from webhook_server.monitoring import job as monitoring
from webhook_server.service.handlers import for_services
from webhook_server.service.model_jobs import add_policy_triggers
from webhook_server.service.services import build
from webhook_server.store import audit
from webhook_server.store.schema import outbox

NOW = datetime.now(UTC)
WEEK = f"{NOW.isocalendar()[0]}-W{NOW.isocalendar()[1]:02d}"


def monitored_svc(db_url, tmp_path, monitoring_yaml: str):
    policy = tmp_path / "podium.yaml"
    policy.write_text(f"default:\n  monitoring: {monitoring_yaml}\n")
    svc = build(make_settings(db_url, policy_path=str(policy)))
    svc.store.migrate()
    return svc


@pytest.fixture
def decaying(db_url, tmp_path):
    svc = monitored_svc(db_url, tmp_path, "{min_labels: 200, retrain_on_decay: true}")
    promoted(svc.store, "3", auc=0.84)
    labelled_batch(svc.store, NOW, 600, separation=0.5, seed=2)
    yield svc
    svc.close()


def run_due(svc) -> list[str]:
    """Claim and run every queued monitor job, as a worker would; their keys."""
    handle, ran = for_services(svc)["monitor"], []
    while (job := svc.queue.claim("test-worker")) is not None:
        if job.kind != "monitor":
            continue
        handle(job)
        svc.queue.complete(job)
        ran.append(job.key)
    return ran


def alerts(svc) -> list[tuple]:
    with svc.store.read() as conn:
        rows = conn.execute(select(outbox.c.key, outbox.c.payload)
                            .where(outbox.c.key.like("monitor:%"))).all()
    return [(key, messages.text(json.loads(payload))) for key, payload in rows]


def test_a_trigger_inserts_one_job_per_model_and_period(svc):
    monday, friday = datetime(2026, 6, 1, 7, tzinfo=UTC), datetime(2026, 6, 5, 7, tzinfo=UTC)
    assert monitoring.enqueue(svc.store, svc.queue, "churn", "week", now=monday) is True
    assert monitoring.enqueue(svc.store, svc.queue, "churn", "week", now=friday) is False
    assert monitoring.enqueue(svc.store, svc.queue, "churn", "week",
                              now=datetime(2026, 6, 8, tzinfo=UTC)) is True
    assert monitoring.enqueue(svc.store, svc.queue, "churn", "day", now=friday) is True
    with svc.store.read() as conn:
        assert sorted(j["key"] for j in list_jobs(conn)) == [
            "monitor:churn:2026-06-05", "monitor:churn:2026-W23", "monitor:churn:2026-W24"]


def test_the_policys_monitor_schedule_becomes_a_trigger(svc):
    policy = parse_policy({"models": {"churn": {"schedules": {"monitor": "0 7 * * 1"},
                                                "monitoring": {"period": "month"}}}})
    sched = build_scheduler(svc.store, svc.queue, reconcile_interval_s=None,
                            reap_interval_s=30)
    assert add_policy_triggers(sched, svc.store, svc.queue, policy) == \
        ["monitor:churn (0 7 * * 1)"]
    (trigger,) = [j for j in sched.get_jobs() if j.id == "monitor:churn"]
    assert trigger.args[2:] == ("churn", "month")


def test_decay_posts_one_alert_per_period_and_queues_one_retrain(decaying):
    svc = decaying
    assert monitoring.enqueue(svc.store, svc.queue, "churn", "week") is True
    assert run_due(svc) == [f"monitor:churn:{WEEK}"]
    # the same job again (a retry after a crash, `podium replay`): nothing new is sent
    found = monitoring.run({"model": "churn", "period": WEEK}, store=svc.store,
                           policy=svc.policy, queue_retrain=lambda conn, why: False)
    assert found["alert"] == f"monitor:churn:{WEEK}" and found["retrain"] == "already queued"
    ((key, payload),) = alerts(svc)
    assert key == f"monitor:churn:{WEEK}"
    assert "DECAY: churn v3 in " in payload and "retrain queued" in payload
    with svc.store.read() as conn:
        retrains = [j["key"] for j in list_jobs(conn) if j["kind"] == "retrain"]
        runs = audit.entries(conn, subject="churn", action="monitor")
    assert retrains == [f"retrain:churn:{NOW:%Y-%m-%d}"]
    assert [r["detail"]["retrain"] for r in runs] == ["already queued", "queued"]
    assert runs[-1]["detail"]["decay"]["version"] == "3"


def test_no_decay_and_no_drift_posts_nothing(db_url, tmp_path):
    svc = monitored_svc(db_url, tmp_path, "{min_labels: 200, retrain_on_decay: true}")
    try:
        promoted(svc.store, "3", auc=0.84)
        labelled_batch(svc.store, NOW, 600, separation=1.4, seed=1)
        monitoring.enqueue(svc.store, svc.queue, "churn", "week")
        run_due(svc)
        assert alerts(svc) == []
        with svc.store.read() as conn:
            (run,) = audit.entries(conn, subject="churn", action="monitor")
            assert not any(j["kind"] == "retrain" for j in list_jobs(conn))
        assert run["detail"]["decayed"] is False and run["detail"]["alert"] is None
    finally:
        svc.close()


def test_drift_in_the_period_alerts_without_a_retrain(db_url, tmp_path):
    svc = monitored_svc(db_url, tmp_path, "{retrain_on_decay: true}")
    try:
        with svc.store.tx() as conn:
            audit.record(conn, actor="scheduler", action="drift", subject="churn", detail={
                "model_version": "churn/3", "threshold": 0.2, "drifted": ["Contract"],
                "psi": {"Contract": 0.41, "tenure": 0.02}, "rows": 10})
        monitoring.enqueue(svc.store, svc.queue, "churn", "week")
        run_due(svc)
        ((_, payload),) = alerts(svc)
        assert "drift (churn/3): Contract PSI 0.41 (threshold 0.2)" in payload
        assert "DECAY" not in payload and "retrain" not in payload
    finally:
        svc.close()


def test_decay_without_retrain_on_decay_only_alerts(db_url, tmp_path):
    svc = monitored_svc(db_url, tmp_path, "{min_labels: 200}")
    try:
        promoted(svc.store, "3", auc=0.84)
        labelled_batch(svc.store, NOW, 600, separation=0.5, seed=2)
        monitoring.enqueue(svc.store, svc.queue, "churn", "week")
        run_due(svc)
        ((_, payload),) = alerts(svc)
        assert "DECAY" in payload and "retrain" not in payload
        with svc.store.read() as conn:
            assert not any(j["kind"] == "retrain" for j in list_jobs(conn))
    finally:
        svc.close()
