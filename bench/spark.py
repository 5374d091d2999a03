"""The Spark engine against the local one, on the same rows, in one run.

    python bench/spark.py [--rows 5000000] [--labelled 5000000] [--logged 2000000,20000000]
                          [--outcomes 1000000] [--master local[2]] [--skip score,monitor]

- score: N synthetic rows (CSV, ``training.data.generate``) scored by ``podium score``'s two
  engines with the inference log on: the local engine (``training.score.score_file``, chunks
  of 100,000) and the Spark engine (``training.spark_score.score_spark`` on --master,
  ``mlflow.pyfunc.spark_udf``). The model is the LightGBM pipeline of bench/scoring.py, saved
  as an MLflow model in a temporary directory. rows/s, the ratio spark / local, and the peak
  resident memory of the driver (the Python process's VmHWM; for Spark also the JVM's, which
  is the driver's other half in local mode). Each engine runs in a fresh interpreter.
- monitor: M labelled predictions over 4 weeks and 2 versions: the local engine's figures
  (``monitoring.realised`` per version and week, on arrays in memory) against the Spark
  engine's (``monitoring.spark_figures.figures`` reading the same rows from Parquet).

- labels and log scan, for each size L of --logged: an inference log of L predictions (2
  versions x 4 weekly batches over a pool of L/4 customers) and an outcomes file of
  --outcomes of those customers. The labels join (``training.labels.join_file``, chunks of
  100,000, each chunk a filtered scan of the log, against ``training.spark_labels.join``,
  counted) and the monitor's log pass (``score_psi.local_counts`` against
  ``spark_counts``: the scores' bins per version and week for the PSI); the same joined
  count and the same PSI are checked.

Every size is a flag: on shared cores, run what fits. The figures go to
bench/results/spark.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
SLICE = 250_000


def _peak_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def make_inputs(work: Path, rows: int) -> tuple[Path, str]:
    """The input CSV and an MLflow model (the pipeline of bench/scoring.py, trained on 20,000
    rows) saved under ``work``."""
    import mlflow.sklearn

    from bench.scoring import PARAMS
    from training.data import FEATURES, generate, labels, to_typed
    from training.features import model_pipeline
    from training.train import lgbm

    path = work / "customers.csv"
    for start in range(0, rows, SLICE):
        raw, _ = generate(min(SLICE, rows - start), seed=start // SLICE)
        raw["customerID"] = [f"{start + i:09d}-C" for i in range(len(raw))]
        raw.drop(columns=["Churn"]).to_csv(path, index=False, mode="a", header=start == 0)
    from mlflow.models import infer_signature

    train, _ = generate(20_000, seed=99)
    X = to_typed(train)[list(FEATURES)]
    model = model_pipeline(lgbm(PARAMS, seed=1)).fit(X, labels(train))
    model_dir = work / "model"  # with a signature: spark_udf passes the columns by name
    mlflow.sklearn.save_model(model, str(model_dir), pyfunc_predict_fn="predict_proba",
                              serialization_format="pickle",
                              signature=infer_signature(X.head(100),
                                                        model.predict_proba(X.head(100))))
    return path, str(model_dir)


def child_score(engine: str, source: str, model: str, work: str, master: str) -> dict:
    from training.inference_log import InferenceLog

    log = InferenceLog(str(Path(work) / f"log-{engine}"), model="bench", version="1")
    jvm = None
    started = time.perf_counter()
    if engine == "local":
        from training.score import load_predictor, score_file

        predict, _ = load_predictor(model)
        with log:
            report = score_file(predict, source, Path(work) / "out-local.csv",
                                model_version="bench/1", log=log)
    else:
        from training.spark_io import session
        from training.spark_score import score_spark

        spark = session(master)
        jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        report = score_spark(spark, model, source, Path(work) / "out-spark.csv",
                             model_version="bench/1", log=log,
                             log_root=str(Path(work) / f"log-{engine}"))
    seconds = time.perf_counter() - started  # includes the model load (and the JVM start)
    out = {"engine": engine, "rows": report.rows, "seconds": round(seconds, 2),
           "score_seconds": round(report.seconds, 2),
           "rows_per_s": round(report.rows / report.seconds),
           "driver_peak_mib": round(_peak_kib() / 1024)}
    if jvm is not None:
        out["jvm_peak_mib"] = round(_peak_kib(jvm) / 1024)
    return out


def child_monitor(engine: str, data: str, master: str) -> dict:
    import pyarrow.parquet as pq

    started = time.perf_counter()
    if engine == "local":
        from webhook_server.monitoring.realised import realised

        frame = pq.read_table(data).to_pandas()
        figures = {k: realised(g["churn"].to_numpy(), g["score"].to_numpy(), 0.5)
                   for k, g in frame.groupby(["version", "period"])}
    else:
        from training.spark_io import session
        from webhook_server.monitoring.spark_figures import figures as spark_figures

        spark = session(master)
        started = time.perf_counter()  # the JVM's start is not the monitor's work
        figures = spark_figures(spark.read.parquet(data), 0.5)
    seconds = time.perf_counter() - started
    return {"engine": engine, "seconds": round(seconds, 2), "groups": len(figures),
            "auc": {f"{k[0]}/{k[1]}": round(v["auc"], 12) for k, v in sorted(figures.items())},
            "driver_peak_mib": round(_peak_kib() / 1024)}


def make_labelled(work: Path, n: int) -> str:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    path = work / "labelled.parquet"
    with pq.ParquetWriter(path, pa.schema([("version", pa.string()), ("period", pa.string()),
                                           ("score", pa.float64()), ("churn", pa.int64())])) as w:
        for start in range(0, n, 1_000_000):
            k = min(1_000_000, n - start)
            y = rng.random(k) < 0.27
            s = np.round(np.clip(0.3 * y + rng.normal(0.3, 0.2, k), 0, 1), 4)
            w.write_table(pa.table({
                "version": rng.choice(["3", "4"], k), "period":
                rng.choice([f"2026-W{w_:02d}" for w_ in (23, 24, 25, 26)], k),
                "score": s, "churn": y.astype(np.int64)}))
    return str(path)


NOW = "2026-07-01T00:00:00+00:00"


def make_log(work: Path, n: int, outcomes: int) -> tuple[str, str]:
    """An inference log of ``n`` predictions of model ``bench`` and an outcomes CSV."""
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pandas as pd

    from training.inference_log import InferenceLog

    root = work / f"log-{n}"
    pool = max(n // 4, 1)
    rng = np.random.default_rng(11)
    per = n // 8
    for b in range(8):
        version, week = str(3 + b % 2), b // 2
        when = datetime(2026, 6, 1, 9, tzinfo=UTC) + timedelta(days=7 * week)
        log = InferenceLog(str(root), model="bench", version=version, run_id="r",
                           batch_id=f"b{b}", now=when)
        with log:
            for start in range(0, per, 1_000_000):
                k = min(1_000_000, per - start)
                ids = pd.DataFrame({"customerID": [f"c{i:09d}" for i in
                                                   rng.integers(0, pool, k)]})
                log.write(log.entries(ids, rng.beta(2, 5, k)))
    path = work / f"outcomes-{n}.csv"
    chosen = rng.choice(pool, min(outcomes, pool), replace=False)
    pd.DataFrame({"customerID": [f"c{i:09d}" for i in chosen],
                  "Churn": np.where(rng.random(len(chosen)) < 0.27, "Yes", "No"),
                  "observed_at": "2026-06-30T00:00:00Z"}).to_csv(path, index=False)
    return str(root), str(path)


def _reference(version: str) -> dict:
    return {"edges": [i / 10 for i in range(1, 10)], "share": [0.1] * 10 + [0.0]}


def child_labels(engine: str, root: str, outcomes: str, master: str) -> dict:
    from datetime import datetime

    from training.labels import join_file  # imports are not the join's work

    now = datetime.fromisoformat(NOW)
    jvm = None
    started = time.perf_counter()
    if engine == "local":

        joined = rejected = 0
        for _, chunk, bad in join_file(outcomes, root, "bench", now=now):
            joined, rejected = joined + len(chunk), rejected + len(bad)
    else:
        from training.spark_io import session
        from training.spark_labels import join

        spark = session(master)
        jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        started = time.perf_counter()  # the JVM's start is not the join's work
        _, frame, bad = join(spark, outcomes, root, "bench", now)
        joined, rejected = frame.count(), bad.count()
    out = {"engine": engine, "seconds": round(time.perf_counter() - started, 2),
           "joined": joined, "rejected": rejected, "driver_peak_mib": round(_peak_kib() / 1024)}
    if jvm is not None:
        out["jvm_peak_mib"] = round(_peak_kib(jvm) / 1024)
    return out


def child_psi(engine: str, root: str, master: str) -> dict:
    import pyarrow.dataset  # noqa: F401  (imports are not the pass's work)

    import webhook_server.monitoring.report  # noqa: F401
    from webhook_server.monitoring.score_psi import local_counts, psi_of, spark_counts

    jvm = None
    started = time.perf_counter()
    if engine == "local":
        counts = local_counts(root, "bench", "week", _reference)
    else:
        from training.spark_io import session

        spark = session(master)
        jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        started = time.perf_counter()
        counts = spark_counts(spark, root, "bench", "week", _reference)
    psi = psi_of(counts, _reference)
    out = {"engine": engine, "seconds": round(time.perf_counter() - started, 2),
           "predictions": int(sum(c.sum() for c in counts.values())),
           "psi": {f"{k[0]}/{k[1]}": v for k, v in sorted(psi.items())},
           "driver_peak_mib": round(_peak_kib() / 1024)}
    if jvm is not None:
        out["jvm_peak_mib"] = round(_peak_kib(jvm) / 1024)
    return out


def _child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"bench child {args[:2]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--labelled", type=int, default=5_000_000)
    ap.add_argument("--logged", default="2000000,20000000",
                    help="comma-separated sizes of the inference log")
    ap.add_argument("--outcomes", type=int, default=1_000_000)
    ap.add_argument("--skip", default="", help="comma-separated: score, monitor, labels")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--out", default="spark.json", help="file name under bench/results/")
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        child = {"score": child_score, "monitor": child_monitor, "labels": child_labels,
                 "psi": child_psi}[kind]
        print(json.dumps(child(*rest, args.master)))
        return
    from training.spark_io import missing

    if missing():
        raise SystemExit(f"bench/spark.py: {missing()}")
    skip = set(filter(None, args.skip.split(",")))
    results = {"rows": args.rows, "labelled": args.labelled, "master": args.master,
               "cpus": os.cpu_count(), "shared_cores": True}
    with tempfile.TemporaryDirectory(prefix="podium-bench-spark-") as tmp:
        work = Path(tmp)
        if "score" not in skip:
            source, model = make_inputs(work, args.rows)
            score = {e: _child("score", e, str(source), model, tmp) for e in ("local", "spark")}
            score["ratio"] = round(score["spark"]["rows_per_s"]
                                   / score["local"]["rows_per_s"], 3)
            results["score"] = score
            _save(results, "score", score, args.out)
        if "monitor" not in skip:
            data = make_labelled(work, args.labelled)
            monitor = {e: _child("monitor", e, data) for e in ("local", "spark")}
            same = all(abs(monitor["local"]["auc"][k] - v) < 1e-9
                       for k, v in monitor["spark"]["auc"].items())
            monitor["same_auc"] = same and monitor["local"]["auc"].keys() == \
                monitor["spark"]["auc"].keys()
            results["monitor"] = monitor
            _save(results, "monitor", monitor, args.out)
        if "labels" not in skip:
            for n in [int(v) for v in args.logged.split(",") if v]:
                root, outcomes = make_log(work, n, args.outcomes)
                labels = {e: _child("labels", e, root, outcomes) for e in ("local", "spark")}
                labels["same_joined"] = labels["local"]["joined"] == labels["spark"]["joined"]
                labels["ratio"] = round(labels["local"]["seconds"]
                                        / max(labels["spark"]["seconds"], 1e-9), 3)
                psi = {e: _child("psi", e, root) for e in ("local", "spark")}
                psi["same_psi"] = psi["local"]["psi"] == psi["spark"]["psi"]
                psi["ratio"] = round(psi["local"]["seconds"]
                                     / max(psi["spark"]["seconds"], 1e-9), 3)
                results.setdefault("logged", {})[str(n)] = {"labels": labels, "psi": psi}
                _save(results, f"logged {n:,}", results["logged"][str(n)], args.out)
                shutil.rmtree(root)
    _save(results, None, None, args.out)


def _save(results: dict, name: str | None, part: dict | None, out: str) -> None:
    """Print a finished part and write everything so far (a later part may not fit)."""
    if part is not None:
        print(json.dumps({name: part}, indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
