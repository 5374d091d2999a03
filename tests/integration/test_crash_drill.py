"""Crashes and outages against a real MLflow server.

- The worker is killed (SIGKILL, as ``kill -9``) right before each MLflow call of a whole
  promotion (checks, compare, approval, alias move, archiving the predecessor) and of a
  rollback, one kill point per run; a fresh worker takes over once the lease expires.
- MLflow stops for 20 s in the middle of a decision, and the champion is moved by hand
  while it is down: the decision completes once MLflow is back, against the new champion.

Workers run in forked children of this process (MLflow is imported once), with the real
``Registry`` and ``Workflow``; the gates are stubs (the checks themselves are tested
elsewhere) that count as MLflow calls, since the real ones load the model from MLflow.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback

import pytest

from podium_policy.policy import parse_policy
from tests.support.podium_runs import new_version
from tests.support.registry import comparison, passing
from tests.support.settings import make_settings
from tests.support.waiting import wait_for
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.jobs.worker import Worker
from webhook_server.service.services import build
from webhook_server.store import ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import jobs
from webhook_server.workflow import Gates, Workflow

pytestmark = [pytest.mark.integration, pytest.mark.drill]
POLICY = {"default": {"approval": {"targets": ["Production"], "approvers": ["cli:ana"]}}}
LEASE_S = 0.3  # a killed worker's job is taken over quickly
# A worker that is not killed holds its lease long: with 0.3 s, a heartbeat held up a few
# hundred milliseconds lets the lease lapse (seen on idle cores too), the job is run again
# from its last step, and the clean run counts calls that a run without a takeover never
# makes: the last kill points were never reached (CI: "no MLflow call number 16").
CLEAN_LEASE_S = 60.0


class Counted:
    """Counts MLflow calls in a file shared by successive workers; SIGKILLs this process
    right before global call number ``kill_at``. The check tags are written in a thread of
    their own while the comparison goes on: the count is taken under a lock, or two calls
    at once would be counted as one and a drill would miss a call number."""

    _lock = threading.Lock()

    def __init__(self, target, counter, kill_at: int | None) -> None:
        self._target, self._counter, self._kill_at = target, counter, kill_at

    def tick(self) -> None:
        with self._lock:
            n = int(self._counter.read_text() or 0) + 1
            self._counter.write_text(str(n))
            if n == self._kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name):
        attr = getattr(self._target, name)

        def call(*args, **kwargs):
            self.tick()
            return attr(*args, **kwargs)
        return call


def _worker(settings, counter, kill_at, errors) -> None:
    """A worker process: run jobs until none is runnable, then exit."""
    lease_s = LEASE_S if kill_at is not None else CLEAN_LEASE_S
    try:
        svc = build(settings)
        svc.queue = SqlJobQueue(svc.store, lease_s=lease_s, backoff_s=0, max_attempts=20)
        svc.policy = parse_policy(POLICY)
        ticks = Counted(None, counter, kill_at)

        def counted(fn):
            def call(*args):
                ticks.tick()
                return fn(*args)
            return call

        workflow = Workflow(svc.store, svc.queue, Counted(svc.registry, counter, kill_at),
                            svc.policy, Gates(counted(passing),
                                              counted(lambda m, c, k: comparison(c, k))))
        svc.queue.on_dead("request", workflow.on_dead)
        worker = Worker(svc.queue, {"request": workflow.handle}, poll_s=0, lease_s=lease_s)
        while worker.run_once() is not None:
            pass
    except BaseException:
        errors.write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)


class Drill:
    def __init__(self, svc, settings, client, model, tmp_path) -> None:
        self.svc, self.settings, self.client, self.model = svc, settings, client, model
        self.counter, self.errors = tmp_path / f"{model}.calls", tmp_path / f"{model}.err"
        self.counter.write_text("0")
        self.v1, self.v2 = new_version(client, model), new_version(client, model)
        client.set_registered_model_alias(model, "champion", self.v1)
        with svc.store.tx() as conn:  # v1 became champion through Podium earlier
            ledger.record(conn, model=model, alias="champion", from_version=None,
                          to_version=self.v1, kind=ledger.PROMOTE, actor="policy")
        self.workflow = Workflow(svc.store, svc.queue, svc.registry, svc.policy,
                                 Gates(passing, None))
        self.killed = 0

    def fork(self, kill_at: int | None) -> int:
        child = multiprocessing.get_context("fork").Process(
            target=_worker, args=(self.settings, self.counter, kill_at, self.errors))
        child.start()
        child.join(120)
        assert child.exitcode is not None, "a worker hung"
        assert child.exitcode in (0, -signal.SIGKILL), self.errors.read_text()
        if child.exitcode == -signal.SIGKILL:
            self.killed += 1
            wait_for(self.leases_expired, 10, "the killed worker's lease to expire")
        return child.exitcode

    def pending_jobs(self) -> list:
        with self.svc.store.read() as conn:
            return conn.execute(jobs.select().where(
                jobs.c.state.in_(("queued", "running")))).all()

    def leases_expired(self) -> bool:
        from webhook_server.store.schema import utcnow

        with self.svc.store.read() as conn:
            held = conn.execute(jobs.select().where(jobs.c.state == "running")).mappings().all()
        return all(r["lease_expires_at"] < utcnow() for r in held)

    def run(self, request_id: int, kill_at: int | None) -> dict:
        for _ in range(30):
            req = self.get(request_id)
            if req.state in states.TERMINAL and not self.pending_jobs():
                return req  # decided, and every job that writes its tags has run
            if req.state == states.AWAITING_APPROVAL:
                self.workflow.decide(request_id, "cli:ana", True)
                continue
            self.fork(kill_at if not self.killed else None)
        raise AssertionError(f"request {request_id} never settled: {self.get(request_id)}")

    def submit(self) -> int:
        # the ask a person makes in the registry (the job's queued step reads it back)
        self.client.set_model_version_tag(self.model, self.v2, "transition_request",
                                          "Production")
        event = TransitionRequested(self.model, self.v2, "Production", "tag")
        return self.svc.intake.record(Delivery("mlflow", f"{self.model}-tag", "tag.set", "{}",
                                               event)).request_id

    def get(self, request_id: int) -> dict:
        with self.svc.store.read() as conn:
            return reqs.get(conn, request_id)

    def calls(self) -> int:
        return int(self.counter.read_text())

    def assert_invariants(self, champion: str, predecessor: str, moves: list) -> None:
        alias = self.client.get_model_version_by_alias(self.model, "champion").version
        with self.svc.store.read() as conn:
            applied = ledger.entries(conn, self.model, alias="champion")
            intents = [e for e in ledger.entries(conn, self.model, include_unapplied=True)
                       if e["state"] == ledger.INTENT]
        assert str(alias) == champion == applied[-1]["to_version"]
        assert [(e["from_version"], e["to_version"]) for e in applied] == moves
        assert intents == []
        tags = {v: self.client.get_model_version(self.model, v).tags
                for v in (champion, predecessor)}
        assert tags[champion]["podium.status"] == "promoted"
        assert tags[predecessor]["podium.status"] == "archived"


@pytest.fixture
def drill_svc(tmp_path, mlflow_server):
    settings = make_settings(f"sqlite:///{tmp_path / 'podium.db'}",
                             mlflow_tracking_uri=mlflow_server.url, job_backoff_s=0,
                             job_max_attempts=20)
    svc = build(settings)
    svc.store.migrate()
    svc.policy = parse_policy(POLICY)
    yield svc, settings
    svc.close()


def test_a_worker_killed_before_any_mlflow_call_of_a_promotion_and_a_rollback(
        drill_svc, mlflow_client, tmp_path):
    svc, settings = drill_svc
    clean = Drill(svc, settings, mlflow_client, "drill-count", tmp_path)
    rid = clean.submit()
    assert clean.run(rid, kill_at=None).state == "promoted"
    promotion_calls = clean.calls()
    assert promotion_calls >= 8
    for k in range(1, promotion_calls + 1):
        drill = Drill(svc, settings, mlflow_client, f"drill-{k}", tmp_path)
        rid = drill.submit()
        req = drill.run(rid, kill_at=k)
        assert drill.killed == 1, f"no MLflow call number {k}"
        assert (req.state, req.decided_by) == ("promoted", "cli:ana"), req
        drill.assert_invariants(drill.v2, drill.v1, [(None, drill.v1), (drill.v1, drill.v2)])
        # then a rollback with the worker killed at the same call number of its job
        asked = drill.workflow.request_rollback(drill.model, "cli:ana", drill.v1)
        drill.killed, before = 0, drill.calls()
        rolled = drill.run(asked["request"], kill_at=before + k)
        if drill.killed:  # the rollback makes fewer calls than the promotion
            assert rolled.state == "promoted", rolled
        drill.assert_invariants(drill.v1, drill.v2, [(None, drill.v1), (drill.v1, drill.v2),
                                                     (drill.v2, drill.v1)])


def test_mlflow_down_for_20_s_mid_decision_completes_on_fresh_state(
        tmp_path, mlflow_client, monkeypatch):
    """MLflow stops right after the approval; while it is down the promotion job fails and
    retries; the champion is moved by hand as MLflow comes back: the promotion compares
    again with the new champion instead of trusting its stale comparison, and waits for an
    approval of the new comparison."""
    from webhook_server.dev.processes import start_mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    workdir = tmp_path / "mlflow-outage"
    server = start_mlflow(workdir)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        settings = make_settings(f"sqlite:///{tmp_path / 'outage.db'}",
                                 mlflow_tracking_uri=server.url, job_backoff_s=0.5,
                                 job_max_attempts=30)
        svc = build(settings)
        svc.store.migrate()
        svc.policy = parse_policy(POLICY)
        compared = []

        def compare(model, challenger, champion):
            compared.append(champion)
            return comparison(challenger, champion)

        drill = Drill(svc, settings, client, "outage", tmp_path)
        v3 = new_version(client, "outage")
        workflow = Workflow(svc.store, svc.queue, svc.registry, svc.policy,
                            Gates(passing, compare))
        svc.queue.on_dead("request", workflow.on_dead)
        worker = Worker(svc.queue, {"request": workflow.handle}, poll_s=0)
        rid = drill.submit()
        while worker.run_once() is not None:
            pass
        assert drill.get(rid).state == states.AWAITING_APPROVAL
        server.stop()
        workflow.decide(rid, "cli:ana", True)  # the store is up: the decision is recorded
        down_until = time.monotonic() + 20
        failures = 0
        while time.monotonic() < down_until:
            job = worker.run_once()
            failures += job is not None
            time.sleep(0.2)  # the job's backoff; MLflow is down whatever we do
        assert failures >= 3 and drill.get(rid).state == states.PROMOTING
        server = start_mlflow(workdir, port=port)
        client.set_registered_model_alias("outage", "champion", v3)  # moved by hand
        again = wait_for(lambda: (worker.run_once(), drill.get(rid))[1].state
                         == states.AWAITING_APPROVAL and drill.get(rid), 60,
                         "the new comparison to wait for a new approval")
        assert again.compared_with == v3 and compared == [drill.v1, v3]
        workflow.decide(rid, "cli:ana", True)  # the first approval covered v1, not v3
        req = wait_for(lambda: (worker.run_once(), drill.get(rid))[1].state
                       in states.TERMINAL and drill.get(rid), 60, "the decision")
        assert req.state == "promoted" and compared == [drill.v1, v3]
        drill.assert_invariants(drill.v2, v3, [(None, drill.v1), (drill.v1, v3),
                                               (v3, drill.v2)])
        with svc.store.read() as conn:
            kinds = [e["kind"] for e in ledger.entries(conn, "outage")]
        assert kinds == ["promote", "external", "promote"]
        svc.close()
    finally:
        server.stop()
