"""The scale-out drill: Podium on PostgreSQL with several nodes under chaos, then the
invariants docs/architecture.md promises.

On a fresh PostgreSQL database and a real MLflow server (all on 127.0.0.1): 2 web nodes
(`podium serve --no-worker --no-scheduler`) behind a balancer, 3 workers (`podium worker`,
one with `--scheduler`; judging by registry tags, bench/drill_worker.py), the fake Slack and
GitLab. `--requests` transition requests over `--models` models (real tags and aliases set
in MLflow, so real webhooks; better and worse challengers, Staging, Archived, rollbacks
through the API; every fourth model needs two approvals, the next one either approver: both
click in Slack at the same moment) while every few seconds a random web node or worker is
`kill -9`ed and restarted, MLflow is stopped once for 20 s, and every PostgreSQL session of
the database is terminated once. Then it waits for everything to settle, prints each
invariant and the figures, writes bench/results/drill.json, and exits 1 if an invariant
failed.

    python bench/drill.py [--requests 200] [--models 20] [--seconds 600] [--quick]
                          [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scaleout.run import Options, Result, run  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "drill.json"


def options(argv: list[str] | None = None) -> Options:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=600,
                    help="no new request after this; then up to --settle for the rest")
    ap.add_argument("--settle", type=float, default=180)
    ap.add_argument("--mlflow-down", type=float, default=20.0, help="seconds MLflow is stopped")
    ap.add_argument("--postgres", default=Options.admin_url,
                    help="admin URL (CREATE DATABASE) of the PostgreSQL server")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--quick", action="store_true",
                    help="12 requests over 3 models, one kill of each kind, MLflow down 10 s")
    args = ap.parse_args(argv)
    opts = Options(requests=args.requests, models=args.models, seconds=args.seconds,
                   settle_s=args.settle, mlflow_down_s=args.mlflow_down,
                   admin_url=args.postgres, seed=args.seed)
    if args.quick:
        opts.requests, opts.models, opts.seconds, opts.settle_s = 12, 3, 120, 90
        opts.every_s, opts.max_kills = (2.0, 3.0), 3
        opts.postgres_at_s, opts.mlflow_at_s, opts.mlflow_down_s = 8.0, 11.0, 10.0
    if opts.models < 1 or opts.requests < opts.models:
        ap.error("--requests must be at least --models, and --models at least 1")
    return opts


def report(result: Result, out=sys.stdout) -> None:
    width = max(len(c.name) for c in result.checks)
    for c in result.checks:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.name:<{width}}  {c.detail}", file=out)
    f = result.figures
    print(f"\n{f['decided']} decisions of {f['requests']} requests in {f['traffic_s']} s: "
          f"{f['decisions_per_min']} decisions/min; latency p50 {f['latency_p50_s']} s, "
          f"p95 {f['latency_p95_s']} s (tag set in MLflow -> decision stored)", file=out)
    print(f"restarts survived: {f['restarts_survived']} of {f['kills']} kill -9 "
          f"({', '.join(f'{k} {n}' for k, n in f['kills_by_kind'].items())}); "
          + "; ".join(f["faults"]), file=out)
    print(f"webhooks acknowledged {f['webhooks_acknowledged']}, duplicates "
          f"{f['duplicate_deliveries']}, requests found by the reconciler "
          f"{f['requests_found_by_reconciler']}, approvals clicked {f['approvals_clicked']}, "
          f"Slack posts {f['slack_posts']}; settled in {f['settle_s']} s; load average "
          f"{f['load_average_1_5_15']} on {f['cpus']} CPUs", file=out)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow's chatter per run
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # this process's client:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")  # the drill retries itself
    result = run(options(argv), say=lambda s: print(s, flush=True))
    report(result)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"passed": result.passed, "figures": result.figures,
                                   "checks": [c.__dict__ for c in result.checks]}, indent=2))
    print("drill passed" if result.passed else "drill FAILED: an invariant does not hold")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
