"""The drill's processes, all on 127.0.0.1: a fresh PostgreSQL database, a real MLflow
server, the fake Slack and GitLab, the balancer, web nodes (``podium serve --no-worker
--no-scheduler``) and workers (``podium worker``, one with ``--scheduler``, judging by tags:
``bench/drill_worker.py``). Every process can be killed (SIGKILL to its process group) and
started again on the same port with the same settings."""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.scaleout.balancer import Balancer
from bench.scaleout.spawn import each, start_worker
from webhook_server.adapters.registry import Registry
from webhook_server.dev.fakes.gitlab import FakeGitLab
from webhook_server.dev.fakes.slack import FakeSlack
from webhook_server.dev.processes import Process, free_port, start_mlflow, start_podium
from webhook_server.store import Store
from webhook_server.store.db import normalise_url

SECRET, SIGNING = "drill-webhook-secret", "drill-signing-secret"
TOKEN = "drill-api-token-Xc4nVb8qLz2mRt6wPy9sKd3fHj7gNa5e"  # noqa: S105 (a drill; strong)
APPROVERS = {"ana": "U0ANA", "ben": "U0BEN"}
MR_IID = 7


@dataclass
class Member:
    """One restartable process of the cluster."""

    name: str
    kind: str  # web | worker | scheduler (the worker that runs the scheduler)
    port: int | None = None
    proc: Process | None = None
    starts: list[float] = field(default_factory=list)  # seconds each (re)start took


class Cluster:
    def __init__(self, workdir: Path, admin_url: str, *, models: list[str], web: int = 2,
                 workers: int = 3, lease_s: int = 5, web_workers: int = 2) -> None:
        self.workdir, self.admin_url, self.models = workdir, admin_url, models
        self.lease_s, self.web_workers = lease_s, web_workers
        self.db = f"podium_drill_{uuid.uuid4().hex[:10]}"
        self.db_url = make_url(normalise_url(admin_url)).set(database=self.db) \
            .render_as_string(hide_password=False)
        self.members = [Member(f"web{i}", "web", free_port()) for i in range(web)]
        self.members += [Member(f"worker{i}", "scheduler" if i == 0 else "worker")
                         for i in range(workers)]
        self.slack, self.gitlab = FakeSlack(), FakeGitLab(merge_requests=(MR_IID,))
        self.balancer = Balancer([f"127.0.0.1:{m.port}" for m in self.members if m.port])
        self.mlflow_url = f"http://127.0.0.1:{free_port()}"
        self.mlflow: Process | None = None
        self.store: Store | None = None

    # --- up and down -------------------------------------------------------------------

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._admin(f'CREATE DATABASE "{self.db}"')
        self.store = Store(self.db_url)
        self.store.migrate()  # once, before five processes would race to
        self.slack.start()
        self.gitlab.start()
        self.balancer.start()
        self.policy_path.write_text(policy(self.models))
        # all at once: Podium's processes need MLflow's address, not MLflow itself
        each(lambda start: start(), [self.start_mlflow,
                                      *(lambda m=m: self.restart(m) for m in self.members)])
        Registry(self.mlflow_url).register_webhook(f"{self.balancer.url}/webhooks/mlflow",
                                                   SECRET, name="podium-drill")

    def stop(self) -> None:
        each(lambda m: m.proc.stop(timeout=10), [m for m in self.members if m.proc])
        if self.mlflow is not None:
            self.mlflow.stop()
        for part in (self.balancer, self.slack, self.gitlab):
            part.stop()
        if self.store is not None:
            self.store.dispose()
        self._admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')

    @property
    def policy_path(self) -> Path:
        return self.workdir / "policy.yaml"

    def env(self) -> dict[str, str]:
        """The settings of every Podium process: short leases, so a killed holder is
        replaced within seconds; MLflow's client gives up fast (the job retries)."""
        return {
            "PODIUM_DATABASE_URL": self.db_url, "MLFLOW_TRACKING_URI": self.mlflow_url,
            "PODIUM_POLICY": str(self.policy_path), "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET,
            "PODIUM_API_TOKEN": TOKEN, "PODIUM_PUBLIC_URL": self.balancer.url,
            "SLACK_BOT_TOKEN": self.slack.token, "SLACK_SIGNING_SECRET": SIGNING,
            "SLACK_TEAM_ID": self.slack.team_id, "SLACK_CHANNEL": self.slack.channel_id,
            "PODIUM_SLACK_API_URL": self.slack.api_url, "GITLAB_URL": self.gitlab.url,
            "GITLAB_TOKEN": self.gitlab.token, "GITLAB_PROJECT_ID": self.gitlab.project_id,
            "PODIUM_JOB_LEASE": str(self.lease_s), "PODIUM_LEADER_LEASE": str(self.lease_s),
            "PODIUM_JOB_BACKOFF": "0.25", "PODIUM_JOB_MAX_ATTEMPTS": "15",
            "PODIUM_WORKER_POLL": "2", "PODIUM_RECONCILE_INTERVAL": "15",
            "PODIUM_NOTIFY_MAX_BACKOFF": "4", "PODIUM_SANDBOX_SPARES": "0",
            "PODIUM_SANDBOX": "process", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
        }

    # --- faults --------------------------------------------------------------------------

    def kill(self, member: Member) -> None:
        """``kill -9`` the member's process group (a node: gunicorn and its workers)."""
        if member.proc is not None and member.proc.proc.poll() is None:
            try:
                os.killpg(member.proc.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            member.proc.proc.wait()

    def alive(self, member: Member) -> bool:
        return member.proc is not None and member.proc.proc.poll() is None

    def restart(self, member: Member) -> None:
        started = time.monotonic()
        workdir = self.workdir / member.name
        if member.kind == "web":
            member.proc = start_podium(workdir, self.env(), port=member.port, args=(
                "--no-worker", "--no-scheduler", "--workers", str(self.web_workers)))
        else:
            member.proc = start_worker(member.name, member.kind == "scheduler", self.env(),
                                       workdir)
        member.starts.append(time.monotonic() - started)

    def stop_mlflow(self) -> None:
        self.mlflow.stop()

    def start_mlflow(self) -> None:
        port = int(self.mlflow_url.rsplit(":", 1)[1])
        self.mlflow = start_mlflow(self.workdir / "mlflow", port=port)

    def terminate_backends(self) -> int:
        """``pg_terminate_backend`` every session of the drill's database (but ours)."""
        return int(self._admin(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :db AND pid <> pg_backend_pid()", db=self.db) or 0)

    # --- helpers -------------------------------------------------------------------------

    def _admin(self, sql: str, **params):
        """One statement on the admin database (CREATE/DROP DATABASE need autocommit)."""
        engine = create_engine(normalise_url(self.admin_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(sql), params)
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()


def policy(models: list[str]) -> str:
    """Every fourth model needs both approvers (quorum 2, clicked at the same moment), the
    next one either of them (quorum 1: the second click finds it decided); the rest are
    decided by the policy alone."""
    people = "".join(f"  {name}: {{slack: {uid}}}\n" for name, uid in APPROVERS.items())
    people += "  ops: {api: default}\n"  # the API token's person: rolls back, operates
    lines = ["people:\n" + people, "operators: [ops]\n",
             "default:\n  sandbox: preferred\n  rollback: {approvers: [ops]}\n",
             "models:\n"]
    for i, model in enumerate(models):
        if i % 4 in (0, 1):
            quorum = 2 if i % 4 == 0 else 1
            lines.append(f"  {model}:\n    approval: {{targets: [Production], approvers: "
                         f"[{', '.join(APPROVERS)}], quorum: {quorum}}}\n")
    if len(lines) == 4:
        lines.pop()
    return "".join(lines)
