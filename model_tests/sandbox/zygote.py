"""Sandboxes forked from a warm zygote: a model's sandbox without seconds of imports.

A sandbox's start is mostly imports (MLflow, scikit-learn, SciPy, LightGBM, skops: about
3 s of CPU). The zygote (``sandbox_zygote.py``) does them once, inside a bubblewrap sandbox
of its own (the ``bwrap`` level's: no network, uid 65534, no capabilities, read-only
files), and runs no model code; each model then gets a fork of it that makes its own
namespaces inside that sandbox (user, mount, PID, network, IPC, UTS), sees only its own
input directory and a private ``/tmp``, and drops every capability before the model is
loaded. Two walls, then: the outer bubblewrap (what the ``bwrap`` level promises the host)
and the inner namespaces (no model sees another, nor the zygote).

Seen from Podium a forked sandbox is a ``Forked`` process: its pipes, its exit status (from
its init, on a pipe of its own), killed through the zygote or, where it has one, its cgroup
(the zygote joins the sandbox's cgroup for the fork, so everything the model starts is
counted there). Only the ``bwrap`` level has a zygote: without bubblewrap there is no outer
wall, and ``SandboxPool`` starts sandboxes one by one as before.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from model_tests.sandbox.errors import SandboxDied
from model_tests.sandbox.levels import (
    BASE_ENV,
    PR_SET_PDEATHSIG,
    _bwrap_args,
    _libc,
    _python_argv,
    _site_packages,
)

ZYGOTE = Path(__file__).with_name("sandbox_zygote.py")
STATUS_BYTES = 4


class ZygoteUnavailable(RuntimeError):
    """The zygote could not start or stopped answering (the pool starts a new one, or
    sandboxes one by one)."""


class Forked:
    """A sandbox process forked by the zygote, as ``Sandbox`` uses a ``Popen``: ``stdin``,
    ``stdout``, ``poll()``, ``wait(timeout)``, ``kill()``, ``returncode``. Not Podium's
    child: its exit status comes from its init, on ``status_fd``; nothing there means the
    init was killed (``-SIGKILL``)."""

    def __init__(self, zygote: Zygote, pid: int, stdin_fd: int, stdout_fd: int,
                 status_fd: int) -> None:
        self.zygote, self.pid = zygote, pid
        self.stdin = os.fdopen(stdin_fd, "wb", buffering=0)
        self.stdout = os.fdopen(stdout_fd, "rb", buffering=0)
        self._status_fd = status_fd
        self._status = b""
        self.returncode: int | None = None

    def _read_status(self, timeout: float) -> None:
        if self.returncode is not None or self._status_fd < 0:
            return
        ready, _, _ = select.select([self._status_fd], [], [], max(timeout, 0))
        if not ready:
            return
        chunk = os.read(self._status_fd, STATUS_BYTES - len(self._status))
        self._status += chunk
        if len(self._status) == STATUS_BYTES:
            self.returncode = os.waitstatus_to_exitcode(
                int.from_bytes(self._status, "big", signed=True))
        elif not chunk:  # the init died without a word: killed, with its namespace
            self.returncode = -signal.SIGKILL
        if self.returncode is not None:
            self.release()

    def release(self) -> None:
        """Close the status pipe (once the status is read, or the sandbox given up)."""
        if self._status_fd >= 0:
            os.close(self._status_fd)
            self._status_fd = -1
        if self.returncode is None:  # given up on: never alive again
            self.returncode = -signal.SIGKILL

    def poll(self) -> int | None:
        self._read_status(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("sandbox", timeout)
            self._read_status(left)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            self.zygote.kill(self.pid)


class Zygote:
    """One warm zygote in a bubblewrap sandbox of its own (``env``: the sandboxes'
    environment, ``tmp_mb``: the outer sandbox's ``/tmp``). Sandboxes put their input
    directories under ``root``. Start it from a thread that lives as long as it: it dies
    with that thread (``PR_SET_PDEATHSIG``), and every sandbox with it."""

    def __init__(self, env: dict[str, str] | None = None, tmp_mb: int = 256,
                 start_timeout_s: float = 120.0) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="podium-zygote-"))
        self._lock = threading.Lock()
        self._host_pid: int | None = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        environ = {**BASE_ENV, **(env or {})}
        private = "/tmp"  # noqa: S108 (the sandbox's own tmpfs)
        environ.update(HOME=private, TMPDIR=private, MPLCONFIGDIR=private)
        argv = [shutil.which("bwrap") or "bwrap", "--as-pid-1",
                *_bwrap_args(self.root, tmp_mb,
                             binds=((str(ZYGOTE), "/podium/sandbox_zygote.py"),)),
                "--",
                *_python_argv(), "/podium/sandbox_zygote.py", str(theirs.fileno()),
                *_site_packages()]
        self.log_path = self.root.with_name(self.root.name + ".log")
        try:
            with open(self.log_path, "wb") as log_file:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                    env=environ, cwd="/", start_new_session=True,
                    pass_fds=(theirs.fileno(),), preexec_fn=_die_with_thread)
        except OSError as exc:
            self._cleanup()
            raise ZygoteUnavailable(f"the zygote could not start: {exc}") from None
        finally:
            theirs.close()
        try:
            hello = self._receive(start_timeout_s, "starting the zygote")
            if not hello.get("ready"):
                raise ZygoteUnavailable(f"the zygote could not start: {hello.get('error')}")
            self.warm_s = hello.get("warm_s")
            self._probe()
        except BaseException as exc:  # nothing of it is left running
            self.close()
            if isinstance(exc, ZygoteUnavailable | KeyboardInterrupt | SystemExit):
                raise
            raise ZygoteUnavailable(f"the zygote could not start: {exc}") from exc

    def _probe(self) -> None:
        """One fork that makes its namespaces and ends: a machine where they cannot be made
        (no nested user namespaces) has no zygote, rather than sandboxes that never start."""
        inputs = self.root / "probe" / "inputs"
        inputs.mkdir(parents=True)
        with open(os.devnull, "wb") as devnull:
            forked = self.spawn(inputs, 1, {}, devnull.fileno())
        try:
            ready, _, _ = select.select([forked.stdout], [], [], 30)
            hello = os.read(forked.stdout.fileno(), 1 << 16) if ready else b""
            forked.stdin.close()  # the model's process ends at the end of its input
            code = forked.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            forked.kill()
            forked.stdout.close()
            shutil.rmtree(inputs.parent, ignore_errors=True)
        if b'"ready": true' not in hello or code != 0:
            error = hello[4:].decode(errors="replace")[:300] or f"exit status {code}"
            raise ZygoteUnavailable(f"a sandbox cannot be forked here: {error}")

    # --- the socket --------------------------------------------------------------------

    def _receive(self, timeout_s: float, what: str) -> dict:
        try:
            ready, _, _ = select.select([self._sock], [], [], timeout_s)
            data = self._sock.recv(1 << 16) if ready else None
        except OSError:  # reset by a zygote that died with a question unread, or closed
            data = b""
        if not data:
            tail = self.log_tail()
            raise ZygoteUnavailable(
                f"{what}: the zygote " + ("did not answer" if data is None else "ended")
                + (f"; last output: {tail}" if tail else ""))
        return json.loads(data)

    def _ask(self, message: dict, fds: tuple[int, ...] = (), timeout_s: float = 30.0) -> dict:
        data = json.dumps(message).encode()
        try:
            if fds:
                self._sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                             array.array("i", fds))])
            else:
                self._sock.send(data)
        except OSError as exc:
            raise ZygoteUnavailable(f"the zygote is gone: {exc.strerror}") from None
        try:
            return self._receive(timeout_s, message["op"])
        except BaseException:  # a late reply would answer the next question: no more
            with contextlib.suppress(OSError):
                self._sock.close()
            raise

    # --- sandboxes ---------------------------------------------------------------------

    def spawn(self, inputs: Path, tmp_mb: int, rlimits: dict[str, tuple[int, int]],
              stderr_fd: int, procs_files: tuple[str, ...] = ()) -> Forked:
        """Fork a sandbox whose input directory is ``inputs`` (under ``root``), in the
        cgroup of ``procs_files`` when given. ZygoteUnavailable if the zygote is gone."""
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        status_r, status_w = os.pipe()
        theirs = (requests_r, replies_w, stderr_fd, status_w)
        try:
            with self._lock:
                with self._joined(procs_files):
                    reply = self._ask({"op": "spawn", "inputs": str(inputs),
                                       "hide": [str(self.root)],
                                       "tmp_bytes": tmp_mb * 1024 * 1024,
                                       "rlimits": {k: list(v) for k, v in rlimits.items()}},
                                      fds=theirs)
        except BaseException:
            for fd in (requests_w, replies_r, status_r):
                os.close(fd)
            raise
        finally:
            for fd in (requests_r, replies_w, status_w):
                os.close(fd)
        if not reply.get("ok"):
            for fd in (requests_w, replies_r, status_r):
                os.close(fd)
            raise SandboxDied(f"the sandbox could not start: {reply.get('error')}")
        return Forked(self, reply["pid"], requests_w, replies_r, status_r)

    @contextlib.contextmanager
    def _joined(self, procs_files: tuple[str, ...]):
        """The zygote in the sandbox's cgroup while it forks (the fork is born there), then
        back in the cgroups it came from."""
        if not procs_files:
            yield
            return
        pid = self.host_pid()
        back = [str(Path(f).parent.parent / "cgroup.procs") for f in procs_files]
        try:
            try:
                for path in procs_files:
                    _write_pid(path, pid)
            except OSError as exc:
                raise SandboxDied(f"the sandbox could not start: cannot join its cgroup: "
                                  f"{exc.strerror}") from None
            yield
        finally:
            stuck = []
            for path in back:
                try:
                    _write_pid(path, pid)
                except OSError as exc:
                    stuck.append(f"{path}: {exc.strerror}")
            if stuck:  # left in a sandbox's cgroup, it would die with that sandbox: replace it
                raise ZygoteUnavailable(f"the zygote could not leave the sandbox's cgroup "
                                        f"({'; '.join(stuck)})")

    def host_pid(self) -> int:
        """The zygote's PID as this process sees it (bubblewrap's only child)."""
        if self._host_pid is None:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            try:
                found = children.read_text().split()
            except OSError as exc:  # a kernel without CONFIG_PROC_CHILDREN
                raise ZygoteUnavailable(f"the zygote's process cannot be found: "
                                        f"{exc.strerror}") from None
            if len(found) != 1:
                raise ZygoteUnavailable(f"the zygote's process was not found ({found})")
            self._host_pid = int(found[0])
        return self._host_pid

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ZygoteUnavailable), self._lock:
            self._ask({"op": "kill", "pid": pid})

    # --- the zygote itself -------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, limit: int = 300) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return (lines[-1] if lines else "")[:limit]

    def close(self) -> None:
        """End the zygote and with it every sandbox it forked (its PID namespace ends)."""
        with contextlib.suppress(OSError):
            self._sock.close()
        if getattr(self, "proc", None) is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def _write_pid(path: str, pid: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)


def _die_with_thread() -> None:  # in the child, before exec
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


__all__ = ["Forked", "Zygote", "ZygoteUnavailable"]
