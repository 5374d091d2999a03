"""CPU per stored delivery, in process: Podium's Flask app called as WSGI (no gunicorn, no
load generator) with pre-signed transition requests, JSON logs to a file as under `podium
serve`, plus the access line gunicorn's logger writes for each request.

    python bench/intake_cpu.py [--database postgresql|sqlite] [-n 2000] [--rounds 3]
                               [--profile FILE] [--postgres ADMIN_URL]

Prints, per round, the CPU seconds per 1,000 deliveries of this process (`time.process_time`)
and, on PostgreSQL, of its backends (`/proc/<pid>/stat` of the sessions on the bench's
database), with the wall time and the load average. CPU per delivery holds on shared cores
where req/s does not; compare figures taken side by side (it still grows with the machine's
load). `--profile FILE`: the last round under cProfile with `process_time` as its timer
(its shares; cProfile inflates call-heavy code, so take the µs from unprofiled rounds), the
top of it written to FILE.txt. A fresh database (PostgreSQL: `podium_cpu_<random>`, dropped
at the end) or SQLite file each run. docs/performance.md has what it showed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.intake import PG_ADMIN, SECRET, delivery, sign_time  # noqa: E402
from webhook_server.core import logs  # noqa: E402
from webhook_server.core.settings import Settings  # noqa: E402
from webhook_server.web.app import create_app  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PATH = "/webhooks/mlflow"


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def environs(n: int, tag: str) -> list[dict]:
    """``n`` WSGI environs of distinct signed deliveries (each a new version's request)."""
    from werkzeug.test import EnvironBuilder

    ts = sign_time(60)
    out = []
    for i in range(n):
        did, ts, sig, body = delivery(f"{tag}-{i % 4}", i // 4 + 1, ts)
        out.append(EnvironBuilder(path=PATH, method="POST", data=body, headers={
            "Content-Type": "application/json", "X-MLflow-Delivery-Id": did,
            "X-MLflow-Timestamp": ts, "X-MLflow-Signature": sig}).get_environ())
    return out


def serve(app, envs: list[dict]) -> None:
    access = logging.getLogger("podium.access")  # as PodiumGunicornLogger.access writes it
    for env in envs:
        status: list[str] = []
        t0 = time.perf_counter()
        answer = app(env, lambda s, h, exc=None, status=status: status.append(s))
        for _ in answer:
            pass
        answer.close()
        if not status[0].startswith("200"):
            raise SystemExit(f"answered {status[0]}")
        ms = round((time.perf_counter() - t0) * 1000, 2)
        access.info("%s %s %s %.2fms", "POST", PATH, 200, ms,
                    extra={"method": "POST", "path": PATH, "status": 200, "duration_ms": ms,
                           "client": "127.0.0.1"})


def backends(url: str, database: str) -> list[int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,))]


def measure(app, args, pids: list[int]) -> None:
    for r in range(args.rounds):
        envs = environs(args.n, f"r{r}-{uuid.uuid4().hex[:6]}")
        profiled = args.profile is not None and r == args.rounds - 1
        db0, cpu0, wall0 = sum(map(proc_cpu_s, pids)), time.process_time(), time.perf_counter()
        if profiled:
            prof = cProfile.Profile(time.process_time)
            prof.runcall(serve, app, envs)
            prof.dump_stats(args.profile)
        else:
            serve(app, envs)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        db = sum(map(proc_cpu_s, pids)) - db0
        per = 1000 / args.n
        print(f"round {r}: {args.n} deliveries; CPU s per 1,000: python {cpu * per:.3f}, "
              f"backends {db * per:.3f}; wall {wall * per:.3f} s per 1,000; "
              f"load {os.getloadavg()[0]:.2f}{' (profiled)' if profiled else ''}")
    if args.profile:
        text = io.StringIO()
        stats = pstats.Stats(args.profile, stream=text)
        stats.sort_stats("tottime").print_stats(45)
        stats.sort_stats("cumulative").print_stats(70)
        Path(args.profile + ".txt").write_text(text.getvalue())
        print(f"profile: {args.profile}.txt")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("-n", type=int, default=2000, help="deliveries per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", help="profile the last round into this file")
    ap.add_argument("--postgres", default=PG_ADMIN, help="admin URL (CREATE DATABASE)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="podium-cpu-"))
    (work / "podium.yaml").write_text("{}\n")
    database = None
    if args.database == "postgresql":
        import psycopg

        database = f"podium_cpu_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        url = f"{args.postgres.rsplit('/', 1)[0]}/{database}"
    else:
        url = f"sqlite:///{work / 'podium.db'}"
    print(f"{args.database}: {args.rounds} rounds of {args.n} deliveries; load "
          f"{os.getloadavg()[0]:.2f} at the start")
    try:
        settings = Settings(database_url=url, mlflow_webhook_secret=SECRET,
                            policy_path=str(work / "podium.yaml"))
        with open(work / "podium.log", "w") as log:
            logs.configure("json", stream=log, force=True)
            app = create_app(settings)
            store = app.extensions["podium"].store
            store.migrate()
            serve(app, environs(300, "warm"))  # pools, prepared statements
            measure(app, args, backends(url, database) if database else [])
            store.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if database:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
