"""The drill's faults, one at a time, while the traffic runs: every few seconds ``kill -9``
of a web node or a worker (the first three: a web node, a worker, the scheduler's worker;
then at random) and its restart on the same port; MLflow stopped once for a while; every
PostgreSQL session of the drill's database terminated once. Each fault is recorded with
the time the system was whole again: the checks allow 5xx answers only inside them."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from bench.scaleout.cluster import Cluster, Member

GRACE_S = 5.0  # after a fault, the time stale connections take to be noticed and replaced
FIRST_KILLS = ("web", "worker", "scheduler")


@dataclass
class Fault:
    kind: str  # kill | mlflow | postgres
    what: str
    start: float  # time.monotonic()
    end: float
    ok: bool = True
    detail: str = ""

    def covers(self, at: float) -> bool:
        return self.start <= at <= self.end + GRACE_S


class Chaos:
    def __init__(self, cluster: Cluster, *, every_s: tuple[float, float] = (3.0, 6.0),
                 mlflow_at_s: float = 30.0, mlflow_down_s: float = 20.0,
                 postgres_at_s: float = 60.0, max_kills: int | None = None,
                 seed: int = 7) -> None:
        self.cluster, self.every_s, self.max_kills = cluster, every_s, max_kills
        self.mlflow_at_s, self.mlflow_down_s = mlflow_at_s, mlflow_down_s
        self.postgres_at_s = postgres_at_s
        self.rng = random.Random(seed)
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def kills(self) -> list[Fault]:
        return [f for f in self.faults if f.kind == "kill"]

    def run(self, stop: threading.Event) -> None:
        """Inject faults until ``stop`` is set (a fault under way is seen through)."""
        t0 = time.monotonic()
        pending = sorted([(t0 + self.mlflow_at_s, self._mlflow),
                          (t0 + self.postgres_at_s, self._postgres)], key=lambda p: p[0])
        next_kill = t0 + self.rng.uniform(*self.every_s)
        while not stop.is_set():
            now = time.monotonic()
            if pending and now >= pending[0][0]:
                pending.pop(0)[1]()
            elif (self.max_kills is None or len(self.kills()) < self.max_kills) \
                    and now >= next_kill:
                self._kill(self._victim())
                next_kill = time.monotonic() + self.rng.uniform(*self.every_s)
            else:
                stop.wait(0.1)

    def _victim(self) -> Member:
        n = len(self.kills())
        kind = FIRST_KILLS[n] if n < len(FIRST_KILLS) else None
        members = [m for m in self.cluster.members if kind is None or m.kind == kind]
        return self.rng.choice(members)

    def _record(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _kill(self, member: Member) -> None:
        start = time.monotonic()
        fault = self._record(Fault("kill", f"kill -9 {member.name} ({member.kind})", start,
                                   start))
        self.cluster.kill(member)
        try:
            self.cluster.restart(member)
        except Exception as exc:
            fault.ok, fault.detail = False, f"not restarted: {exc}"[:500]
        fault.end = time.monotonic()

    def _mlflow(self) -> None:
        start = time.monotonic()
        fault = self._record(Fault("mlflow", f"MLflow stopped for {self.mlflow_down_s:g} s",
                                   start, start))
        self.cluster.stop_mlflow()
        time.sleep(max(0.0, start + self.mlflow_down_s - time.monotonic()))
        try:
            self.cluster.start_mlflow()
        except Exception as exc:
            fault.ok, fault.detail = False, f"MLflow not restarted: {exc}"[:500]
        fault.end = time.monotonic()

    def _postgres(self) -> None:
        start = time.monotonic()
        fault = self._record(Fault("postgres", "pg_terminate_backend", start, start))
        try:
            n = self.cluster.terminate_backends()
            fault.what = f"pg_terminate_backend on {n} sessions"
        except Exception as exc:
            fault.ok, fault.detail = False, f"{type(exc).__name__}: {exc}"[:500]
        fault.end = time.monotonic()
