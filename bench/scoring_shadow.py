"""What a shadow costs `podium score`: the same file scored with the inference log on, without
a shadow, with one shadow on every row (max_share 1) and on a quarter of them (0.25).

    python bench/scoring_shadow.py [--rows 300000] [--repeats 3]

Both models are LightGBM pipelines as `podium train` builds them (training.features, the
500-tree configuration of bench/scoring.py; the shadow a different seed), trained on 20,000
synthetic rows. The input is synthetic Parquet (``training.data.generate``). Each
configuration runs ``--repeats`` times in turn (interleaved, so a load spike hits all of them)
in this process; the median rows/s is reported, with the ratio to the run without a shadow
and the shadow's own predict time as ``training.score`` reports it (``shadow_seconds``).
Expected: one shadow on every row about halves the rate (the model is most of the work),
a quarter share costs about a quarter of that. The figures go to
bench/results/scoring_shadow.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from training.data import FEATURES, TARGET, generate, labels, to_typed  # noqa: E402
from training.features import model_pipeline  # noqa: E402
from training.inference_log import InferenceLog  # noqa: E402
from training.score import Shadow, score_file  # noqa: E402
from training.train import lgbm  # noqa: E402

PARAMS = {"num_leaves": 31, "learning_rate": 0.02, "n_estimators": 500,
          "min_child_samples": 50, "reg_lambda": 0.0, "colsample_bytree": 1.0}
CONFIGS = (("no shadow", None), ("one shadow, max_share 1", 1.0),
           ("one shadow, max_share 0.25", 0.25))


def _model(seed: int):
    raw, _ = generate(20_000, seed=seed)
    pipe = model_pipeline(lgbm(PARAMS, seed))
    pipe.fit(to_typed(raw)[list(FEATURES)], labels(raw))
    return lambda X: pipe.predict_proba(X)[:, 1]


def _run(work: Path, src: Path, champion, shadow, share: float | None) -> dict:
    log = InferenceLog(str(work / "log"), model="bench", version="1")
    shadows = []
    if share is not None:
        shadows = [Shadow(shadow, InferenceLog(str(work / "log"), model="bench", version="2",
                                               role="shadow"), share)]
    with log:
        for s in shadows:
            s.log.__enter__()
        try:
            report = score_file(champion, src, work / "out.parquet", model_version="bench/1",
                                log=log, shadows=shadows)
        finally:
            for s in shadows:
                s.log.__exit__(None, None, None)
    return {"rows_per_s": report.rows_per_s, "shadow_seconds": report.shadow_seconds,
            "seconds": report.seconds, "shadow_rows": list(report.shadow_rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" /
                    "scoring_shadow.json")
    args = ap.parse_args()
    champion, shadow = _model(1), _model(2)
    with tempfile.TemporaryDirectory(prefix="podium-shadow-bench-") as tmp:
        work = Path(tmp)
        raw, _ = generate(args.rows, seed=9)
        src = work / "in.parquet"
        raw.drop(columns=[TARGET]).to_parquet(src, index=False)
        runs: dict[str, list[dict]] = {name: [] for name, _ in CONFIGS}
        _run(work, src, champion, shadow, None)  # warm: imports, the first predict
        for _ in range(args.repeats):
            for name, share in CONFIGS:
                runs[name].append(_run(work, src, champion, shadow, share))
    base = statistics.median(r["rows_per_s"] for r in runs["no shadow"])
    print(f"{args.rows:,} rows, Parquet, inference log on; median of {args.repeats}")
    print(f"{'configuration':<28} {'rows/s':>10} {'ratio':>7} {'shadow rows':>12} "
          f"{'shadow s':>9}")
    summary = {}
    for name, _ in CONFIGS:
        rate = statistics.median(r["rows_per_s"] for r in runs[name])
        spent = statistics.median(r["shadow_seconds"] for r in runs[name])
        rows = runs[name][0]["shadow_rows"]
        print(f"{name:<28} {rate:>10,.0f} {rate / base:>7.2f} "
              f"{(rows[0] if rows else 0):>12,} {spent:>9.2f}")
        summary[name] = {"rows_per_s": round(rate), "ratio": round(rate / base, 3),
                         "shadow_rows": rows, "shadow_seconds": round(spent, 3)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": args.rows, "repeats": args.repeats,
                                     "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "configs": summary}, indent=2))
    print(f"\nfigures: {args.json}")



if __name__ == "__main__":
    main()
