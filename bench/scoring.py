"""Batch scoring throughput and memory: `podium score`'s code path against the model's own
speed, at several row counts and in both input formats, in one run.

    python bench/scoring.py [--rows 1000000,5000000] [--format csv,parquet]
                            [--chunk-rows 100000] [--extra-chunk-rows 25000] [--quick] [--log]

- podium: ``training.score.score_file``, file to file (read, validate, score, write, in chunks
  of --chunk-rows; the output in the input's format), as `podium score` runs it. Formats: csv;
  parquet (every column a string, as generated); parquet-typed (not in the default: the numbers
  as int64/float64 columns, as most Parquet files carry them).
- bare: the same LightGBM pipeline's ``predict_proba`` on the same rows, in chunks of the same
  size, each read and typed before its clock starts: the model's speed. (All 5 M typed rows in
  memory at once would take gigabytes; one chunk at a time is the same work for the model.)
- ratio: podium rows/s / bare rows/s, on the same rows; the target is >= 0.9.
- --log: each podium run again with the inference log on (``training.inference_log``: the
  ids and scores as Parquet in a temporary directory, bench/scoring_log_child.py); log_ratio
  is its rows/s / podium's rows/s without the log (what logging costs).
- memory: every measurement runs in a fresh interpreter (bench/scoring_child.py). Peak RSS is
  its ``VmHWM``, which counts the native allocations of LightGBM and Arrow (tracemalloc does
  not); floor is its resident set after the imports and the model, before the first row.
  Bounded memory means: at one --chunk-rows the peak does not grow with the row count, and it
  follows --chunk-rows (the extra runs, at --extra-chunk-rows, on the smallest row count).

The input is synthetic (``training.data.generate``, unique customer IDs, no rejects), made in
slices of 250,000 rows appended to each file (CSV: header once; Parquet: one ParquetWriter,
so row groups of 250,000 rows), generated once per run into a temporary directory that is
deleted at the end; the 1 M-row file is the first 1 M rows of the 5 M-row one. The figures
go to bench/results/scoring.json (--quick: bench/results/scoring-quick.json), which is not
committed. A full run (1 M and 5 M rows, CSV and Parquet, the extra chunk size) puts about
21 M rows through the model: about a quarter of an hour on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from training.data import FEATURES, ID, TARGET, generate, labels, to_typed  # noqa: E402
from training.features import model_pipeline  # noqa: E402
from training.train import lgbm  # noqa: E402

PARAMS = {"num_leaves": 31, "learning_rate": 0.02, "n_estimators": 500,
          "min_child_samples": 50, "reg_lambda": 0.0, "colsample_bytree": 1.0}
GEN_ROWS = 250_000  # rows generated and appended at a time (and Parquet row group size)
TARGET_RATIO = 0.9
RESULTS = ROOT / "bench" / "results"
# parquet: every column a string, as the generator writes them; parquet-typed: the numbers as
# int64/float64 columns (blank TotalCharges null), as most Parquet files carry them.
FORMATS = ("csv", "parquet", "parquet-typed")
_NUMBERS = {"SeniorCitizen": "int64", "tenure": "int64", "MonthlyCharges": "float64",
            "TotalCharges": "float64"}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _formats(text: str) -> list[str]:
    out = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in out if v not in FORMATS]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"formats are {', '.join(FORMATS)}, not {bad or text!r}")
    return out


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Batch scoring throughput and memory: "
                                 "`podium score` against the model's own speed.")
    ap.add_argument("--rows", type=_ints, default=None,
                    help="row counts, comma-separated [1000000,5000000; --quick: 100000]")
    ap.add_argument("--format", type=_formats, default=None,
                    help="csv, parquet, parquet-typed, comma-separated "
                         "[csv,parquet; --quick: parquet]")
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--extra-chunk-rows", type=_ints, default=[25_000],
                    help="further chunk sizes, run on the smallest row count to show memory "
                         "following the chunk size ('' for none) [25000]")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 100,000 rows, Parquet")
    ap.add_argument("--log", action="store_true",
                    help="also score with the inference log on: log_ratio = rows/s with it / "
                         "without it")
    ap.add_argument("--json", type=Path, default=None,
                    help="[bench/results/scoring.json; --quick: .../scoring-quick.json]")
    args = ap.parse_args()
    args.rows = sorted(set(args.rows or ([100_000] if args.quick else
                                         [1_000_000, 5_000_000])))
    args.format = args.format or (["parquet"] if args.quick else ["csv", "parquet"])
    args.json = args.json or RESULTS / ("scoring-quick.json" if args.quick else "scoring.json")
    return args


def _ids(ids: pd.Series, start: int, width: int) -> pd.Series:
    """Customer IDs numbered from ``start + 1`` across the slices (unique in the file)."""
    numbers = pd.Series(range(start + 1, start + len(ids) + 1), index=ids.index).astype(str)
    return numbers.str.zfill(width) + ids.str[-6:]  # the generator's "-ABCDE" suffix


def write_inputs(work: Path, sizes: list[int], formats: list[str]) -> dict[tuple, Path]:
    """One file per (rows, format), written slice by slice: memory bounded by GEN_ROWS."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {(n, fmt): work / f"in-{n}-{fmt}.{fmt.split('-')[0]}" for n in sizes
             for fmt in formats}
    writers: dict[Path, object] = {}
    total, width = max(sizes), max(4, len(str(max(sizes))))
    try:
        for start in range(0, total, GEN_ROWS):
            raw, _ = generate(min(GEN_ROWS, total - start), seed=8 + start // GEN_ROWS)
            raw = raw.drop(columns=[TARGET])
            raw[ID] = _ids(raw[ID], start, width)
            typed = None
            if "parquet-typed" in formats:
                typed = raw.assign(**{c: pd.to_numeric(raw[c].str.strip().replace("", None))
                                      .astype(t) for c, t in _NUMBERS.items()})
            for (n, fmt), path in paths.items():
                if start >= n:
                    continue
                part = (typed if fmt == "parquet-typed" else raw).iloc[: n - start]
                if fmt != "csv":
                    table = pa.Table.from_pandas(part, preserve_index=False)
                    if path not in writers:
                        writers[path] = pq.ParquetWriter(path, table.schema)
                    writers[path].write_table(table)
                else:
                    first = path not in writers
                    if first:
                        writers[path] = open(path, "w", newline="")
                    part.to_csv(writers[path], header=first, index=False)
    finally:
        for w in writers.values():
            w.close()
    return paths


def measure(mode: str, model: Path, src: Path, chunk_rows: int, work: Path) -> dict:
    """One measurement in a fresh interpreter (bench/scoring_child.py)."""
    dst = work / f"out{src.suffix}"
    child = (["bench.scoring_log_child"] if mode == "score-log"
             else ["bench.scoring_child", mode])
    proc = subprocess.run([sys.executable, "-m", *child, str(model),
                           str(src), str(dst), str(chunk_rows)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    for leftover in (dst, dst.with_name(dst.stem + ".rejects.csv")):
        leftover.unlink(missing_ok=True)
    if proc.returncode:
        raise SystemExit(f"{mode} {src.name} (chunks of {chunk_rows:,}) failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.splitlines()[-1])
    out["rows_per_s"] = out["rows"] / out["seconds"] if out["seconds"] else 0.0
    return out


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    args = _args()
    started, load_before = time.strftime("%Y-%m-%dT%H:%M:%S%z"), _load()
    work = Path(tempfile.mkdtemp(prefix="podium-score-"))
    try:
        t = time.perf_counter()
        train_raw, _ = generate(20_000, seed=7)
        train = to_typed(train_raw)
        model = model_pipeline(lgbm(PARAMS, 7)).fit(train[list(FEATURES)], labels(train))
        model_path = work / "model.pkl"
        model_path.write_bytes(pickle.dumps(model))
        del model, train, train_raw
        print(f"model: LightGBM pipeline {PARAMS}, fitted on 20,000 rows "
              f"({time.perf_counter() - t:.1f} s)")

        t = time.perf_counter()
        inputs = write_inputs(work, args.rows, args.format)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:,.0f} MB" for p in inputs.values())
        print(f"data: synthetic rows, generated in slices of {GEN_ROWS:,} "
              f"({time.perf_counter() - t:.1f} s): {sizes}")
        print(f"cpus: {os.cpu_count()}, load average {load_before} (1, 5, 15 min) at the start")
        print("bare = the model's predict_proba on the same rows, in chunks of the same size, "
              "typed and held in memory before the clock starts\n")

        plan = [(args.chunk_rows, n) for n in args.rows]
        plan += [(c, args.rows[0]) for c in args.extra_chunk_rows if c != args.chunk_rows]
        runs = []
        _header()
        for chunk_rows, n in plan:
            bare_src = next(inputs[(n, f)] for f in ("parquet", "csv", "parquet-typed")
                            if (n, f) in inputs)
            bare = measure("bare", model_path, bare_src, chunk_rows, work)
            for fmt in args.format:
                podium = measure("score", model_path, inputs[(n, fmt)], chunk_rows, work)
                run = _run(n, fmt, chunk_rows, podium, bare)
                runs.append(run)
                _row(run)
                if args.log:
                    _log_row(run, measure("score-log", model_path, inputs[(n, fmt)],
                                          chunk_rows, work))
        load_after = _load()
        print(f"\nload average {load_after} at the end "
              f"(cpus: {os.cpu_count()}; a load above it means shared cores: noisy rates)")
        memory = _memory_summary(runs, args)
        for line in memory["lines"]:
            print(line)
        _write_json(args, runs, memory, started, load_before, load_after)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(n: int, fmt: str, chunk_rows: int, podium: dict, bare: dict) -> dict:
    if podium["scored"] != bare["rows"] or podium["rejected"]:
        raise SystemExit(f"{fmt} {n:,}: podium scored {podium['scored']:,} rows "
                         f"({podium['rejected']:,} rejected), bare {bare['rows']:,}")
    return {"rows": n, "format": fmt, "chunk_rows": chunk_rows,
            "podium_rows_per_s": round(podium["rows_per_s"]),
            "bare_rows_per_s": round(bare["rows_per_s"]),
            "ratio": round(podium["rows_per_s"] / bare["rows_per_s"], 3),
            "podium_seconds": round(podium["seconds"], 2),
            "bare_seconds": round(bare["seconds"], 2),
            "peak_rss_mb": round(podium["peak_rss_mb"]),
            "floor_rss_mb": round(podium["floor_rss_mb"]),
            "bare_peak_rss_mb": round(bare["peak_rss_mb"]),
            "typed_chunk_mb": round(bare["typed_chunk_mb"], 1),
            "typed_all_rows_mb_estimate": round(bare["typed_chunk_mb"] * n / chunk_rows)}


_COLUMNS = [("rows", 11), ("format", 15), ("chunk", 9), ("podium rows/s", 15),
            ("bare rows/s", 13), ("ratio", 7), ("peak RSS MB", 13), ("floor MB", 10),
            ("bare peak MB", 14)]


def _header() -> None:
    print("".join(f"{name:>{w}}" if i > 1 else f"{name:<{w}}"
                  for i, (name, w) in enumerate(_COLUMNS)))


def _row(r: dict) -> None:
    ok = "" if r["ratio"] >= TARGET_RATIO else f"  below {TARGET_RATIO}"
    cells = [f"{r['rows']:,}", r["format"], f"{r['chunk_rows']:,}",
             f"{r['podium_rows_per_s']:,}", f"{r['bare_rows_per_s']:,}", f"{r['ratio']:.2f}",
             f"{r['peak_rss_mb']:,}", f"{r['floor_rss_mb']:,}", f"{r['bare_peak_rss_mb']:,}"]
    print("".join(f"{c:>{w}}" if i > 1 else f"{c:<{w}}"
                  for i, (c, (_, w)) in enumerate(zip(cells, _COLUMNS, strict=True))) + ok,
          flush=True)


def _log_row(run: dict, logged: dict) -> None:
    """The same run with the inference log on, beside it (and in its JSON)."""
    run["log_rows_per_s"] = round(logged["rows_per_s"])
    run["log_ratio"] = round(logged["rows_per_s"] / run["podium_rows_per_s"], 3)
    run["log_peak_rss_mb"] = round(logged["peak_rss_mb"])
    print(f"{'':<11}{'+ inference log':<15}{'':>9}{run['log_rows_per_s']:>15,}{'':>13}"
          f"{run['log_ratio']:>7.2f}{run['log_peak_rss_mb']:>13,}   (ratio: to podium "
          "without the log)", flush=True)


def _memory_summary(runs: list[dict], args: argparse.Namespace) -> dict:
    """Peak RSS against the row count (one chunk size) and against the chunk size."""
    lines, by_rows, by_chunk = [], {}, {}
    for fmt in args.format:
        same_chunk = [r for r in runs if r["format"] == fmt and r["chunk_rows"] == args.chunk_rows]
        if len(same_chunk) > 1:
            lo, hi = same_chunk[0], same_chunk[-1]
            by_rows[fmt] = {str(r["rows"]): r["peak_rss_mb"] for r in same_chunk}
            lines.append(f"memory, {fmt}: peak RSS {lo['peak_rss_mb']:,} MB at {lo['rows']:,} "
                         f"rows, {hi['peak_rss_mb']:,} MB at {hi['rows']:,} rows "
                         f"({hi['rows'] // lo['rows']}x the rows; chunks of "
                         f"{args.chunk_rows:,}); the typed rows alone would be "
                         f"~{hi['typed_all_rows_mb_estimate']:,} MB in memory at once")
        same_rows = sorted((r for r in runs if r["format"] == fmt
                            and r["rows"] == args.rows[0]), key=lambda r: r["chunk_rows"])
        if len(same_rows) > 1:
            by_chunk[fmt] = {str(r["chunk_rows"]): r["peak_rss_mb"] for r in same_rows}
            steps = ", ".join(f"{r['peak_rss_mb']:,} MB at chunks of {r['chunk_rows']:,}"
                              for r in same_rows)
            lines.append(f"memory, {fmt}, {args.rows[0]:,} rows: peak RSS {steps} "
                         f"(floor {same_rows[0]['floor_rss_mb']:,} MB)")
    return {"lines": lines, "peak_rss_mb_by_rows": by_rows,
            "peak_rss_mb_by_chunk_rows": by_chunk}


def _write_json(args, runs, memory, started, load_before, load_after) -> None:
    import lightgbm
    import pyarrow
    import sklearn

    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": "bench/scoring.py", "started": started, "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_start": load_before,
                    "load_average_end": load_after},
        "versions": {"pandas": pd.__version__, "pyarrow": pyarrow.__version__,
                     "lightgbm": lightgbm.__version__, "scikit-learn": sklearn.__version__},
        "model": {"params": PARAMS, "fitted_rows": 20_000},
        "method": {"podium": "training.score.score_file, file to file, fresh process",
                   "bare": "predict_proba on the same rows in chunks of chunk_rows, typed "
                           "and in memory before the clock starts, fresh process",
                   "peak_rss_mb": "VmHWM of the measuring process",
                   "floor_rss_mb": "VmRSS after imports and model load, before the first row",
                   "input_slices_rows": GEN_ROWS, "target_ratio": TARGET_RATIO},
        "runs": runs,
        "memory": {k: v for k, v in memory.items() if k != "lines"},
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    shown = args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json
    print(f"figures: {shown}")


if __name__ == "__main__":
    main()
