"""MLflow server directories made once per test session and copied for each module.

Every integration module gets its own `mlflow server` (the reconciler of one module never
sees the versions of another), but a fresh server spends seconds creating its SQLite schema,
and the workflow modules each trained the same three versions. Here the first worker that
needs a directory makes it (under a file lock: pytest-xdist workers share the session's temp
root), and every module starts its own server on a copy: same schema, same trained versions,
its own files. Artifact URIs are `mlflow-artifacts:/...`, relative to the server, so a copy
serves its own artifacts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from webhook_server.dev.processes import Process, start_mlflow

SEEDS = ("empty", "churn-wf")
ROOT = Path(__file__).resolve().parents[2]


def _session_root(tmp_path_factory) -> Path:
    """The temp directory all workers of this session share (one run's, never a former
    run's: the code that made a template may have changed since)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _make(directory: Path, seed: str) -> None:
    """Made in a child process: what MLflow caches in a process that trained (artifact
    repositories by URI, the tracking URI) must not point a worker at this stopped server."""
    done = subprocess.run([sys.executable, "-m", "tests.support.mlflow_template",
                           str(directory), seed], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"could not make the {seed!r} MLflow template:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-3000:]}")


def _make_here(directory: Path, seed: str) -> None:
    server = start_mlflow(directory)
    try:
        versions = {}
        if seed == "churn-wf":
            from tests.support.workflow_versions import train_versions

            versions = train_versions(server)
        (directory / "versions.json").write_text(json.dumps(versions))
    finally:
        server.stop()
    for leftover in directory.glob("*.log"):
        leftover.unlink()


def template(tmp_path_factory, seed: str = "empty") -> Path:
    """The session's template directory for ``seed`` (made on first use)."""
    if seed not in SEEDS:
        raise ValueError(f"unknown MLflow seed {seed!r}: one of {', '.join(SEEDS)}")
    root = _session_root(tmp_path_factory) / "mlflow-templates"
    root.mkdir(exist_ok=True)
    directory = root / seed
    with _locked(root / f"{seed}.lock"):
        if not (directory / "versions.json").exists():
            shutil.rmtree(directory, ignore_errors=True)
            _make(directory, seed)
    return directory


def start_seeded(tmp_path_factory, seed: str = "empty") -> Process:
    """A real `mlflow server` of its own on a copy of the session's ``seed`` directory;
    ``server.extra["versions"]`` holds the versions the seed registered."""
    source = template(tmp_path_factory, seed)
    workdir = tmp_path_factory.mktemp("mlflow")
    shutil.copytree(source, workdir, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("versions.json"))
    server = start_mlflow(workdir)
    server.extra["versions"] = json.loads((source / "versions.json").read_text())
    return server


if __name__ == "__main__":
    _make_here(Path(sys.argv[1]), sys.argv[2])
