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

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.session_cache import once
from webhook_server.dev.processes import Process, start_mlflow

SEEDS = ("empty", "churn-wf")
ROOT = Path(__file__).resolve().parents[2]


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
    return once(tmp_path_factory, f"mlflow-templates/{seed}",
                lambda directory: _make(directory, seed))


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
