"""Evidence bundles: the size of one bundle on a Telco-sized holdout, and the time of
``podium policy diff`` over 50 decisions whose bundles are MLflow artifacts.

The holdout is 1,409 rows in the Telco Customer Churn layout (the size of a 20 % holdout
of IBM's 7,043-row sample; the rows come from ``training.data.generate``, the sample itself
is not shipped). Each decision's scores are the generator's true churn probability plus
noise, judged the way the service judges them (``figures``, ``compare``, ``verdict``) and
written with ``model_tests.bundle.write``; 22 check records as the service writes them.
The 50 bundles are logged to a real ``mlflow server`` as artifacts of one run, and
``policy_diff.diff`` replays them under a stricter policy: cold (downloaded over HTTP) and
warm (a local cache keyed by digest, each read re-checked against it).

    python bench/evidence.py [--decisions 50] [--rows 1409]

Writes bench/results/evidence.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from model_tests import bundle as bundles  # noqa: E402
from model_tests import figures  # noqa: E402
from model_tests.checks import REGISTRY  # noqa: E402
from model_tests.compare import compare  # noqa: E402
from podium_policy.check import parse_text  # noqa: E402
from podium_policy.policy import Business, Checks  # noqa: E402
from podium_policy.policy import Comparison as ComparisonRule  # noqa: E402
from podium_policy.verdict import decide  # noqa: E402
from training.data import generate, labels  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OLD = "default:\n  checks: {slice_roc_auc: 0.5, slice_gap: 0.5}\n"
NEW = ("default:\n  checks: {roc_auc: 0.8, slice_roc_auc: 0.5, slice_gap: 0.5}\n"
       "  comparison: {alpha: 0.01}\n")


def one_bundle(directory: Path, frame, y, truth, seed: int) -> tuple[str, dict, str]:
    rng = np.random.default_rng(seed)
    champion = np.clip(truth + rng.normal(0, 0.12, len(y)), 0.001, 0.999)
    challenger = np.clip(truth + rng.normal(0, 0.10, len(y)), 0.001, 0.999)
    t, rule, business = Checks(), ComparisonRule(), Business()
    columns = {c: frame[c].to_numpy(dtype=object) for c in t.slice_columns}
    records = []
    for name, (category, _) in REGISTRY.items():
        if name in figures.FLOORS:
            ok, value, threshold, reason = figures.floor(name, y, challenger, t)
        elif name == "slices":
            ok, value, threshold, reason = figures.slices(y, challenger, columns, t)
        else:
            ok, value, threshold, reason = True, 1.0, 1.0, f"{name} as recorded"
        records.append({"name": name, "category": category, "passed": bool(ok),
                        "value": value, "threshold": threshold, "reason": reason})
    holdout_sha = "0" * 64
    cmp = compare(y, challenger, champion, challenger_version=str(seed + 2),
                  champion_version=str(seed + 1), comparison=rule, business=business,
                  seed_from=("churn", holdout_sha))
    verdict = decide([r["name"] for r in records if not r["passed"]], "Production",
                     cmp.outcome, cmp.reasons, rule)
    doc = {"request": {"id": seed, "model": "churn", "version": str(seed + 2),
                       "target": "Production", "champion": str(seed + 1)},
           "podium_version": bundles.podium_version(),
           "holdout": {"uri": "judge.csv", "sha256": holdout_sha, "rows": len(y)},
           "models": {"challenger": {"version": str(seed + 2), "sha256": "a" * 64},
                      "champion": {"version": str(seed + 1), "sha256": "b" * 64}},
           "policy": {"sha256": "c" * 64, "source": "podium.yaml",
                      "section": bundles.section(t, rule, business)},
           "checks": records, "comparison": cmp.as_json(), "decision": verdict.as_json(),
           "seed_from": ["churn", holdout_sha]}
    vectors = bundles.scores_frame(frame["customerID"], y, challenger, champion,
                                   {c: frame[c] for c in t.slice_columns})
    digest, files = bundles.write(directory, doc, vectors)
    return digest, files, verdict.kind


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1409)
    args = parser.parse_args()
    from sqlalchemy import update

    from webhook_server.adapters.registry import Registry, mlflow_client
    from webhook_server.core.settings import Settings
    from webhook_server.dev.processes import start_mlflow
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery
    from webhook_server.service.policy_diff import diff
    from webhook_server.service.services import build
    from webhook_server.store import transition_requests as reqs
    from webhook_server.store.schema import requests

    raw, truth = generate(args.rows, seed=11)
    y, frame = labels(raw), raw
    work = Path(tempfile.mkdtemp(prefix="podium-bench-evidence-"))
    server = start_mlflow(work / "mlflow")
    try:
        client = mlflow_client(server.url)
        run = client.create_run(client.create_experiment("bench-evidence")).info.run_id
        svc = build(Settings(database_url=f"sqlite:///{work / 'podium.db'}",
                             mlflow_tracking_uri=server.url))
        svc.store.migrate()
        sizes, kinds = [], []
        for i in range(args.decisions):
            local = work / f"bundle-{i}"
            digest, files, kind = one_bundle(local, frame, y, truth, seed=i)
            kinds.append(kind)
            sizes.append({name: (local / name).stat().st_size for name in files})
            path = f"podium/evidence/request-{i + 1}"
            client.log_artifacts(run, str(local), path)
            rid = svc.intake.record(Delivery("api", f"bench-{i}", "api.request", "{}",
                                             TransitionRequested("churn", str(i + 2),
                                                                 "Production", "api"))
                                    ).request_id
            with svc.store.tx() as conn:
                conn.execute(update(requests).where(requests.c.id == rid).values(
                    state="promoted" if kind == "promote" else "rejected",
                    decided_by="policy"))
                reqs.set_bundle(conn, rid, f"runs:/{run}/{path}", digest)
        registry = Registry(server.url)
        old, new = parse_text(OLD), parse_text(NEW)
        started = time.perf_counter()
        rows = diff(svc.store, registry, old, new, last=args.decisions)
        cold = time.perf_counter() - started
        cache = str(work / "cache")
        diff(svc.store, registry, old, new, last=args.decisions, cache=cache)
        started = time.perf_counter()
        diff(svc.store, registry, old, new, last=args.decisions, cache=cache)
        warm = time.perf_counter() - started
        svc.close()
    finally:
        server.stop()
    parquet = [s["scores.parquet"] for s in sizes]
    doc = [s["bundle.json"] for s in sizes]
    out = {"rows": args.rows, "decisions": args.decisions,
           "bundle_bytes": {"scores.parquet": int(np.median(parquet)),
                            "bundle.json": int(np.median(doc)),
                            "total": int(np.median(np.add(parquet, doc)))},
           "policy_diff_seconds": {"cold_over_http": round(cold, 2),
                                   "warm_cache": round(warm, 2)},
           "changed": sum(r.changed for r in rows),
           "verdicts_then": {k: kinds.count(k) for k in sorted(set(kinds))}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "evidence.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
