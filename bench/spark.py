"""The Spark engine against the local one, on the same rows, in one run.

    python bench/spark.py [--rows 1000000] [--labelled 5000000] [--master local[2]]

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

The figures go to bench/results/spark.json (not committed). Not measured here: the labels
join (``podium labels --engine spark`` is not built yet).
"""

from __future__ import annotations

import argparse
import json
import os
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


def _child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"bench child {args[:2]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--labelled", type=int, default=5_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        out = child_score(*rest, args.master) if kind == "score" \
            else child_monitor(*rest, args.master)
        print(json.dumps(out))
        return
    from training.spark_io import missing

    if missing():
        raise SystemExit(f"bench/spark.py: {missing()}")
    results = {"rows": args.rows, "labelled": args.labelled, "master": args.master,
               "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="podium-bench-spark-") as tmp:
        work = Path(tmp)
        source, model = make_inputs(work, args.rows)
        score = {e: _child("score", e, str(source), model, tmp) for e in ("local", "spark")}
        score["ratio"] = round(score["spark"]["rows_per_s"] / score["local"]["rows_per_s"], 3)
        results["score"] = score
        print(json.dumps(score, indent=2), flush=True)
        data = make_labelled(work, args.labelled)
        monitor = {e: _child("monitor", e, data) for e in ("local", "spark")}
        same = all(abs(monitor["local"]["auc"][k] - v) < 1e-9
                   for k, v in monitor["spark"]["auc"].items())
        monitor["same_auc"] = same and monitor["local"]["auc"].keys() == \
            monitor["spark"]["auc"].keys()
        results["monitor"] = monitor
        print(json.dumps({k: v for k, v in monitor.items()}, indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "spark.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
