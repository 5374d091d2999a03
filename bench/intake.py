"""Intake throughput: signed MLflow deliveries into `podium serve --no-worker` (SQLite and/or
PostgreSQL store), against a bare Flask endpoint (bench/bare_server.py) under the same
gunicorn settings, driven by the same load generator with the same threads and connections,
in the same run.

    python bench/intake.py [--seconds 10] [--connections 16] [--threads 1]
                           [--generator wrk|python] [--database sqlite|postgresql|both|none]
                           [--pin none|split] [--nodes N] [--quick]

Generators. `wrk` (the default when it is on PATH; Debian package `wrk`) replays pre-signed
deliveries with bench/wrk/replay.lua: right before each measurement this script signs more
distinct deliveries than the run can send (1.5x what bare Flask managed, at least 4,000/s)
into a file, one per line; wrk thread k of T sends lines k, k+T, ... in order, so every
request is a new delivery (a thread that ran out would start over: the repeats are reported
as duplicates), and wrk's `done` prints the figures as JSON (requests, duration, p50/p99,
errors by kind, deliveries sent). `python` (the fallback) is the former client: `--threads`
forked processes of `--connections / --threads` threads, one HTTP/1.1 connection a thread,
reused whenever the server allows it; it costs about as much CPU per request as bare Flask
itself, so it cannot show bare Flask's limit on a small machine. Both generators ask for
keep-alive, but gunicorn's sync workers close every connection after its response, so each
request opens a new connection either way (as MLflow's sender does).

What it measures: every request is a distinct transition request (delivery + request + job
per commit), the heaviest intake path; the job worker and the scheduler are off, so the
figures are intake alone (real `podium serve --no-worker --no-scheduler` processes, started
by webhook_server.dev.processes.start_podium). Each measurement follows a `--warmup` with
deliveries of its own; the store's deliveries are counted before and after, and "stored ==
acknowledged" checks that every delivery answered 200 was stored (one still in flight when
the generator stopped may be stored without its 200 being counted: reported, not an error).
`--nodes 2` adds a PostgreSQL run with two `podium serve` nodes on one database (the
gunicorn workers split between them), each driven by its own wrk at the same time, as
behind a load balancer: the figures are summed (p99: the worse node's).

The PostgreSQL store is a fresh database `podium_bench_<random>` created through `--postgres`
and dropped at the end; the SQLite store is a fresh file.

`--pin none` (the default) lets the generator and the server share every CPU; `--pin split`
runs the server on CPUs 0..n-2 and the generator on the last one (affinity inherited by the
gunicorn workers). On 2 CPUs split caps the server at one core while wrk needs a fraction of
the other (the "gen cpu" column), so it pays only if pinning saves more server CPU per
request than it leaves idle: compare both on idle cores. The CPU columns (the generator's
and the server's CPU time over the run, in % of one core) show which side is the bottleneck:
a generator far below 100 % of a core per thread is not it.

Prints a table (bare Flask, podium sqlite, podium postgresql: req/s of 2xx answers, p50, p99,
errors, ratio to bare Flask) and writes the figures to bench/results/intake.json. Exits 1
when a delivery was acknowledged but not stored. `--quick`: 3 s per measurement (smoke runs).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webhook_server.dev.processes import Process, free_port, start_podium, wait_http  # noqa: E402
from webhook_server.intake.sources.mlflow import sign  # noqa: E402
from webhook_server.web.serve import default_web_workers  # noqa: E402

SECRET = "bench-secret"
PATH = "/webhooks/mlflow"
REPLAY_LUA = ROOT / "bench" / "wrk" / "replay.lua"
RESULTS = ROOT / "bench" / "results" / "intake.json"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TOLERANCE_S = 300  # PODIUM_SIGNATURE_TOLERANCE's default (start_podium does not pass ours)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- deliveries

def delivery(model: str, version: int, ts: str) -> tuple[str, str, str, bytes]:
    """(delivery id, timestamp, signature, body) of a new transition request."""
    body = json.dumps({"entity": "model_version_tag", "action": "set",
                       "timestamp": "2026-11-26T00:00:00+00:00",
                       "data": {"name": model, "version": str(version),
                                "key": "transition_request", "value": "Production"}}).encode()
    did = str(uuid.uuid4())
    return did, ts, sign(SECRET, did, ts, body), body


def sign_time(seconds: float) -> str:
    """A timestamp that stays within the ±300 s window for the whole run: half-way in."""
    return str(int(time.time() + min(seconds, 2 * TOLERANCE_S - 60) / 2))


def presign(path: Path, n: int, seconds: float, tag: str, threads: int) -> None:
    """``n`` distinct deliveries, one per line (thread k sends lines k, k+T, ...)."""
    ts = sign_time(seconds)
    with open(path, "w") as out:
        for i in range(n):
            did, ts, sig, body = delivery(f"{tag}-{i % threads}", i // threads + 1, ts)
            out.write(f"{did}\t{ts}\t{sig}\t{body.decode()}\n")


# ---------------------------------------------------------------------------- CPU, pinning

@contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside inherit the affinity ``cpus`` (None: unchanged)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes in process group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # field 5, pgrp
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / CLK_TCK


def backends_cpu_s(database: str) -> float:
    """CPU seconds (user + system) of the live PostgreSQL backends connected to ``database``
    (the server runs on this machine: its process titles name the database)."""
    total = 0
    needle = f" {database} ".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes()
            if not title.startswith(b"postgres: ") or needle not in title:
                continue
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# ---------------------------------------------------------------------------- generators

@dataclass
class Load:
    connections: int
    threads: int
    cpus: set[int] | None  # the generator's affinity

    name = ""

    def describe(self) -> str:
        raise NotImplementedError

    def run(self, port: int, seconds: float, tag: str, supply: int, work: Path) -> dict:
        raise NotImplementedError

    def run_many(self, ports: list[int], seconds: float, tag: str, supply: int,
                 work: Path) -> dict:
        if len(ports) != 1:
            raise SystemExit("--nodes above 1 needs the wrk generator")
        return self.run(ports[0], seconds, tag, supply, work)


class WrkLoad(Load):
    name = "wrk"

    def describe(self) -> str:
        return (f"wrk {self.threads} thread(s), {self.connections} connections, replaying "
                f"pre-signed deliveries (bench/wrk/replay.lua)")

    def run(self, port: int, seconds: float, tag: str, supply: int, work: Path) -> dict:
        return self.run_many([port], seconds, tag, supply, work)

    def run_many(self, ports: list[int], seconds: float, tag: str, supply: int,
                 work: Path) -> dict:
        """One wrk per port, all at once, the connections split between them; the figures
        summed (p50: the mean of the nodes', p99: the worst node's)."""
        runs = []
        per_conn = max(self.threads, self.connections // len(ports))
        cpu0 = children_cpu_s()
        with pinned(self.cpus):
            for i, port in enumerate(ports):
                file = work / f"{tag}-{i}.tsv"
                presign(file, supply // len(ports), seconds, f"{tag}-{i}", self.threads)
                cmd = ["wrk", "-t", str(self.threads), "-c", str(per_conn),
                       "-d", f"{max(1, math.ceil(seconds))}s", "--timeout", "30s",
                       "-s", str(REPLAY_LUA), f"http://127.0.0.1:{port}{PATH}", "--",
                       str(file), str(self.threads)]
                runs.append((file, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, text=True)))
        parts = []
        for file, proc in runs:
            out, err = proc.communicate()
            file.unlink()
            m = re.search(r"^WRK_JSON (\{.*\})$", out, re.M)
            if proc.returncode or m is None:
                raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
            parts.append(json.loads(m.group(1)))
        cpu = children_cpu_s() - cpu0
        errors: dict[str, int] = {}
        for w in parts:
            for kind, n in w["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        duration = max(w["duration_us"] for w in parts) / 1e6
        requests = sum(w["requests"] for w in parts)
        sent = sum(w["sent"] for w in parts)
        acked = requests - errors.get("status", 0)
        return {"acked": acked, "responses": requests, "sent": sent,
                "in_flight": sent - requests, "duplicates": sum(w["duplicates"] for w in parts),
                "supply": sum(w["supply"] for w in parts), "errors": sum(errors.values()),
                "error_kinds": errors, "duration_s": duration, "rate": acked / duration,
                "p50_ms": statistics.mean(w["latency_us"]["p50"] for w in parts) / 1000,
                "p99_ms": max(w["latency_us"]["p99"] for w in parts) / 1000,
                "generator_cpu_s": cpu}


def _client(port: int, seconds: float, threads: int, tag: str, supply: int, queue) -> None:
    import http.client
    import threading

    ts = sign_time(seconds)
    payloads = [delivery(tag, i + 1, ts) for i in range(supply)]
    lock = threading.Lock()
    taken = 0
    latencies: list[float] = []
    acked = errors = 0
    stop_at = time.monotonic() + seconds

    def run():
        nonlocal acked, errors, taken
        mine: list[float] = []
        ok = bad = 0
        # one connection a thread: http.client reopens it when the server closed it
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            with lock:
                did, ts_, sig, body = payloads[taken % supply]
                taken += 1
            headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": did,
                       "X-MLflow-Timestamp": ts_, "X-MLflow-Signature": sig}
            t0 = time.perf_counter()
            try:
                conn.request("POST", PATH, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0
            mine.append(time.perf_counter() - t0)
            if 200 <= status < 300:
                ok += 1
            else:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            acked += ok
            errors += bad

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put((acked, errors, latencies, taken, supply))


class PythonLoad(Load):
    name = "python"

    def describe(self) -> str:
        return (f"python client, {self.threads} process(es) x "
                f"{self.connections // self.threads} threads, one connection a thread")

    def run(self, port: int, seconds: float, tag: str, supply: int, work: Path) -> dict:
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        per = max(1, supply // self.threads)
        procs = [ctx.Process(target=_client, args=(port, seconds, self.connections // self.threads,
                                                   f"{tag}-{i}", per, q))
                 for i in range(self.threads)]
        cpu0 = children_cpu_s()
        with pinned(self.cpus):
            for p in procs:
                p.start()
        results = [q.get() for _ in procs]
        for p in procs:
            p.join()
        cpu = children_cpu_s() - cpu0
        acked = sum(r[0] for r in results)
        errors = sum(r[1] for r in results)
        sent = sum(r[3] for r in results)
        lat = sorted(x for r in results for x in r[2])
        return {"acked": acked, "responses": acked + errors, "sent": sent, "in_flight": 0,
                "duplicates": sum(max(0, r[3] - r[4]) for r in results),
                "supply": sum(r[4] for r in results), "errors": errors,
                "error_kinds": {"any": errors}, "duration_s": seconds, "rate": acked / seconds,
                "p50_ms": 1000 * statistics.median(lat) if lat else 0.0,
                "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))] if lat else 0.0,
                "generator_cpu_s": cpu}


# ---------------------------------------------------------------------------- stores

def postgres_up(admin_url: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
        import psycopg

        with psycopg.connect(admin_url, connect_timeout=2):
            return True
    except Exception:  # no server, no psycopg, refused: no PostgreSQL run
        return False


class Store:
    def __init__(self, kind: str, work: Path, admin_url: str) -> None:
        self.kind = kind
        self.admin_url = admin_url
        if kind == "sqlite":
            self.path = work / "podium.db"
            self.url = f"sqlite:///{self.path}"
        else:
            import psycopg

            self.db = f"podium_bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.db}"')
            base = admin_url.rsplit("/", 1)[0]
            self.url = f"{base}/{self.db}"

    def count(self) -> int:
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.path) as conn:
                return conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]

    def db_cpu_s(self) -> float | None:
        """CPU seconds of the database's backends (None: SQLite, in the server's processes)."""
        return backends_cpu_s(self.db) if self.kind == "postgresql" else None

    def drop(self) -> None:
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


# ---------------------------------------------------------------------------- runs

@dataclass
class Setup:
    load: Load
    seconds: float
    warmup: float
    workers: int
    server_cpus: set[int] | None
    work: Path


def settled(count, timeout_s: float = 10) -> int:
    """The store's count once the deliveries still in flight at the generator's stop are in
    (two equal counts 0.3 s apart)."""
    last, deadline = count(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = count()
        if now == last:
            break
        last = now
    return last


def measure(s: Setup, servers: list[Process], tag: str, supply: int, count=None,
            db_cpu=None) -> dict:
    """Warm up, then measure; ``count`` (the store's deliveries) brackets the measurement,
    ``db_cpu`` (the database's CPU seconds, or None) too."""
    ports = [int(server.url.rsplit(":", 1)[1]) for server in servers]
    if s.warmup > 0:
        s.load.run_many(ports, s.warmup, f"{tag}-warm", max(2000, supply // 4), s.work)
    before = settled(count) if count else 0
    srv0 = sum(group_cpu_s(server.proc.pid) for server in servers)
    db0 = db_cpu() if db_cpu else None
    r = s.load.run_many(ports, s.seconds, tag, supply, s.work)
    r["server_cpu_s"] = sum(group_cpu_s(server.proc.pid) for server in servers) - srv0
    r["db_cpu_s"] = db_cpu() - db0 if db0 is not None else None
    r["stored_before"] = before
    return r


def run_bare(s: Setup, supply: int) -> dict:
    port = free_port()
    log = s.work / "bare.log"
    with open(log, "ab") as out, pinned(s.server_cpus):
        proc = subprocess.Popen([sys.executable, "-m", "bench.bare_server", str(port),
                                 str(s.workers)], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    bare = Process("bare flask", f"http://127.0.0.1:{port}", proc, log)
    wait_http(bare, "/healthz", 30)
    try:
        return measure(s, [bare], "bare", supply)
    finally:
        bare.stop()


def run_podium(s: Setup, kind: str, supply: int, admin_url: str, nodes: int = 1) -> dict:
    """``nodes`` ``podium serve`` processes on one store (the gunicorn workers split between
    them), each driven by its own generator at once."""
    work = s.work / f"{kind}-{nodes}"
    work.mkdir()
    store = Store(kind, work, admin_url)
    servers: list[Process] = []
    try:
        (work / "podium.yaml").write_text("{}\n")
        workers = str(max(1, s.workers // nodes))
        try:
            with pinned(s.server_cpus):
                for i in range(nodes):
                    servers.append(start_podium(work / f"node{i}", {
                        "PODIUM_DATABASE_URL": store.url,
                        "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET,
                        "PODIUM_POLICY": str(work / "podium.yaml")},
                        args=("--no-worker", "--no-scheduler", "--workers", workers)))
            r = measure(s, servers, f"bench-{kind}-{nodes}", supply, store.count,
                        store.db_cpu_s)
        finally:
            for server in servers:  # graceful: requests in flight are answered and committed
                server.stop()
        r["stored"] = store.count() - r.pop("stored_before")
        r["nodes"] = nodes
        return r
    finally:
        store.drop()


def check_stored(r: dict) -> tuple[bool, str]:
    """Every acknowledged delivery stored (at most the ones in flight at the stop beyond)."""
    acked, stored, extra = r["acked"], r["stored"], r["in_flight"]
    low = acked - r["duplicates"]  # a duplicate's 200 adds no row
    if stored < low:
        return False, f"MISMATCH: {low - stored} acknowledged deliveries not stored"
    if stored > acked + extra:
        return False, f"MISMATCH: {stored - acked} stored beyond the {extra} in flight"
    note = "nothing lost"
    if stored > acked:
        note += f" ({stored - acked} in flight at the stop stored, unacknowledged)"
    if r["duplicates"]:
        note += f"; {r['duplicates']} DUPLICATES sent (supply too small)"
    return True, note


# ---------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--seconds", type=float, default=10, help="per measurement")
    ap.add_argument("--warmup", type=float, default=1,
                    help="seconds before each measurement (wrk: whole seconds, 0: none)")
    ap.add_argument("--connections", "--concurrency", type=int, default=16,
                    help="concurrent connections (requests in flight)")
    ap.add_argument("--threads", "--clients", type=int, default=None,
                    help="wrk threads / python client processes [wrk: 1, python: 2]")
    ap.add_argument("--generator", choices=("wrk", "python"), default=None,
                    help="default: wrk when it is on PATH, else python")
    ap.add_argument("--database", choices=("sqlite", "postgresql", "both", "none"),
                    default=None, help="default: both when PostgreSQL answers on "
                    "127.0.0.1:5432; none: bare Flask only (is the generator strong enough?)")
    ap.add_argument("--postgres", default=PG_ADMIN, help="admin URL (CREATE DATABASE)")
    ap.add_argument("--pin", choices=("split", "none"), default="none",
                    help="split: server on CPUs 0..n-2, generator on the last one")
    ap.add_argument("--workers", type=int, default=default_web_workers(),
                    help="gunicorn workers in all (split between the nodes)")
    ap.add_argument("--nodes", type=int, default=1,
                    help="PostgreSQL: also run this many `podium serve` nodes on one database, "
                    "one generator each (wrk), as behind a load balancer [1: no extra run]")
    ap.add_argument("--quick", action="store_true", help="3 s per measurement, 1 s warm-up")
    ap.add_argument("--no-baseline", action="store_true", help="skip bare Flask")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.warmup = 3, 1
    if args.seconds > 2 * TOLERANCE_S - 60:
        ap.error(f"--seconds at most {2 * TOLERANCE_S - 60}: the signatures would go stale")
    notes = []
    if args.generator is None:
        args.generator = "wrk" if shutil.which("wrk") else "python"
        if args.generator == "python":
            notes.append("wrk is not on PATH (Debian package `wrk`): the python client is "
                         "the generator, and may be the bottleneck")
    threads = args.threads or (1 if args.generator == "wrk" else 2)
    if args.connections < threads:
        ap.error("--connections must be at least --threads")
    pg_ok = postgres_up(args.postgres)
    if args.database is None:
        args.database = "both" if pg_ok else "sqlite"
        if not pg_ok:
            notes.append("PostgreSQL does not answer on 127.0.0.1:5432: SQLite only")
    elif args.database in ("postgresql", "both") and not pg_ok:
        ap.error(f"PostgreSQL does not answer at {args.postgres}")
    kinds = {"both": ["sqlite", "postgresql"], "none": []}.get(args.database, [args.database])

    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = gen_cpus = None
    if args.pin == "split":
        if len(cpus) < 2:
            ap.error("--pin split needs two CPUs")
        server_cpus, gen_cpus = set(cpus[:-1]), {cpus[-1]}
    load_cls = WrkLoad if args.generator == "wrk" else PythonLoad
    load = load_cls(args.connections, threads, gen_cpus)
    work = Path(tempfile.mkdtemp(prefix="podium-bench-"))
    s = Setup(load, args.seconds, args.warmup, args.workers, server_cpus, work)
    pin_text = ("generator and server share every CPU" if server_cpus is None else
                f"server on CPU {','.join(map(str, sorted(server_cpus)))}, generator on CPU "
                f"{','.join(map(str, sorted(gen_cpus)))}")
    print(f"generator: {load.describe()}")
    print(f"server: gunicorn {args.workers} sync workers; {len(cpus)} CPUs, {pin_text}; "
          f"{args.seconds:g} s per measurement after {args.warmup:g} s of warm-up")
    load_before = os.getloadavg()[0]
    if load_before > len(cpus) / 2:
        notes.append(f"load average {load_before:.1f} on {len(cpus)} CPUs before the run "
                     "(other work, or a run just before): the figures may not be "
                     "representative")
    for note in notes:
        print(f"note: {note}")

    # Enough distinct deliveries that none repeats: Podium is no faster than bare Flask.
    floor = 4000 * args.seconds + 2000
    rows: dict[str, dict] = {}
    if not args.no_baseline:
        rows["bare flask"] = run_bare(s, int(floor))
    bound = rows["bare flask"]["rate"] if rows else 8000
    supply = int(max(floor, 1.5 * bound * args.seconds + 2000))
    for kind in kinds:
        rows[f"podium {kind}"] = run_podium(s, kind, supply, args.postgres)
    if args.nodes > 1 and "postgresql" in kinds:
        rows[f"podium pg {args.nodes} nodes"] = run_podium(s, "postgresql", supply,
                                                           args.postgres, args.nodes)
    shutil.rmtree(work, ignore_errors=True)

    base = rows.get("bare flask")
    print()
    print(f"{'':20}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'ratio':>7}"
          f"{'gen cpu':>9}{'srv cpu':>9}{'srv s/1k':>10}{'db s/1k':>9}")
    for name, r in rows.items():
        r["ratio"] = r["rate"] / base["rate"] if base else None
        r["generator_cpu_pct"] = 100 * r["generator_cpu_s"] / r["duration_s"]
        r["server_cpu_pct"] = 100 * r["server_cpu_s"] / r["duration_s"]
        # CPU seconds per 1,000 answered requests: unlike req/s, it holds on shared cores
        per_k = 1000 / max(1, r["responses"])
        r["server_cpu_s_per_1000"] = r["server_cpu_s"] * per_k
        r["db_cpu_s_per_1000"] = r["db_cpu_s"] * per_k if r.get("db_cpu_s") is not None else None
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        db = f"{r['db_cpu_s_per_1000']:.3f}" if r["db_cpu_s_per_1000"] is not None else "-"
        print(f"{name:20}{r['rate']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['errors']:>8}{ratio:>7}{r['generator_cpu_pct']:>8.0f}%"
              f"{r['server_cpu_pct']:>8.0f}%{r['server_cpu_s_per_1000']:>10.3f}{db:>9}")
    print("(cpu: % of one core over the run; s/1k: CPU seconds per 1,000 answered requests, "
          "the server's processes and the PostgreSQL backends of its database; ratio: req/s "
          "/ bare Flask's, same run)")
    ok = True
    for name, r in rows.items():
        if name == "bare flask":
            continue
        good, text = check_stored(r)
        ok &= good
        r["stored_ok"] = good
        print(f"{name}: acknowledged {r['acked']}, stored {r['stored']}: {text}")
    if base and base["duplicates"]:
        print(f"bare flask: {base['duplicates']} repeated deliveries (no store: harmless)")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "generator": {"name": load.name, "threads": threads, "connections": args.connections,
                      "cpus": sorted(gen_cpus) if gen_cpus else None},
        "server": {"workers": args.workers, "worker_class": "sync",
                   "cpus": sorted(server_cpus) if server_cpus else None},
        "pin": args.pin, "cpus": len(cpus), "seconds": args.seconds, "warmup": args.warmup,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notes": notes,
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "targets": {"stored_per_s_sqlite": 2000, "p99_ms": 25, "ratio": 0.5},
        "runs": {name.replace(" ", "_"): r for name, r in rows.items()},
    }, indent=2) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"figures: {shown}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
