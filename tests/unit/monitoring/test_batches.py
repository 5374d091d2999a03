"""`podium score` records each batch: the Parquet log and one summary row in the store."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from training.data import generate
from webhook_server.cli import main
from webhook_server.store import monitoring as rows


def test_a_batch_summary_is_recorded_once(svc):
    from datetime import UTC, datetime

    batch = {"batch_id": "b1", "model": "churn", "version": "3", "run_id": "r",
             "scored_at": datetime(2026, 6, 3, tzinfo=UTC), "rows": 10, "mean_score": 0.25,
             "flagged": 2, "threshold": 0.5, "deciles": [0.0] * 11, "histogram": [1] * 10,
             "path": "/log/x.parquet"}
    with svc.store.tx() as conn:
        assert rows.record_batch(conn, batch, rejected=1, source="in.csv") is True
        assert rows.record_batch(conn, {**batch, "rows": 99}) is False
    with svc.store.read() as conn:
        (row,) = rows.batches(conn, "churn")
        assert rows.batches(conn, "fraud") == []
    assert (row["rows"], row["rejected"], row["source"], row["log_path"]) == \
        (10, 1, "in.csv", "/log/x.parquet")
    assert row["histogram"] == [1] * 10 and row["scored_at"].tzinfo is not None


@pytest.fixture
def fake_model(monkeypatch):
    import mlflow

    import training.score

    monkeypatch.setattr(training.score, "load_predictor", lambda uri: (
        lambda X: (1 - X["tenure"].to_numpy() / 72).clip(0, 1), "churn/3"))
    monkeypatch.setattr(mlflow.MlflowClient, "get_model_version",
                        lambda self, name, version: SimpleNamespace(run_id="run-3"))


def test_podium_score_logs_the_batch_and_records_its_summary(tmp_path, sqlite_url, fake_model):
    raw, _ = generate(500, seed=5)
    raw.drop(columns=["Churn"]).to_csv(tmp_path / "in.csv", index=False)
    env = {"PODIUM_DATABASE_URL": sqlite_url, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
           "PODIUM_INFERENCE_LOG": str(tmp_path / "log")}
    result = CliRunner().invoke(main, ["score", "--model-uri", "models:/churn@champion",
                                       "--input", str(tmp_path / "in.csv"), "--output",
                                       str(tmp_path / "out.csv"), "--json"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    logged = data["inference_log"]
    assert logged["rows"] == 500 and logged["run_id"] == "run-3" and logged["version"] == "3"
    assert list((tmp_path / "log").rglob("*.parquet"))[0].name == f"{logged['batch_id']}.parquet"
    from webhook_server.store import Store

    store = Store(sqlite_url)
    with store.read() as conn:
        (row,) = rows.batches(conn, "churn")
    store.dispose()
    assert row["batch_id"] == logged["batch_id"] and row["rows"] == 500
    assert np.isclose(row["mean_score"], logged["mean_score"])

    plain = CliRunner().invoke(main, ["score", "--model-uri", "models:/churn@champion",
                                      "--input", str(tmp_path / "in.csv"), "--output",
                                      str(tmp_path / "out2.csv"), "--no-log"], env=env)
    assert plain.exit_code == 0 and "logged batch" not in plain.output
    assert len(list((tmp_path / "log").rglob("*.parquet"))) == 1


def test_podium_score_without_a_policy_file_scores_no_shadow_unless_asked(tmp_path,
                                                                          sqlite_url,
                                                                          fake_model):
    raw, _ = generate(50, seed=5)
    raw.drop(columns=["Churn"]).to_csv(tmp_path / "in.csv", index=False)
    env = {"PODIUM_DATABASE_URL": sqlite_url, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
           "PODIUM_INFERENCE_LOG": str(tmp_path / "log"),
           "PODIUM_POLICY": str(tmp_path / "absent.yaml")}
    args = ["score", "--model-uri", "models:/churn@champion", "--input",
            str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
    quiet = CliRunner().invoke(main, args, env=env)
    assert quiet.exit_code == 0 and "shadow: none (no policy file)" in quiet.output
    asked = CliRunner().invoke(main, [*args, "--shadow"], env=env)
    assert asked.exit_code == 1
    assert "absent.yaml: the policy file does not exist" in asked.output
    assert len(list((tmp_path / "log").rglob("*.parquet"))) == 1  # the refused run logged none
