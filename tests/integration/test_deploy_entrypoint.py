"""The image's entrypoint (deploy/entrypoint.sh) outside a container: it migrates, then serves
or runs workers, and a SIGTERM (what `docker stop` and Kubernetes send) drains and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, inspect

from tests.support.draining import finish, half_sent_post, holds_socket, kill_group, listener_inode
from tests.support.settings import DEFAULT_POLICY
from tests.support.waiting import wait_for
from webhook_server.dev.processes import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "MLFLOW_"))}
    env.update(PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
               PODIUM_DATABASE_URL=f"sqlite:///{tmp_path / 'podium.db'}",
               PODIUM_POLICY=DEFAULT_POLICY, PODIUM_MLFLOW_WEBHOOK_SECRET="entrypoint-secret",
               PODIUM_SANDBOX="process", PODIUM_SANDBOX_SPARES="0", **extra)
    return env


def _start(tmp_path: Path, *args: str, **extra: str) -> subprocess.Popen:
    with open(tmp_path / "out.log", "w") as out, open(tmp_path / "err.log", "w") as err:
        return subprocess.Popen(["sh", str(ENTRYPOINT), *args], env=_env(tmp_path, **extra),
                                stdout=out, stderr=err, start_new_session=True)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_entrypoint_migrate_brings_a_new_store_to_the_newest_revision(tmp_path):
    proc = subprocess.run(["sh", str(ENTRYPOINT), "migrate"], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    head = sorted(p.name for p in (ROOT / "webhook_server/store/migrations/versions")
                  .glob("0*.py"))[-1].split("_")[0]
    assert proc.stdout.startswith(f"schema at revision {head}")
    tables = inspect(create_engine(f"sqlite:///{tmp_path / 'podium.db'}")).get_table_names()
    assert {"deliveries", "requests", "jobs", "outbox", "ui_sessions"} <= set(tables)


@pytest.mark.timeout(120)
def test_entrypoint_serve_migrates_serves_and_drains_a_request_in_flight_on_sigterm(tmp_path):
    port = free_port()
    proc = _start(tmp_path, "serve", "--workers", "1", PODIUM_HOST="127.0.0.1",
                  PODIUM_PORT=str(port))
    try:
        ready = wait_for(lambda: _ready(port), timeout=60, what="/readyz 200")
        assert ready["checks"]["database"] == "ok"
        sock, rest = half_sent_post(port, "/webhooks/mlflow", b'{"entity": "model_version"}')
        inode = listener_inode(port)
        assert inode is not None and holds_socket(proc.pid, inode)
        proc.send_signal(signal.SIGTERM)
        # the master closes its listener when it starts stopping; the request is still open
        wait_for(lambda: not holds_socket(proc.pid, inode), timeout=20,
                 what="gunicorn's master to close its listener")
        answer = finish(sock, rest)
        assert answer.startswith("HTTP/1.1 401"), answer  # served (unsigned), not cut off
        assert proc.wait(timeout=40) == 0
        wait_for(lambda: _group_gone(proc.pid), timeout=20,
                 what="the worker process serve started to exit too")
    finally:
        kill_group(proc)
    out = (tmp_path / "out.log").read_text()
    assert out.startswith("schema at revision "), out  # migrate ran first
    assert f"podium: http://127.0.0.1:{port} (1 HTTP workers)" in (tmp_path / "err.log"
                                                                     ).read_text()


@pytest.mark.timeout(120)
def test_entrypoint_worker_stops_on_sigterm_and_exits_zero(tmp_path):
    proc = _start(tmp_path, "worker", "--concurrency", "1")
    try:
        wait_for(lambda: "podium worker: model code isolation" in
                 (tmp_path / "err.log").read_text(), timeout=60, what="the worker's start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        kill_group(proc)
    assert (tmp_path / "out.log").read_text().startswith("schema at revision ")


def _ready(port: int):
    try:
        resp = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except requests.ConnectionError:
        return None
    return resp.json() if resp.status_code == 200 else None
