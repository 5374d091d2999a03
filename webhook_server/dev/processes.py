"""Local processes for the demo, the benchmarks and the integration tests: a real
``mlflow server`` (SQLite backend, webhooks to 127.0.0.1 allowed) and ``podium serve``."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    name: str
    url: str
    proc: subprocess.Popen
    log_path: Path
    extra: dict = field(default_factory=dict)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the process group (children included), SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc, signal.SIGKILL)
                self.proc.wait()
        # a child that outlived its parent (e.g. the job worker of a killed serve)
        _signal_group(self.proc, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_http(proc: Process, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}; "
                               f"log {proc.log_path}:\n{proc.log_tail()}")
        try:
            if requests.get(proc.url + path, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{proc.name} did not answer {path} within {timeout:.0f} s; "
                       f"log {proc.log_path}:\n{proc.log_tail()}")


def bin_path(name: str) -> str:
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def start_mlflow(workdir: Path, port: int | None = None, timeout: float = 60) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PODIUM_"))}
    env.update(MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
               MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
               # A registered webhook is seen by the next event, not a minute later.
               MLFLOW_WEBHOOK_CACHE_TTL="1",
               # MLflow 3.17 starts a job runner and seven huey consumers by default (each
               # a Python process importing MLflow, ~250 MB): the registry and its webhooks
               # need none of them, and they share the cores with the model checks.
               MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
               # MLflow encrypts webhook secrets with this key, a random one per process
               # when unset: a server restarted on the same store could no longer sign a
               # single delivery. One key per working directory, kept beside the store.
               MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=_webhook_key(workdir))
    log_path = workdir / "mlflow.log"
    # MLflow's `server` command, its uvicorn run in the same process (mlflow_server.py)
    cmd = [sys.executable, "-m", "webhook_server.dev.mlflow_server",
           "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
           "--artifacts-destination", str(workdir / "artifacts"), "--workers", "1"]
    return _spawn("mlflow server", cmd, env, workdir, port, log_path, "/health", timeout)


def _webhook_key(workdir: Path) -> str:
    path = workdir / "webhook-secret.key"
    if not path.exists():
        path.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))  # a Fernet key
        path.chmod(0o600)
    return path.read_text()


def start_podium(workdir: Path, env: dict[str, str], port: int | None = None,
                 args: tuple[str, ...] = (), timeout: float = 60) -> Process:
    """``podium serve`` as a child process; ``env`` carries its settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("MLFLOW_", "PODIUM_", "SLACK_", "GITLAB_"))}
    full_env.update(env)
    log_path = workdir / f"podium-{port}.log"
    cmd = [bin_path("podium"), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    return _spawn("podium serve", cmd, full_env, workdir, port, log_path, "/healthz", timeout)


def _spawn(name: str, cmd: list[str], env: dict[str, str], workdir: Path, port: int,
           log_path: Path, ready_path: str, timeout: float) -> Process:
    """Start ``cmd`` in its own process group, logging to ``log_path``; wait until ready."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=workdir, start_new_session=True)
    p = Process(name, f"http://127.0.0.1:{port}", proc, log_path)
    wait_http(p, ready_path, timeout)
    return p
