"""The drill's users: one thread per model asks for transitions the way people do (a tag
or the ``challenger`` alias set in MLflow, a rollback through the API, behind the balancer),
approves in Slack with both approvers clicking at the same moment, and waits for each
decision before the next (Podium decides one request per model at a time anyway).

What a request is (its plan) decides what its outcome must be: a challenger better than
the champion is promoted, a worse one rejected, Staging staged, Archived archived, a
rollback promoted. MLflow, the balancer or the store failing under the drill's faults are
retried until the deadline, as a person would.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from bench.scaleout.cluster import MR_IID, Cluster
from bench.scaleout.judge import QUALITY
from bench.scaleout.people import Click, People
from webhook_server.store import states
from webhook_server.store.schema import requests as requests_table

EXPECTED = {"win": "promoted", "alias": "promoted", "lose": "rejected", "staging": "staged",
            "archive": "archived", "rollback": "promoted"}
KINDS = (("win", 30), ("alias", 8), ("lose", 25), ("staging", 12), ("archive", 5),
         ("rollback", 20))


@dataclass
class Outcome:
    model: str
    kind: str
    version: str | None = None
    request_id: int | None = None
    state: str | None = None
    latency_s: float | None = None
    done_at: float | None = None  # time.monotonic() when the decision was seen
    error: str | None = None

    @property
    def expected(self) -> str:
        return EXPECTED[self.kind]


@dataclass
class Traffic:
    cluster: Cluster
    plan: dict[str, int]  # model -> requests
    deadline: float  # no new request after this (time.monotonic())
    give_up: float  # no waiting after this
    seed: int = 17
    outcomes: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.people = People(self.cluster, self.give_up)

    @property
    def clicks(self) -> list[Click]:
        return self.people.clicks

    def run(self) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=self.cluster.mlflow_url,
                                   registry_uri=self.cluster.mlflow_url)
        threads = [threading.Thread(target=self._drive, args=(m, n, i), name=f"drive-{m}")
                   for i, (m, n) in enumerate(self.plan.items())]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # --- one model -----------------------------------------------------------------------

    def _drive(self, model: str, n: int, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        quality: dict[str, float] = {}  # version -> its drill.quality
        champions: list[str] = []  # every version made champion, in order
        run_id = self._retry(lambda: self._run_for(model))
        for i in range(n):
            if time.monotonic() > self.deadline:
                return
            kind = "win" if i == 0 else rng.choices(*zip(*KINDS, strict=True))[0]
            if kind == "rollback" and len(champions) < 2:
                kind = "win"  # nothing to roll back to yet
            out = Outcome(model, kind)
            with self._lock:
                self.outcomes.append(out)
            try:
                self._one(out, rng, run_id, quality, champions)
            except Exception as exc:  # recorded, and the invariants will say so
                out.error = f"{type(exc).__name__}: {exc}"[:300]
                return

    def _one(self, out: Outcome, rng, run_id, quality, champions) -> None:
        model = out.model
        current = champions[-1] if champions else None
        base = quality.get(current, 0.0)
        started = time.monotonic()
        if out.kind == "rollback":
            out.request_id, out.version = self.people.rollback(
                model, lambda: self._rollback_since(model, started))
        else:
            q = base + rng.randint(1, 5) * (-1 if out.kind == "lose" else 1)
            out.version = self._retry(lambda: self.client.create_model_version(
                model, f"runs:/{run_id}/model", run_id=run_id,
                tags={QUALITY: str(q), "gitlab.mr_iid": str(MR_IID)}).version)
            out.version = str(out.version)
            quality[out.version] = q
            started = time.monotonic()
            if out.kind == "alias":
                self._retry(lambda: self.client.set_registered_model_alias(
                    model, "challenger", out.version))
            else:
                target = {"staging": "Staging", "archive": "Archived"}.get(out.kind,
                                                                            "Production")
                self._retry(lambda: self.client.set_model_version_tag(
                    model, out.version, "transition_request", target))
            out.request_id = self._wait(lambda: self._find(model, out.version), "its request")
        out.state = self._decide(out)
        out.done_at = time.monotonic()
        out.latency_s = out.done_at - started
        if out.state == states.PROMOTED:
            champions.append(out.version)

    def _decide(self, out: Outcome) -> str:
        clicked = False
        while True:
            state = self._wait(lambda: self._state(out.request_id), "a decision")
            if state != states.AWAITING_APPROVAL:
                return state
            if not clicked:
                self.people.approve_together(out.request_id)
                clicked = True
            time.sleep(0.2)

    # --- reading and retrying -------------------------------------------------------------

    def _run_for(self, model: str) -> str:
        try:
            self.client.create_registered_model(model)
        except Exception as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        run = self.client.create_run("0")
        self.client.log_text(run.info.run_id, "drill model", "model/README.txt")
        self.client.set_terminated(run.info.run_id)
        return run.info.run_id

    def _find(self, model: str, version: str) -> int | None:
        with self.cluster.store.read() as conn:
            return conn.execute(select(requests_table.c.id).where(
                requests_table.c.model == model, requests_table.c.version == version,
                requests_table.c.origin != "rollback").order_by(requests_table.c.id)).scalar()

    def _rollback_since(self, model: str, started: float) -> tuple[int, str] | None:
        with self.cluster.store.read() as conn:
            rows = conn.execute(select(requests_table.c.id, requests_table.c.version,
                                       requests_table.c.created_at).where(
                requests_table.c.model == model, requests_table.c.origin == "rollback")
                .order_by(requests_table.c.id.desc())).all()
        age = time.monotonic() - started
        for rid, version, created in rows:
            if (time.time() - created.timestamp()) <= age + 1:
                return rid, version
        return None

    def _state(self, request_id: int) -> str | None:
        with self.cluster.store.read() as conn:
            state = conn.execute(select(requests_table.c.state).where(
                requests_table.c.id == request_id)).scalar()
        return state if state in (*states.TERMINAL, states.AWAITING_APPROVAL) else None

    def _wait(self, fn, what: str):
        while time.monotonic() < self.give_up:
            try:
                found = fn()
            except Exception:  # the store restarting its connections: look again
                found = None
            if found:
                return found
            time.sleep(0.2)
        raise TimeoutError(f"gave up waiting for {what}")

    def _retry(self, fn):
        """Call MLflow until it answers (it is stopped for a while during the drill)."""
        while True:
            try:
                return fn()
            except Exception:
                if time.monotonic() > self.give_up:
                    raise
                time.sleep(0.5)
