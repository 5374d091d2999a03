"""Intake throughput: signed MLflow deliveries into `podium serve` (SQLite store), against a
bare Flask endpoint under the same gunicorn settings, in the same run.

    python bench/intake.py [--seconds 10] [--concurrency 16] [--clients 2]

Prints deliveries/s, p50/p99 latency, stored == acknowledged, and the ratio to the baseline.
Every request is a distinct transition request (delivery + request + job per commit), the
heaviest intake path. The job worker is off so the figures measure intake alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webhook_server.dev.processes import Process, free_port, start_podium, wait_http  # noqa: E402
from webhook_server.serve import default_web_workers  # noqa: E402
from webhook_server.sources.mlflow import sign  # noqa: E402

SECRET = "bench-secret"


def _prepare(n: int, worker: int) -> list[tuple[bytes, dict]]:
    out = []
    ts = str(int(time.time()) + 5)
    for i in range(n):
        body = json.dumps({"entity": "model_version_tag", "action": "set",
                           "timestamp": "2026-11-26T00:00:00+00:00",
                           "data": {"name": f"bench-{worker}", "version": str(i + 1),
                                    "key": "transition_request",
                                    "value": "Production"}}).encode()
        did = str(uuid.uuid4())
        out.append((body, {"Content-Type": "application/json", "Connection": "close",
                           "X-MLflow-Delivery-Id": did,
                           "X-MLflow-Timestamp": ts,
                           "X-MLflow-Signature": sign(SECRET, did, ts, body)}))
    return out


def _client(port: int, seconds: float, threads: int, worker: int, queue) -> None:
    import threading

    payloads = _prepare(int(seconds * 4000 / max(1, threads)) * threads + 1000, worker)
    lock = threading.Lock()
    cursor = iter(payloads)
    latencies: list[float] = []
    acked = errors = 0
    stop_at = time.monotonic() + seconds

    def run():
        nonlocal acked, errors
        mine: list[float] = []
        ok = bad = 0
        while time.monotonic() < stop_at:
            with lock:
                body, headers = next(cursor)
            t0 = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", "/webhooks/mlflow", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                status = 0
            finally:
                conn.close()
            mine.append(time.perf_counter() - t0)
            if status == 200:
                ok += 1
            else:
                bad += 1
        with lock:
            latencies.extend(mine)
            acked += ok
            errors += bad

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put((acked, errors, latencies))


def load(port: int, seconds: float, concurrency: int, clients: int) -> dict:
    q = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=_client,
                                            args=(port, seconds, concurrency // clients, i, q))
             for i in range(clients)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    acked = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    return {"acked": acked, "errors": errors, "rate": acked / seconds, "elapsed": elapsed,
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))]}


def stored(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--workers", type=int, default=default_web_workers())
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="podium-bench-"))
    db = work / "podium.db"
    print(f"gunicorn: {args.workers} sync workers; client: {args.clients} processes x "
          f"{args.concurrency // args.clients} threads, a connection per request; "
          f"{args.seconds:.0f} s each; {os.cpu_count()} CPUs")

    port = free_port()
    bare_cmd = [sys.executable, "-m", "bench.bare_server", str(port), str(args.workers)]
    bare = Process("bare flask", f"http://127.0.0.1:{port}",
                   subprocess.Popen(bare_cmd, cwd=ROOT, start_new_session=True),
                   work / "bare.log")
    wait_http(bare, "/healthz", 30)
    try:
        base = load(port, args.seconds, args.concurrency, args.clients)
    finally:
        bare.stop()

    (work / "podium.yaml").write_text("{}\n")
    podium = start_podium(work, {"PODIUM_DATABASE_URL": f"sqlite:///{db}",
                                 "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET,
                                 "PODIUM_POLICY": str(work / "podium.yaml")},
                          args=("--no-worker", "--no-scheduler", "--workers",
                                str(args.workers)))
    try:
        got = load(int(podium.url.rsplit(":", 1)[1]), args.seconds, args.concurrency,
                   args.clients)
    finally:
        podium.stop()
    n_stored = stored(db)

    print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    print(f"{'bare Flask (baseline)':24}{base['rate']:>10.0f}{base['p50_ms']:>10.2f}"
          f"{base['p99_ms']:>10.2f}{base['errors']:>8}")
    print(f"{'podium intake':24}{got['rate']:>10.0f}{got['p50_ms']:>10.2f}"
          f"{got['p99_ms']:>10.2f}{got['errors']:>8}")
    print(f"ratio podium / baseline: {got['rate'] / base['rate']:.2f}")
    print(f"acknowledged {got['acked']}, stored {n_stored}: "
          f"{'nothing lost' if n_stored == got['acked'] else 'MISMATCH'}")
    if n_stored != got["acked"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
