"""The isolation levels of model code and how each is chosen (``detect``), with what every
level shares: the allow-listed environment (``BASE_ENV``), the bubblewrap command line and
the hardening of Podium's own process. ``isolation.py`` starts a sandbox at a level; its
docstring says what each level gives. Nothing happens at import (``detect`` probes when
called, once per mode).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import pwd
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("sandbox_child.py")
LEVELS = ("bwrap", "user", "process")
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
# What model code may see of the environment: nothing of Podium's, no credentials.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "USER": "model",
            "LOGNAME": "model", "MLFLOW_DISABLE_ENV_MANAGER_CONDA_WARNING": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@dataclass(frozen=True)
class Isolation:
    """The isolation in force and why (``podium serve`` prints ``describe()``)."""

    level: str
    why: str
    user: str | None = None

    @property
    def strong(self) -> bool:
        return self.level == "bwrap"

    def describe(self) -> str:
        return f"model code isolation: {self.level} ({self.why})"


# --- choosing the level --------------------------------------------------------------------

def _libc():
    return ctypes.CDLL(None, use_errno=True)


def harden_process() -> bool:
    """``PR_SET_DUMPABLE=0`` for Podium's own process: another process of the same user can
    no longer read its ``/proc/<pid>/environ`` (the secrets) nor ptrace it."""
    if not sys.platform.startswith("linux"):
        return False
    return _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


@functools.lru_cache(maxsize=8)
def detect(mode: str = "auto", user: str = "nobody") -> Isolation:
    """The isolation ``mode`` gives on this machine (``auto``: the strongest that works).
    A mode that cannot work here falls back to the next level, and says why."""
    if mode not in ("auto", *LEVELS):
        raise ValueError(f"unknown isolation {mode!r} (auto, {', '.join(LEVELS)})")
    notes = []
    if mode in ("auto", "bwrap"):
        problem = _bwrap_problem()
        if problem is None:
            return Isolation("bwrap", "bubblewrap: no network, own PID and user namespace, "
                                      "read-only files")
        notes.append(problem)
    if mode in ("auto", "bwrap", "user"):
        problem = _user_problem(user)
        if problem is None:
            return Isolation("user", "; ".join(notes + [f"runs as {user}; network not "
                                                        "isolated"]), user=user)
        notes.append(problem)
    if _root_namespaces():
        return Isolation("process", "; ".join(notes + [
            "same user as Podium (root): own PID and network namespace, no capabilities; "
            "files root owns stay readable and writable"]))
    return Isolation("process", "; ".join(notes + ["same user as Podium: allow-listed "
                                                   "environment and limits only"]))


def _bwrap_problem() -> str | None:
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    try:
        out = subprocess.run([exe, *_bwrap_args(Path(tempfile.gettempdir())), "--",
                              *_python_argv(), "-c", "pass"],
                             capture_output=True, timeout=30, env=dict(BASE_ENV))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not run here: {exc}"
    if out.returncode != 0:
        first = (out.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        return f"bubblewrap does not run here: {first[:200]}"
    return None


ROOT_NAMESPACES = ["unshare", "--pid", "--fork", "--kill-child", "--net", "--mount-proc",
                   "setpriv", "--bounding-set", "-all", "--inh-caps", "-all",
                   "--no-new-privs"]


@functools.lru_cache(maxsize=1)
def _root_namespaces() -> tuple[str, ...]:
    """For the same-user level when Podium runs as root: the child in its own PID namespace
    (a ``setsid`` grandchild dies with it; ``/proc`` shows only the sandbox) and network
    namespace, without any capability (root's ptrace right would read the worker's memory).
    Empty when util-linux's ``unshare`` / ``setpriv`` cannot do it here."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        return ()
    try:
        out = subprocess.run([*ROOT_NAMESPACES, "true"], capture_output=True, timeout=30,
                             env=dict(BASE_ENV))
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(ROOT_NAMESPACES) if out.returncode == 0 else ()


def _user_problem(user: str) -> str | None:
    if os.geteuid() != 0:
        return "not root, so no separate user"
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return f"no user {user!r}"
    if entry.pw_uid == 0:
        return f"{user!r} is root"
    try:
        out = subprocess.run([*_python_argv(), "-c", "pass"], capture_output=True,
                             timeout=30, env=dict(BASE_ENV), user=entry.pw_uid,
                             group=entry.pw_gid, extra_groups=[], cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{user} cannot run Python: {exc}"
    if out.returncode != 0:
        return (f"{user} cannot run the Python installation at {sys.base_prefix} "
                "(a directory on its path is not readable by others)")
    return None


def _site_packages() -> list[str]:
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    with contextlib.suppress(AttributeError):
        paths += site.getsitepackages()
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def _python_argv() -> list[str]:
    return [sys.executable, "-I", "-S", "-B"]


def _bwrap_args(inputs: Path, tmp_mb: int = 256,
                binds: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """The bubblewrap command line: what exists inside the sandbox, all of it read-only
    except a private /tmp and /dev/shm of ``tmp_mb`` each (memory the address-space limit
    does not count, so it is bounded here); ``binds``: more read-only files ((source,
    destination) pairs)."""
    size = str(tmp_mb * 1024 * 1024)
    # the private /tmp first: later mounts (the installation, the input directory) may live
    # under the host's /tmp and must stay visible on top of it
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", "65534", "--gid", "65534",
            "--size", size, "--tmpfs", "/tmp",  # noqa: S108 (the sandbox's own)
            "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    mounts = {sys.base_prefix, sys.prefix, str(Path(sys.executable).resolve().parent.parent),
              *_site_packages()}
    for path in sorted(mounts):
        if path and not path.startswith("/usr/") and os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", size, "--tmpfs", "/dev/shm",  # noqa: S108 (the sandbox's own)
             "--ro-bind", str(CHILD), "/podium/sandbox_child.py"]
    for source, destination in binds:
        args += ["--ro-bind", source, destination]
    args += ["--ro-bind", str(inputs), str(inputs), "--remount-ro", "/",
             "--chdir", "/tmp"]  # noqa: S108
    return args
