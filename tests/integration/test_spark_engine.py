"""`podium score --engine spark` against the local engine, on a real registered LightGBM
pipeline (churn-wf v3 on the module's own MLflow server): the same scores, the same output
columns, the same inference-log layout and the same batch summary in the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from training.data import generate
from webhook_server.cli import main

MLFLOW_SEED = "churn-wf"
pytestmark = pytest.mark.integration


def _podium(env: dict, *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _read(path: Path) -> pd.DataFrame:
    """An output as text, whether one file (local) or a directory of parts (Spark)."""
    if path.suffix == ".parquet":
        return ds.dataset(str(path), format="parquet").to_table().to_pandas()
    files = sorted(path.glob("part-*")) if path.is_dir() else [path]
    return pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files],
                     ignore_index=True)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """1,500 customers to score, three of them invalid (rejected by both engines)."""
    raw, _ = generate(1500, seed=31)
    raw = raw.drop(columns=["Churn"])
    raw.loc[10, "Contract"] = "Weekly"
    raw.loc[20, "tenure"] = "-3"
    raw.loc[30, "SeniorCitizen"] = "yes"
    path = tmp_path_factory.mktemp("spark-in") / "customers.csv"
    raw.to_csv(path, index=False)
    return path


def test_spark_scoring_matches_the_local_engine(spark, versions, mlflow_server, rows, tmp_path,
                                                sqlite_url):
    uri = f"models:/churn-wf/{versions['v3']}"
    env = {"PODIUM_DATABASE_URL": sqlite_url, "MLFLOW_TRACKING_URI": mlflow_server.url,
           "PODIUM_INFERENCE_LOG": str(tmp_path / "log")}
    out = {}
    for engine in ("local", "spark"):
        result = _podium(env, "score", "--engine", engine, "--model-uri", uri, "--input",
                         str(rows), "--output", str(tmp_path / f"{engine}.csv"), "--json")
        assert result.exit_code == 0, result.output
        out[engine] = json.loads(result.stdout)
    local, spark_ = out["local"], out["spark"]
    assert (spark_["rows"], spark_["scored"], spark_["rejected"]) == \
        (local["rows"], local["scored"], local["rejected"]) == (1500, 1497, 3)
    a = _read(tmp_path / "local.csv").sort_values("customerID", ignore_index=True)
    b = _read(tmp_path / "spark.csv").sort_values("customerID", ignore_index=True)
    assert list(b.columns) == list(a.columns)
    assert np.allclose(b["churn_probability"].astype(float), a["churn_probability"]
                       .astype(float), rtol=0, atol=1e-12)
    assert b.drop(columns="churn_probability").equals(a.drop(columns="churn_probability"))
    rejects = _read(tmp_path / "spark.rejects.csv").sort_values("customerID")
    assert rejects["reject_reason"].tolist() == _read(tmp_path / "local.rejects.csv") \
        .sort_values("customerID")["reject_reason"].tolist()
    # the log: the same partitions and rows; the summary row: the same figures
    log = ds.dataset(str(tmp_path / "log"), format="parquet", partitioning="hive").to_table() \
        .to_pandas()
    by = {k: g.drop(columns="batch_id").sort_values("customer_id", ignore_index=True)
          for k, g in log.groupby("batch_id")}
    lb, sb = by[local["inference_log"]["batch_id"]], by[spark_["inference_log"]["batch_id"]]
    assert sb[["model", "version", "customer_id", "run_id"]].equals(
        lb[["model", "version", "customer_id", "run_id"]])
    assert np.allclose(sb["score"], lb["score"], rtol=0, atol=1e-12)
    assert sb["scored_at"].dtype == lb["scored_at"].dtype
    assert Path(spark_["inference_log"]["path"]).parent.name.startswith("date=")
    figures = ("model", "version", "run_id", "rows", "flagged", "threshold", "deciles",
               "histogram")
    assert {k: spark_["inference_log"][k] for k in figures} == \
        {k: local["inference_log"][k] for k in figures}
    assert spark_["inference_log"]["mean_score"] == pytest.approx(
        local["inference_log"]["mean_score"], rel=1e-12)
    from webhook_server.store import Store
    from webhook_server.store import monitoring as store_rows

    store = Store(sqlite_url)
    with store.read() as conn:
        recorded = {b["batch_id"]: b for b in store_rows.batches(conn, "churn-wf")}
    store.dispose()
    assert recorded[spark_["inference_log"]["batch_id"]]["rejected"] == 3
    assert recorded[spark_["inference_log"]["batch_id"]]["histogram"] == \
        recorded[local["inference_log"]["batch_id"]]["histogram"]


@pytest.mark.spark
@pytest.mark.timeout(900)  # four Spark passes and two local ones, after the versions' training
def test_spark_scores_the_policys_shadows_on_the_local_engines_rows(spark, versions,
                                                                    mlflow_server, rows,
                                                                    tmp_path, sqlite_url):
    """v1 champion, v3 in shadow on half of the rows: the Spark pass logs v3's scores on the
    ids the local engine picks (the same id hash), with role shadow, and the same scores;
    the output holds the champion's scores only."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url) \
        .set_registered_model_alias("churn-wf", "challenger", versions["v3"])
    (tmp_path / "podium.yaml").write_text(
        "models:\n  churn-wf:\n    shadow: {aliases: [challenger], max_share: 0.5}\n")
    env = {"PODIUM_DATABASE_URL": sqlite_url, "MLFLOW_TRACKING_URI": mlflow_server.url,
           "PODIUM_INFERENCE_LOG": str(tmp_path / "log"),
           "PODIUM_POLICY": str(tmp_path / "podium.yaml")}
    out = {}
    for engine in ("local", "spark"):
        result = _podium(env, "score", "--engine", engine, "--model-uri",
                         f"models:/churn-wf/{versions['v1']}", "--input", str(rows),
                         "--output", str(tmp_path / f"{engine}.csv"), "--json")
        assert result.exit_code == 0, result.output
        out[engine] = json.loads(result.stdout)
    shadows = {e: [(s["alias"], s["version"], s["rows"]) for s in out[e]["shadows"]]
               for e in out}
    assert shadows["spark"] == shadows["local"]
    assert 600 < shadows["spark"][0][2] < 900  # about half of the 1,497 valid rows
    log = ds.dataset(str(tmp_path / "log"), format="parquet", partitioning="hive").to_table() \
        .to_pandas()
    shadow = log[log["version"] == int(versions["v3"])]
    assert set(shadow["role"]) == {"shadow"}
    by = {e: g.sort_values("customer_id", ignore_index=True)
          for e, g in shadow.groupby(shadow["batch_id"].map(
              lambda b: "local" if b.startswith(out["local"]["inference_log"]["batch_id"])
              else "spark"))}
    assert by["spark"]["customer_id"].tolist() == by["local"]["customer_id"].tolist()
    assert np.allclose(by["spark"]["score"], by["local"]["score"], rtol=0, atol=1e-12)
    written = _read(tmp_path / "spark.csv")
    assert set(written["model_version"]) == {f"churn-wf/{versions['v1']}"}
    assert len(written) == 1497
    _labels_and_monitor_agree(env, rows, tmp_path)


def _labels_and_monitor_agree(env: dict, rows: Path, tmp_path: Path) -> None:
    """`podium labels --engine spark` through the CLI, then the local engine on the same
    file (nothing new); `podium monitor` gives the same rows on both engines, each with the
    scores' PSI against the version's training reference on MLflow."""
    raw = pd.read_csv(rows, dtype=str, keep_default_na=False)
    outcomes = tmp_path / "outcomes.csv"
    pd.DataFrame({"customerID": raw["customerID"], "Churn": np.where(
        np.arange(len(raw)) % 4 == 0, "Yes", "No")}).to_csv(outcomes, index=False)
    loaded = {}
    for engine in ("spark", "local"):
        result = _podium(env, "labels", "--engine", engine, "--model", "churn-wf", "--input",
                         str(outcomes), "--rejects", str(tmp_path / f"{engine}.rej.csv"),
                         "--json")
        assert result.exit_code == 0, result.output
        loaded[engine] = json.loads(result.stdout)
    assert loaded["spark"]["new"] == loaded["spark"]["joined"] > 1497  # champion + shadow
    assert (loaded["local"]["joined"], loaded["local"]["new"]) == (loaded["spark"]["joined"], 0)
    assert loaded["spark"]["rejected"] == loaded["local"]["rejected"] == 3  # never scored
    reports = {}
    for engine in ("local", "spark"):
        result = _podium(env, "monitor", "--engine", engine, "--model", "churn-wf", "--json")
        reports[engine] = json.loads(result.stdout)["rows"]
    assert [(r["version"], r["labelled"], r["scored"]) for r in reports["spark"]] == \
        [(r["version"], r["labelled"], r["scored"]) for r in reports["local"]]
    for a, b in zip(reports["spark"], reports["local"], strict=True):
        assert b["psi"] is not None and a["psi"] == b["psi"]
        assert a["auc"] == pytest.approx(b["auc"], rel=1e-12)
