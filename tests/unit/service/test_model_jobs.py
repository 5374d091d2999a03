from datetime import UTC, datetime

from podium_policy.policy import parse_policy
from webhook_server.jobs.queue import SqlJobQueue, list_jobs
from webhook_server.jobs.scheduler import build_scheduler
from webhook_server.service.model_jobs import add_policy_triggers, enqueue_dated


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


def test_a_retrain_runs_podium_train_with_the_policys_training_section():
    from webhook_server.service.model_jobs import train_command

    policy = parse_policy({"models": {"churn": {"training": {
        "synthetic": 3000, "seed": 4, "trials": 2, "request": "staging"}}}})
    cmd = train_command("churn", policy.for_model("churn").training, "retrain:churn:d")
    assert cmd[1:4] == ["-m", "webhook_server.cli", "train"]
    args = cmd[4:]
    assert args[args.index("--model") + 1] == "churn"
    assert args[args.index("--seed") + 1] == "4" and args[args.index("--trials") + 1] == "2"
    assert args[args.index("--request") + 1] == "Staging"
    assert args[args.index("--synthetic") + 1] == "3000" and "--data" not in args
    assert args[args.index("--tag") + 1] == "podium.trigger=retrain:churn:d"
    assert "--json" in args


def test_the_training_child_gets_no_podium_slack_or_gitlab_secret():
    from webhook_server.service.model_jobs import training_env

    env = training_env("http://mlflow:5000", {
        "PATH": "/usr/bin", "PODIUM_MLFLOW_WEBHOOK_SECRET": "s", "PODIUM_DATABASE_URL": "pg",
        "SLACK_BOT_TOKEN": "xoxb", "GITLAB_TOKEN": "glpat", "DATABRICKS_TOKEN": "d",
        "MLFLOW_TRACKING_TOKEN": "mt", "AWS_ACCESS_KEY_ID": "a",
        "MLFLOW_TRACKING_URI": "http://elsewhere"})
    assert env == {"PATH": "/usr/bin", "MLFLOW_TRACKING_TOKEN": "mt",
                   "AWS_ACCESS_KEY_ID": "a", "MLFLOW_TRACKING_URI": "http://mlflow:5000"}


def test_invalid_training_data_is_a_permanent_failure_before_any_child(svc, tmp_path):
    import pytest

    from webhook_server.jobs.queue import Job
    from webhook_server.jobs.worker import PermanentJobError
    from webhook_server.service.model_jobs import retrain_handler

    bad = tmp_path / "bad.csv"
    bad.write_text("customerID,Churn\nx,Maybe\n")
    policy = parse_policy({"models": {"churn": {"training": {"data": str(bad)}}}})
    handle = retrain_handler(svc.store, policy, "http://127.0.0.1:9")
    with pytest.raises(PermanentJobError, match="training data for churn"):
        handle(Job(1, "retrain:churn:d", "retrain", {"model": "churn"}, 1, 6, "w"))
    missing = parse_policy({"models": {"churn": {"training": {"data": str(tmp_path / "no")}}}})
    with pytest.raises(PermanentJobError, match="training data for churn"):
        retrain_handler(svc.store, missing, "http://127.0.0.1:9")(
            Job(1, "retrain:churn:d", "retrain", {"model": "churn"}, 1, 6, "w"))


def test_a_retrain_whose_lease_is_lost_kills_its_training_child(svc, monkeypatch, tmp_path):
    """A worker that lost the job's lease (another worker took the job over after a store
    outage) must not let its `podium train` finish and register a second version: the
    handler checks the fence while it waits and kills the child."""
    import dataclasses
    import os
    import time

    import pytest

    from webhook_server.jobs.queue import Job
    from webhook_server.jobs.worker import LeaseLost
    from webhook_server.service import model_jobs

    pidfile = tmp_path / "child.pid"
    monkeypatch.setattr(model_jobs, "FENCE_EVERY_S", 0.05)
    monkeypatch.setattr(model_jobs, "train_command", lambda *a: [
        "/bin/sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"])
    checks = []

    def fence():
        checks.append(time.monotonic())
        if len(checks) >= 3:
            raise LeaseLost("lease on job retrain:churn:d lost by w1")

    job = dataclasses.replace(Job(1, "retrain:churn:d", "retrain", {"model": "churn"}, 1, 6,
                                  "w1"), fence=fence)
    handle = model_jobs.retrain_handler(svc.store, parse_policy({}), "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(LeaseLost):
        handle(job)
    assert time.monotonic() - started < 10
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left training
        os.kill(pid, 0)
