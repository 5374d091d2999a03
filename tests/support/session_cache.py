"""What several test modules need, made once per test session: the first pytest-xdist worker
that asks makes it under a file lock (the workers share the session's temp root); the others
wait for it and reuse it. A former session's is never reused: the code that made it may have
changed since."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def session_root(tmp_path_factory) -> Path:
    """The temp directory all workers of this session share."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """``<session root>/<name>``, made by ``make(directory)`` on first use in this session
    (a half-made one, from a worker that failed, is made again)."""
    directory = session_root(tmp_path_factory) / name
    directory.parent.mkdir(parents=True, exist_ok=True)
    done = directory.with_name(f"{directory.name}.done")
    with open(directory.with_name(f"{directory.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir(parents=True)
                make(directory)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return directory
