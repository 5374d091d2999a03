"""Sandboxes started ahead of requests: a model's checks never wait for the imports."""

from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from model_tests.sandbox.cgroups import CgroupError, CgroupLimits, Cgroups
from model_tests.sandbox.cgroups import detect as detect_cgroups
from model_tests.sandbox.errors import SandboxError, SandboxUnavailable
from model_tests.sandbox.isolation import Limits, Sandbox
from model_tests.sandbox.levels import Isolation
from model_tests.sandbox.zygote import Zygote, ZygoteUnavailable

log = logging.getLogger(__name__)


class LimitOverrides(Protocol):
    """A model's own cgroup limits over the pool's (None: the pool's). The policy's
    ``sandbox_limits`` section has this shape; the sandbox does not import the policy."""

    @property
    def memory_mb(self) -> int | None: ...

    @property
    def pids(self) -> int | None: ...

    @property
    def cpu_shares(self) -> int | None: ...


class SandboxPool:
    """Sandboxes started ahead of requests (their imports take seconds). Every sandbox is
    spawned from one long-lived thread: a sandbox dies with the thread that started it
    (``PR_SET_PDEATHSIG``), and a worker thread may not live as long as a spare. Each
    sandbox gets a cgroup of its own where ``cgroups`` (default: detected) can make one.
    At the ``bwrap`` level with ``zygote`` (the default), sandboxes are forks of one warm
    zygote (``zygote.py``: the imports once, a fork per model); if it cannot start, they
    start one by one, and the pool says why (``describe_start``)."""

    def __init__(self, isolation: Isolation, limits: Limits | None = None,
                 env: dict[str, str] | None = None, spares: int = 2,
                 cgroups: Cgroups | None = None, zygote: bool = True) -> None:
        self.isolation, self.limits = isolation, limits or Limits()
        self.env, self.spares = env, spares
        self.cgroups = cgroups if cgroups is not None else detect_cgroups()
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="sandbox-spawner")
        self._ready: list[Sandbox] = []
        self._lock = threading.Lock()
        self.started = 0
        self.use_zygote = zygote and isolation.level == "bwrap"
        self.zygote: Zygote | None = None
        self.zygote_problem = "" if self.use_zygote else (
            "off" if isolation.level == "bwrap" else f"none at the {isolation.level} level")

    def _start(self) -> Sandbox:
        sandbox = self._spawner.submit(self._new).result()
        self.started += 1
        return sandbox

    def _new(self) -> Sandbox:  # in the spawner thread: a zygote lives as long as it
        for _ in range(2):  # one that died (its bubblewrap not yet gone): a new one, once
            zygote = self._zygote()
            if zygote is None:
                break
            try:
                return Sandbox(self.isolation, self.limits, self.env, self.cgroups, zygote)
            except ZygoteUnavailable as exc:
                log.warning("the sandbox zygote stopped: %s", exc)
                zygote.close()
                self.zygote = None
        return Sandbox(self.isolation, self.limits, self.env, self.cgroups)

    def _zygote(self) -> Zygote | None:
        if not self.use_zygote:
            return None
        if self.zygote is not None and self.zygote.alive:
            return self.zygote
        if self.zygote is not None:
            self.zygote.close()
        try:
            self.zygote = Zygote(self.env, self.limits.tmp_mb, self.limits.start_timeout_s)
        except ZygoteUnavailable as exc:
            log.warning("sandboxes start one by one (no zygote): %s", exc)
            self.use_zygote, self.zygote, self.zygote_problem = False, None, str(exc)
            return None
        log.info("sandbox zygote started (its imports: %s s): each sandbox is a fork of it",
                 self.zygote.warm_s)
        return self.zygote

    def describe_start(self) -> str:
        """How sandboxes start: ``sandboxes: forked from a warm zygote`` or ``sandboxes:
        started one by one (why)``."""
        if self.use_zygote:
            return "sandboxes: forked from a warm zygote (imports once, own namespaces each)"
        return f"sandboxes: started one by one (zygote: {self.zygote_problem})"

    def warm(self) -> None:
        """Start spares up to ``spares`` (the worker does at start and after each use), and
        the zygote first (with no spares, the first sandbox starts it)."""
        if self.spares and self.use_zygote and self.zygote is None:
            self._spawner.submit(self._zygote).result()
        with self._lock:
            self._ready = [s for s in self._ready if s.alive or s.remove()]
            while len(self._ready) < self.spares:
                self._ready.append(self._start())

    def describe_limits(self) -> str:
        """``limits: cgroup v1 (memory ... MiB, pids ...)`` or ``limits: per-process only
        (no writable cgroup: why)``: what ``podium worker`` says at start."""
        return self.cgroups.describe(self.limits.cgroup())

    def take(self, overrides: LimitOverrides | None = None) -> Sandbox:
        """A started sandbox, with the cgroup limits ``overrides`` (a model's policy) over
        the pool's. Every spare has finished its imports when this returns: a spare still
        importing beside a model's checks would slow its measured latency.
        SandboxUnavailable when none can be had."""
        sandbox = self._take()
        limits = self.cgroup_limits(overrides)
        if limits is not None and sandbox.cgroup is not None:
            try:
                sandbox.restrict(limits)
            except CgroupError as exc:
                sandbox.remove()
                raise SandboxUnavailable(f"the model's sandbox_limits could not be applied: "
                                         f"{exc.strerror}", transient=False) from None
        return sandbox

    def cgroup_limits(self, overrides: LimitOverrides | None) -> CgroupLimits | None:
        """The pool's cgroup limits with the ones ``overrides`` sets; None when it sets
        none."""
        given = {} if overrides is None else {
            name: value for name, value in (("memory_mb", overrides.memory_mb),
                                            ("pids", overrides.pids),
                                            ("cpu_shares", overrides.cpu_shares))
            if value is not None}
        return dataclasses.replace(self.limits.cgroup(), **given) if given else None

    def _take(self) -> Sandbox:
        with self._lock:
            ready = []
            for sandbox in self._ready:
                if not sandbox.alive:  # its zygote died, or it did, waiting
                    log.warning("a spare sandbox died before it was used")
                    sandbox.remove()
                    continue
                try:
                    sandbox.ready()
                    ready.append(sandbox)
                except SandboxError as exc:
                    log.warning("a spare sandbox did not start: %s", exc.reason)
                    sandbox.remove()
            self._ready = ready
            if self._ready:
                return self._ready.pop(0)
        sandbox = self._start()
        try:  # a sandbox that cannot start is this machine's problem, never the model's
            sandbox.ready()
        except SandboxError as exc:
            sandbox.remove()
            raise SandboxUnavailable(f"a sandbox could not start: {exc.reason}",
                                     transient=True) from None
        return sandbox

    def close(self) -> None:
        with self._lock:
            for sandbox in self._ready:
                sandbox.remove()
            self._ready = []
        self._spawner.shutdown(wait=True)
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
