"""One drill: start the cluster, run the traffic and the faults together, let everything
settle, check the invariants, take the figures, stop every process and drop the database."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from bench.scaleout.chaos import Chaos
from bench.scaleout.cluster import Cluster
from bench.scaleout.invariants import Check, check_all
from bench.scaleout.traffic import Traffic
from webhook_server.store import states
from webhook_server.store.schema import deliveries, jobs, outbox, requests


@dataclass
class Options:
    requests: int = 200
    models: int = 20
    seconds: float = 600  # traffic: no new request after this
    settle_s: float = 180  # then at most this long for everything to finish
    every_s: tuple[float, float] = (3.0, 6.0)  # between two kills
    max_kills: int | None = None
    mlflow_at_s: float = 30.0
    mlflow_down_s: float = 20.0
    postgres_at_s: float = 60.0
    admin_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    workdir: Path | None = None
    seed: int = 17


@dataclass
class Result:
    checks: list[Check]
    figures: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def run(opts: Options, say=print) -> Result:
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="podium-drill-"))
    models = [f"drill-{i:02d}" for i in range(opts.models)]
    plan = {m: opts.requests // opts.models + (i < opts.requests % opts.models)
            for i, m in enumerate(models)}
    cluster = Cluster(workdir, opts.admin_url, models=models)
    try:
        say(f"starting: PostgreSQL database {cluster.db}, MLflow, fake Slack and GitLab, "
            f"{sum(m.kind == 'web' for m in cluster.members)} web nodes behind a balancer, "
            f"{sum(m.kind != 'web' for m in cluster.members)} workers (logs in {workdir})")
        began = time.monotonic()
        cluster.start()
        started = time.monotonic()
        say(f"up in {started - began:.0f} s")
        traffic = Traffic(cluster, plan, deadline=started + opts.seconds,
                          give_up=started + opts.seconds + opts.settle_s, seed=opts.seed)
        chaos = Chaos(cluster, every_s=opts.every_s, mlflow_at_s=opts.mlflow_at_s,
                      mlflow_down_s=opts.mlflow_down_s, postgres_at_s=opts.postgres_at_s,
                      max_kills=opts.max_kills, seed=opts.seed)
        stop = threading.Event()
        faults = threading.Thread(target=chaos.run, args=(stop,), name="chaos")
        faults.start()
        say(f"traffic: {opts.requests} requests over {opts.models} models; faults under way")
        try:
            traffic.run()
        finally:
            _finish_faults(chaos, opts, started)
            stop.set()
            faults.join()
        traffic_s = time.monotonic() - started
        say(f"traffic done in {traffic_s:.0f} s; settling")
        for member in cluster.members:  # a fault's restart that failed: bring it back
            if not cluster.alive(member):
                cluster.restart(member)
        settled = _settle(cluster, started + opts.seconds + opts.settle_s)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=cluster.mlflow_url,
                              registry_uri=cluster.mlflow_url)
        checks = check_all(cluster, traffic, chaos, client)
        result = Result(checks, _figures(cluster, traffic, chaos, started, settled))
    finally:
        cluster.stop()
    if result.passed and opts.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)  # kept (and named) when a check failed
    else:
        say(f"logs of every process: {workdir}")
    return result


def _finish_faults(chaos: Chaos, opts: Options, started: float) -> None:
    """Traffic that ended early still sees every planned fault: the MLflow outage and the
    PostgreSQL termination, and the first kills (one of each kind)."""
    deadline = started + max(opts.mlflow_at_s, opts.postgres_at_s) + opts.mlflow_down_s + 60
    while time.monotonic() < deadline:
        kinds = {f.kind for f in chaos.faults}
        if {"mlflow", "postgres"} <= kinds and len(chaos.kills()) >= min(3, opts.max_kills or 3):
            return
        time.sleep(0.2)


def _settle(cluster: Cluster, deadline: float) -> float:
    """Wait until nothing is left to do: no open request, no pending notification, no job
    but the scheduler's next reconcile. Returns how long it took."""
    began = time.monotonic()
    while time.monotonic() < deadline:
        try:
            with cluster.store.read() as conn:
                busy = conn.execute(select(func.count()).select_from(requests).where(
                    requests.c.state.not_in(states.TERMINAL))).scalar()
                busy += conn.execute(select(func.count()).select_from(outbox).where(
                    outbox.c.state == "pending")).scalar()
                busy += conn.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.state.in_(("queued", "running")), jobs.c.kind != "reconcile")
                ).scalar()
        except Exception:
            busy = 1
        if not busy:
            break
        time.sleep(0.5)
    return time.monotonic() - began


def _figures(cluster: Cluster, traffic: Traffic, chaos: Chaos, started: float,
             settled: float) -> dict:
    decided = [o for o in traffic.outcomes if o.state and o.latency_s is not None]
    latencies = sorted(o.latency_s for o in decided)
    span = (max(o.done_at for o in decided) - started) if decided else 0.0
    with cluster.store.read() as conn:
        dupes = conn.execute(select(func.coalesce(func.sum(deliveries.c.duplicates), 0))
                             ).scalar()
        reconciled = conn.execute(select(func.count()).select_from(deliveries).where(
            deliveries.c.source == "reconcile")).scalar()
    kills = chaos.kills()
    return {
        "requests": len(traffic.outcomes), "decided": len(decided),
        "decisions_per_min": round(len(decided) / span * 60, 1) if span else 0.0,
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_s": round(_p95(latencies), 2) if latencies else None,
        "restarts_survived": sum(f.ok for f in kills), "kills": len(kills),
        "kills_by_kind": {k: sum(f.what.endswith(f"({k})") for f in kills)
                          for k in ("web", "worker", "scheduler")},
        "faults": [f"{f.what} at {f.start - started:.0f} s, whole again after "
                   f"{f.end - f.start:.1f} s" for f in chaos.faults if f.kind != "kill"],
        "traffic_s": round(span, 1), "settle_s": round(settled, 1),
        "approvals_clicked": len(traffic.clicks),
        "webhooks_acknowledged": sum(1 for a in cluster.balancer.answers
                                     if a.path == "/webhooks/mlflow" and a.status < 300),
        "duplicate_deliveries": int(dupes), "requests_found_by_reconciler": int(reconciled),
        "slack_posts": len(cluster.slack.messages),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]
