"""A cgroup per sandbox: one ceiling for everything a model's processes hold together.

The per-process limits (``isolation.py``: address space, CPU time, file size) bound each
process, not their sum: a model that forks holds N times the limit, and a fork bomb has no
limit at all. Each sandbox therefore runs in a cgroup of its own, made below Podium's own
(``/proc/self/cgroup``), with a memory maximum (no swap beyond it), a process maximum and a
CPU share; the sandbox's first process joins it before it runs anything, so every process
and thread it makes is inside. Exceeding a limit is read back from the cgroup's counters
(an OOM kill, a refused fork) and becomes the model's failure, with the limit named.

- cgroup v2: where Podium's own cgroup delegates ``memory`` and ``pids`` to its children.
- cgroup v1: where the ``memory`` and ``pids`` hierarchies (``cpu`` if present) are
  writable at Podium's own place in each (usually: Podium runs as root).

``detect(root)`` says which, or why none (then only the per-process limits hold: ``podium
worker`` says so at start, and ``sandbox: required`` refuses to run model code unless the
policy's ``sandbox_limits.accept_per_process`` accepts it). Nothing happens at import.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MIB = 1024 * 1024
V1 = ("memory", "pids", "cpu")  # the hierarchies used under v1 (cpu: optional)
_COUNTER = itertools.count(1)


class CgroupError(OSError):
    """A sandbox's cgroup could not be made or limited."""


@dataclass(frozen=True)
class CgroupLimits:
    """What one sandbox's processes may hold together."""

    memory_mb: int = 4096
    pids: int = 256
    cpu_shares: int = 512  # cgroup v1 cpu.shares (1024: an ordinary process's weight)

    def describe(self) -> str:
        return f"memory {self.memory_mb} MiB, pids {self.pids}, cpu shares {self.cpu_shares}"


@dataclass(frozen=True)
class Cgroups:
    """Where this process may make a sandbox's cgroup: ``version`` ``v1`` / ``v2`` with the
    parent directory of each controller (``parents``), or None and ``why``."""

    version: str | None
    why: str = ""
    parents: tuple[tuple[str, str], ...] = ()

    @property
    def available(self) -> bool:
        return self.version is not None

    def describe(self, limits: CgroupLimits) -> str:
        if self.version is None:
            return f"limits: per-process only (no writable cgroup: {self.why})"
        return f"limits: cgroup {self.version} ({limits.describe()})"


def detect(root: str | None = "/sys/fs/cgroup",
           proc_cgroup: str = "/proc/self/cgroup") -> Cgroups:
    """Whether a sandbox's cgroup can be made here (a probe cgroup is made and removed)."""
    if not root:
        return Cgroups(None, "no cgroup root configured (PODIUM_SANDBOX_CGROUP_ROOT)")
    base = Path(root)
    if not base.is_dir():
        return Cgroups(None, f"{root} does not exist")
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError as exc:
        return Cgroups(None, f"cannot read {proc_cgroup}: {exc.strerror}")
    own: dict[str, tuple[str, str]] = {}  # controller -> (hierarchy name, own path)
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for name in parts[1].split(",") if parts[1] else [""]:
                own[name] = (parts[1], parts[2])
    if (base / "cgroup.controllers").exists():
        return _detect_v2(base, own.get("", ("", "/"))[1])
    return _detect_v1(base, own)


def _detect_v1(base: Path, own: dict[str, tuple[str, str]]) -> Cgroups:
    parents, problems = [], []
    for controller in V1:
        if controller not in own:
            if controller != "cpu":
                problems.append(f"no {controller} hierarchy in /proc/self/cgroup")
            continue
        hierarchy, path = own[controller]
        top = base / hierarchy if (base / hierarchy).is_dir() else base / controller
        parent = top / path.lstrip("/")
        problem = _probe(parent, {"memory": "memory.limit_in_bytes", "pids": "pids.max",
                                  "cpu": "cpu.shares"}[controller])
        if problem is None:
            parents.append((controller, str(parent)))
        elif controller != "cpu":  # optional: without it, no CPU share
            problems.append(problem)
    if problems:
        return Cgroups(None, "; ".join(problems))
    return Cgroups("v1", parents=tuple(parents))


def _detect_v2(base: Path, path: str) -> Cgroups:
    parent = base / path.lstrip("/")
    try:
        offered = (parent / "cgroup.controllers").read_text().split()
        delegated = (parent / "cgroup.subtree_control").read_text().split()
    except OSError as exc:
        return Cgroups(None, f"cgroup v2 at {parent}: {exc.strerror}")
    missing = [c for c in ("memory", "pids") if c not in offered]
    if missing:
        return Cgroups(None, f"cgroup v2 at {parent} is not given {', '.join(missing)}")
    wanted = [c for c in ("memory", "pids", "cpu") if c in offered and c not in delegated]
    if wanted:
        try:
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        except OSError as exc:
            if "memory" in wanted or "pids" in wanted:
                return Cgroups(None, f"cgroup v2 at {parent} does not delegate memory and "
                                     f"pids to its children ({exc.strerror}: run Podium "
                                     "in a cgroup of its own, e.g. systemd Delegate=yes)")
    problem = _probe(parent, "memory.max")
    if problem:
        return Cgroups(None, problem)
    return Cgroups("v2", parents=(("", str(parent)),))


def _probe(parent: Path, control: str) -> str | None:
    """Why no cgroup can be made below ``parent`` (None: one can)."""
    probe = parent / f"podium-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
    except OSError as exc:
        return f"cannot make a cgroup in {parent} ({exc.strerror})"
    try:
        if not (probe / control).exists():
            return f"{parent} has no {control}"
        return None
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _fields(text: str) -> dict[str, int]:
    """``key value`` lines (memory.events, pids.events, memory.oom_control) as numbers."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class Usage:
    """What a sandbox's cgroup held at most, and how often a limit stopped it."""

    memory_peak_mb: float | None
    pids_current: int | None
    pids_peak: int | None
    oom_kills: int
    forks_refused: int


class Cgroup:
    """One sandbox's cgroup (one directory per controller under v1). ``procs_files`` are
    what the sandbox's first process writes ``0`` to, before ``exec``, to join it."""

    def __init__(self, cgroups: Cgroups, limits: CgroupLimits) -> None:
        if cgroups.version is None:
            raise CgroupError(errno.ENOTSUP, f"no cgroup: {cgroups.why}")
        self.version = cgroups.version
        self.name = f"podium-sandbox-{os.getpid()}-{next(_COUNTER)}-{uuid.uuid4().hex[:6]}"
        self.dirs = {controller: Path(parent) / self.name
                     for controller, parent in cgroups.parents}
        self.limits = limits
        made = []
        try:
            for directory in self.dirs.values():
                directory.mkdir()
                made.append(directory)
            self.set_limits(limits, first=True)
        except OSError as exc:
            for directory in made:
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise CgroupError(exc.errno, f"cannot make the sandbox's cgroup: {exc}") from None

    @property
    def procs_files(self) -> tuple[str, ...]:
        return tuple(str(d / "cgroup.procs") for d in self.dirs.values())

    def _dir(self, controller: str) -> Path | None:
        return self.dirs.get("" if self.version == "v2" else controller)

    def set_limits(self, limits: CgroupLimits, first: bool = False) -> None:
        """Apply ``limits`` (also to a running sandbox: a model's own limits). OSError when
        the memory in use is already above the new maximum."""
        memory = limits.memory_mb * MIB
        if self.version == "v2":
            d = self.dirs[""]
            _write(d / "memory.max", str(memory))
            with contextlib.suppress(OSError):
                _write(d / "memory.swap.max", "0")
            _write(d / "pids.max", str(limits.pids))
            if (d / "cpu.weight").exists():  # shares 2..262144 -> weight 1..10000
                _write(d / "cpu.weight",
                       str(1 + (limits.cpu_shares - 2) * 9999 // 262142))
        else:
            d = self.dirs["memory"]
            swap = d / "memory.memsw.limit_in_bytes"
            # memsw (memory + swap) is never below the memory limit: order the two writes
            order = [d / "memory.limit_in_bytes"] + ([swap] if swap.exists() else [])
            if not first and memory > self.limits.memory_mb * MIB:
                order.reverse()
            for path in order:
                _write(path, str(memory))
            _write(self.dirs["pids"] / "pids.max", str(limits.pids))
            if "cpu" in self.dirs:
                _write(self.dirs["cpu"] / "cpu.shares", str(limits.cpu_shares))
        self.limits = limits

    def usage(self) -> Usage:
        mem, pids = self._dir("memory"), self._dir("pids")
        if self.version == "v2":
            peak = _number(_read(mem / "memory.peak"))
            kills = _fields(_read(mem / "memory.events")).get("oom_kill", 0)
        else:
            peak = _number(_read(mem / "memory.max_usage_in_bytes"))
            control = _fields(_read(mem / "memory.oom_control"))
            kills = control.get("oom_kill", _number(_read(mem / "memory.failcnt")) or 0)
        return Usage(memory_peak_mb=None if peak is None else round(peak / MIB, 1),
                     pids_current=_number(_read(pids / "pids.current")),
                     pids_peak=_number(_read(pids / "pids.peak")),
                     oom_kills=kills,
                     forks_refused=_fields(_read(pids / "pids.events")).get("max", 0))

    def exceeded(self, since: Usage | None = None) -> str | None:
        """Which limit stopped the sandbox's processes (after ``since``: the counters before
        a call), for a person; None: none did."""
        used, reasons = self.usage(), []
        if used.oom_kills > (since.oom_kills if since else 0):
            reasons.append(f"the model exceeded the sandbox memory limit "
                           f"({self.limits.memory_mb} MiB)")
        if used.forks_refused > (since.forks_refused if since else 0):
            reasons.append(f"the model exceeded the sandbox process limit "
                           f"({self.limits.pids})")
        return "; ".join(reasons) or None

    def pids(self) -> set[int]:
        out: set[int] = set()
        for directory in self.dirs.values():
            out.update(int(p) for p in _read(directory / "cgroup.procs").split() if p.isdigit())
        return out

    def members(self) -> dict[int, str | None]:
        """The cgroup's processes now, each with its start time (a reused pid differs)."""
        return {pid: _stat(pid)[1] for pid in self.pids()}

    def kill(self, timeout_s: float = 10.0,
             known: dict[int, str | None] | None = None) -> bool:
        """SIGKILL every process in the cgroup until none is left (the process limit keeps
        a fork bomb from outrunning it) and wait until each is dead; False if some were
        left at ``timeout_s``. ``known`` (``members()`` taken before another kill, e.g. of
        the PID namespace's init) are waited for too: a killed process leaves the cgroup
        before it has finished dying, so an empty cgroup alone does not mean nothing runs."""
        deadline = time.monotonic() + timeout_s
        kill_file = self.dirs.get("", Path("/nonexistent")) / "cgroup.kill"
        signalled = dict(known or {})  # pid -> its start time
        while True:
            left = self.pids()
            if not left:
                # a killed process leaves the cgroup before it has finished dying: wait
                # until each one is gone or a zombie, so "killed" means nothing still runs
                return _wait_dead(signalled, deadline)
            if self.version == "v2" and kill_file.exists():
                with contextlib.suppress(OSError):
                    _write(kill_file, "1")
            for pid in left:
                started = signalled.get(pid) or _stat(pid)[1]
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    signalled[pid] = started
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def remove(self, timeout_s: float = 10.0) -> bool:
        """Kill what is left, then remove the cgroup (its directories); False, with a
        warning, if it could not be removed."""
        self.kill(timeout_s)
        deadline = time.monotonic() + timeout_s
        for directory in self.dirs.values():
            while directory.exists():
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    break
                except OSError as exc:  # EBUSY: a killed process not yet gone
                    if time.monotonic() > deadline:
                        log.warning("the sandbox cgroup %s was left: %s", directory, exc)
                        return False
                    time.sleep(0.01)
        return True


def _stat(pid: int) -> tuple[str | None, str | None]:
    """A process's state letter and start time from ``/proc/<pid>/stat``; (None, None) when
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None, None


def _wait_dead(pids: dict[int, str | None], deadline: float) -> bool:
    """Wait until every process (pid -> start time) is gone or a zombie."""
    def running(pid: int, started: str | None) -> bool:
        state, now = _stat(pid)
        return state not in (None, "Z", "X") and (started is None or now == started)
    while any(running(pid, started) for pid, started in pids.items()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
