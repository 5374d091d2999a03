"""Batch scoring throughput: `podium score`'s code path (read, validate, score, write, in
chunks) against a bare `predict_proba` of the same LightGBM pipeline on the same rows held
in memory, in the same run.

    python bench/scoring.py [--rows 1000000] [--format parquet|csv] [--chunk-rows 100000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.data import FEATURES, generate, labels, to_typed  # noqa: E402
from training.features import model_pipeline  # noqa: E402
from training.score import score_file  # noqa: E402
from training.train import lgbm  # noqa: E402

PARAMS = {"num_leaves": 31, "learning_rate": 0.02, "n_estimators": 500,
          "min_child_samples": 50, "reg_lambda": 0.0, "colsample_bytree": 1.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    args = ap.parse_args()

    t = time.perf_counter()
    train_raw, _ = generate(20_000, seed=7)
    train = to_typed(train_raw)
    model = model_pipeline(lgbm(PARAMS, 7)).fit(train[list(FEATURES)], labels(train))
    print(f"model: LightGBM pipeline {PARAMS}, fitted on 20,000 rows "
          f"({time.perf_counter() - t:.1f} s)")

    t = time.perf_counter()
    raw, _ = generate(args.rows, seed=8)
    raw = raw.drop(columns=["Churn"])
    work = Path(tempfile.mkdtemp(prefix="podium-score-"))
    src = work / f"in.{args.format}"
    raw.to_parquet(src) if args.format == "parquet" else raw.to_csv(src, index=False)
    print(f"data: {args.rows:,} synthetic rows written as {args.format} "
          f"({src.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - t:.1f} s)")

    X = to_typed(raw)[list(FEATURES)]
    in_memory = X.memory_usage(deep=True).sum()
    t = time.perf_counter()
    model.predict_proba(X)
    bare_s = time.perf_counter() - t
    small = work / f"small.{args.format}"
    head = raw.head(3 * args.chunk_rows)
    head.to_parquet(small) if args.format == "parquet" else head.to_csv(small, index=False)
    del X, raw, head
    gc.collect()

    report = score_file(lambda frame: model.predict_proba(frame)[:, 1], src,
                        work / f"out.{args.format}", model_version="bench",
                        chunk_rows=args.chunk_rows)
    # Memory, in a separate untimed pass (tracemalloc slows Python down several times):
    # the peak of scoring three chunks, against the typed frame of all rows in memory.
    tracemalloc.start()
    score_file(lambda frame: model.predict_proba(frame)[:, 1], small,
               work / f"small-out.{args.format}", model_version="bench",
               chunk_rows=args.chunk_rows)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bare_rate = args.rows / bare_s
    print(f"{'':34}{'rows/s':>12}{'seconds':>10}")
    print(f"{'bare predict_proba (in memory)':34}{bare_rate:>12,.0f}{bare_s:>10.1f}")
    print(f"{'podium score (file to file)':34}{report.rows_per_s:>12,.0f}"
          f"{report.seconds:>10.1f}")
    print(f"ratio podium score / bare: {report.rows_per_s / bare_rate:.2f}; "
          f"scored {report.scored:,}, rejected {report.rejected:,}; "
          f"chunks of {args.chunk_rows:,} rows")
    print(f"memory: peak traced {peak / 1e6:.0f} MB scoring {3 * args.chunk_rows:,} rows "
          f"in chunks; the typed frame of all {args.rows:,} rows alone is "
          f"{in_memory / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
