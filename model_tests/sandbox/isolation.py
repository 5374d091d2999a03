"""Where model code runs: a sandboxed child process per model (``sandbox_child.py``).

A registered model is code (a pyfunc's ``load_context`` and ``predict`` run arbitrary
Python), so Podium never loads one in its own process. Three levels, strongest first:

- ``bwrap``: bubblewrap with every namespace unshared: no network, its own PID namespace
  (no other process to see), a new user namespace (uid 65534, no capabilities), a read-only
  view of the Python installation, of this one script and of the sandbox's input directory
  (the model's files and the frames to score, put there by Podium), a private ``/tmp``.
  Nothing else of the host exists inside: not the store, not the policy, not ``/etc``.
- ``user``: Podium runs as root without bubblewrap: the child runs as an unprivileged user
  (``nobody``), so it reads only world-readable files; the network is not isolated.
- ``process``: the same user as Podium: the allow-listed environment, the limits and the
  worker's ``PR_SET_DUMPABLE=0`` (its ``/proc/<pid>/environ`` is unreadable to another
  process of an ordinary user). When Podium runs as root, the child also gets its own PID and
  network namespace and no capabilities (``unshare`` + ``setpriv``): root's ptrace right
  would otherwise read the worker's memory; the files root owns stay readable and
  writable, so this level does not stop a hostile model (``sandbox: required``).

At every level: an environment built from an allow-list (never Podium's), address-space,
CPU-time and file-size limits, a wall-clock deadline on every call, and the whole process
group (with bubblewrap: the whole PID namespace) killed at the end. Where this machine lets
Podium make one (``cgroups.py``), every sandbox runs in a cgroup of its own: a memory
maximum, a process maximum and a CPU share for all of its processes together; a limit the
model hits is its failure, named (``SandboxLimit``), and whatever is left in the cgroup is
killed and the cgroup removed with the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from model_tests.sandbox.cgroups import Cgroup, CgroupError, CgroupLimits, Cgroups
from model_tests.sandbox.errors import (
    ModelFailed,
    SandboxDied,
    SandboxError,
    SandboxLimit,
    SandboxTimeout,
)
from model_tests.sandbox.levels import (
    BASE_ENV,
    CHILD,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    Isolation,
    _bwrap_args,
    _libc,
    _python_argv,
    _root_namespaces,
    _site_packages,
)
from model_tests.sandbox.sandbox_child import HEADER, MAX_MESSAGE

EXIT_GRACE_S = 2.0  # how long a sandbox whose pipe ended has to report its exit

if TYPE_CHECKING:
    from model_tests.sandbox.zygote import Zygote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 4096
    cpu_s: int = 600
    timeout_s: float = 300.0
    file_mb: int = 256
    tmp_mb: int = 256  # the sandbox's in-memory /tmp and /dev/shm (bwrap)
    start_timeout_s: float = 120.0
    # the sandbox's cgroup (all of its processes together); None: memory_mb
    total_memory_mb: int | None = None
    pids: int = 256
    cpu_shares: int = 512

    def cgroup(self) -> CgroupLimits:
        return CgroupLimits(memory_mb=self.total_memory_mb or self.memory_mb,
                            pids=self.pids, cpu_shares=self.cpu_shares)


# --- one sandbox ---------------------------------------------------------------------------

def _limit(limits: Limits, no_new_privs: bool, join: tuple[str, ...] = (),
           user: tuple[int, int] | None = None, nproc: int | None = None):
    def preexec() -> None:  # in the child, before exec: only syscalls
        for procs in join:  # its cgroup, before it runs anything of its own
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:  # every process of the user counts (never root's)
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if user is not None:  # after joining the cgroup (root's right), before the rest
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
        libc = _libc()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if no_new_privs:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return preexec


class Sandbox:
    """One started sandbox: its input directory (``inputs``, written by Podium, read-only
    inside) and a process that warms up and then answers ``load`` and ``predict``. With
    ``zygote`` (the ``bwrap`` level), a fork of it: warm already, with the zygote's
    environment (``env`` is the zygote's business)."""

    def __init__(self, isolation: Isolation, limits: Limits | None = None,
                 env: dict[str, str] | None = None, cgroups: Cgroups | None = None,
                 zygote: Zygote | None = None) -> None:
        self.isolation, self.limits = isolation, limits or Limits()
        limits = self.limits
        try:
            self.cgroup = Cgroup(cgroups, limits.cgroup()) if cgroups and cgroups.available \
                else None
        except CgroupError as exc:
            raise SandboxDied(f"the sandbox could not start: {exc.strerror}") from None
        self.root = Path(tempfile.mkdtemp(prefix="podium-sandbox-",
                                          dir=zygote.root if zygote is not None else None))
        self.inputs = self.root / "inputs"
        self.inputs.mkdir()
        self.stderr_path = self.root / "stderr.log"
        self._ready = False
        self._max = MAX_MESSAGE
        self._buffer = b""
        self._frames = 0
        self.warm_s: float | None = None
        self.forked = False
        if zygote is not None:
            self._fork(zygote)
            return
        work = self.root / "work"
        work.mkdir()
        environ = {**BASE_ENV, **(env or {})}
        user = None
        if isolation.level == "bwrap":
            private = "/tmp"  # noqa: S108 (the sandbox's own tmpfs)
            environ.update(HOME=private, TMPDIR=private, MPLCONFIGDIR=private)
            argv = [shutil.which("bwrap") or "bwrap", *_bwrap_args(self.inputs, limits.tmp_mb),
                    "--",
                    *_python_argv(), "/podium/sandbox_child.py", *_site_packages()]
        else:
            environ.update(HOME=str(work), TMPDIR=str(work), MPLCONFIGDIR=str(work))
            argv = [*_python_argv(), str(CHILD), *_site_packages()]
            if isolation.level == "process" and _root_namespaces():
                argv = [*_root_namespaces(), "sh", "-c", '"$@"; exit $?', "sh", *argv]
            if isolation.level == "user":
                entry = pwd.getpwnam(isolation.user or "nobody")
                # readable (not writable) by the sandbox user: the model's files
                os.chmod(self.root, 0o755)  # noqa: S103
                os.chmod(self.inputs, 0o755)  # noqa: S103
                os.chown(work, entry.pw_uid, entry.pw_gid)
                os.chmod(work, 0o700)
                user = (entry.pw_uid, entry.pw_gid)
        # RLIMIT_NPROC where it applies (not root) and no cgroup counts this sandbox alone
        nproc = limits.pids if user is not None and self.cgroup is None else None
        preexec = _limit(limits, no_new_privs=isolation.level != "bwrap", user=user,
                         join=self.cgroup.procs_files if self.cgroup else (), nproc=nproc)
        try:
            with open(self.stderr_path, "wb") as stderr:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                    env=environ, cwd=str(work), start_new_session=True, close_fds=True,
                    preexec_fn=preexec)
        except BaseException:
            self._abandon()
            raise

    def _fork(self, zygote: Zygote) -> None:
        """The sandbox as a fork of ``zygote`` (its imports done): the same limits, in its
        own namespaces inside the zygote's bubblewrap (``zygote.py``)."""
        limits = self.limits
        mem, size = limits.memory_mb * 1024 * 1024, limits.file_mb * 1024 * 1024
        rlimits = {"as": (mem, mem), "cpu": (limits.cpu_s, limits.cpu_s + 5),
                   "fsize": (size, size), "core": (0, 0)}
        try:
            with open(self.stderr_path, "wb") as stderr:
                self.proc = zygote.spawn(self.inputs, limits.tmp_mb, rlimits, stderr.fileno(),
                                         self.cgroup.procs_files if self.cgroup else ())
        except BaseException:
            self._abandon()
            raise
        self.forked = True

    def _abandon(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- paths as the sandbox sees them ----------------------------------------------

    def inside(self, path: Path) -> str:
        """``path`` (under ``inputs``) as the sandboxed process names it: the same path at
        every level (bubblewrap binds the directory where it is)."""
        return str(path)

    def write_frame(self, frame) -> str:
        """Put ``frame`` where the sandbox can read it (Podium writes, the model reads). One
        frame at a time: the one written before is removed (its call is over)."""
        import pickle

        if self._frames:
            (self.inputs / f"frame-{self._frames}.pkl").unlink(missing_ok=True)
        self._frames += 1
        path = self.inputs / f"frame-{self._frames}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(frame, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return self.inside(path)

    # --- protocol --------------------------------------------------------------------

    def ready(self) -> None:
        if self._ready:
            return
        hello = self._receive(self.limits.start_timeout_s, "starting the sandbox")
        if not hello.get("ready"):
            self.close()
            raise SandboxDied(f"the sandbox could not start: {hello.get('error')}")
        self.warm_s = hello.get("warm_s")
        self._ready = True

    def restrict(self, limits: CgroupLimits) -> None:
        """The cgroup limits of one model (its policy's ``sandbox_limits``) on a started
        sandbox; CgroupError when it already holds more memory than they allow."""
        if self.cgroup is not None and limits != self.cgroup.limits:
            try:
                self.cgroup.set_limits(limits)
            except OSError as exc:
                raise CgroupError(exc.errno, f"cannot apply {limits.describe()}: "
                                  f"{exc.strerror}") from None

    def call(self, op: str, timeout_s: float | None = None, max_bytes: int = 1 << 20,
             **args) -> tuple[dict, float]:
        """Send one request and wait for its reply: (reply, seconds the call took). A reply
        longer than ``max_bytes`` is not a reply (Podium never holds more than it asked for).
        A failure after the model hit a cgroup limit names the limit."""
        before = self.cgroup.usage() if self.cgroup is not None else None
        try:
            return self._call(op, timeout_s, max_bytes, args)
        except SandboxError as exc:
            hit = self.cgroup.exceeded(before) if self.cgroup is not None else None
            if hit is None:
                raise
            if isinstance(exc, ModelFailed):
                raise ModelFailed(f"{hit}: {exc.reason}"[:1000], exc.kinds) from None
            self.close()
            raise SandboxLimit(f"{op}: {hit} ({exc.reason})"[:1000]) from None

    def _call(self, op: str, timeout_s: float | None, max_bytes: int,
              args: dict) -> tuple[dict, float]:
        self.ready()
        self._max = min(max_bytes, MAX_MESSAGE)
        data = json.dumps({"op": op, **args}).encode()
        try:
            os.write(self.proc.stdin.fileno(), HEADER.pack(len(data)) + data)
        except OSError:
            raise self._died(op) from None
        started = time.perf_counter()
        try:
            reply = self._receive(self.limits.timeout_s if timeout_s is None else timeout_s,
                                  op)
        finally:
            self._max = MAX_MESSAGE
        took = time.perf_counter() - started
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            self.close()
            raise SandboxDied(f"{op}: the sandbox answered something that is not a reply")
        if not reply["ok"]:
            kinds = reply.get("kinds") if isinstance(reply.get("kinds"), list) else []
            raise ModelFailed(str(reply.get("error"))[:1000],
                              tuple(str(k) for k in kinds))
        return reply, took

    def _receive(self, timeout_s: float, what: str) -> dict:
        """One framed message, read without blocking past the deadline."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buffer) >= HEADER.size:
                (size,) = HEADER.unpack(self._buffer[:HEADER.size])
                if size > self._max:
                    self.close()
                    raise SandboxDied(f"{what}: the sandbox sent a message of {size:,} bytes "
                                      f"(more than {self._max:,}): not a reply")
                if len(self._buffer) >= HEADER.size + size:
                    body = self._buffer[HEADER.size:HEADER.size + size]
                    self._buffer = self._buffer[HEADER.size + size:]
                    try:
                        return json.loads(body)
                    except (ValueError, RecursionError):  # not JSON, or nested to blow up
                        self.close()
                        raise SandboxDied(f"{what}: the sandbox sent something that is not "
                                          "JSON: not a reply") from None
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise SandboxTimeout(f"{what} did not finish within {timeout_s:g} s; the "
                                     "sandbox was killed")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise self._died(what)
            self._buffer += chunk

    def _died(self, what: str) -> SandboxDied:
        # its pipe ends as the model's process does, a moment before its exit is reported
        # (a fork's init must still reap it and write its status): killed at once, any
        # death would read as the SIGKILL of that kill
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=EXIT_GRACE_S)
        self.close()
        code = self.proc.returncode
        how = (f"was killed by signal {-code} ({_signal_name(-code)})" if code and code < 0
               else f"exited with status {code}")
        tail = self.stderr_tail()
        return SandboxDied(f"{what}: the sandbox {how}" + (f"; last output: {tail}"
                                                           if tail else ""))

    def stderr_tail(self, limit: int = 300) -> str:
        try:
            with open(self.stderr_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 4096))
                lines = fh.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return (lines[-1] if lines else "")[:limit]

    def close(self) -> None:
        """Kill the whole process group (with bubblewrap, the PID namespace goes with its
        init) and wait for it; the input directory stays until ``remove``."""
        members = self.cgroup.members() if self.cgroup is not None else {}
        group = not self.forked  # a forked sandbox's init is killed through its zygote
        if self.proc.poll() is None:
            if group:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if group and self.proc.returncode is not None:  # stragglers that outlived it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.cgroup is not None:  # and of the cgroup (a setsid() grandchild too), and
            self.cgroup.kill(known=members)  # wait for those the namespace's end killed
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        if self.forked:
            self.proc.release()

    def remove(self) -> None:
        self.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"
