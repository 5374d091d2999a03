"""`podium train`, `podium score`, `podium drift` against a real MLflow server."""

import json
import os
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from training.data import FEATURES, generate, to_typed
from webhook_server.adapters.notify import messages
from webhook_server.dev.processes import bin_path

pytestmark = pytest.mark.integration


def podium(mlflow_url, *args, cwd=None):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "MLFLOW_"))},
           "MLFLOW_TRACKING_URI": mlflow_url}
    return subprocess.run([bin_path("podium"), *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture(autouse=True)
def _tracking(mlflow_server):
    """The in-process MLflow client talks to the test server, never a default store."""
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    yield
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture(scope="module")
def trained(mlflow_server):
    name = "churn-it"
    proc = podium(mlflow_server.url, "train", "--model", name, "--synthetic", "6000",
                  "--seed", "3", "--trials", "2", "--request", "production", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trial 2/2" in proc.stderr and "fitting the final model" in proc.stderr
    return json.loads(proc.stdout)


def test_train_registers_a_version_with_lineage_and_the_request_tag(trained, mlflow_client):
    mv = mlflow_client.get_model_version(trained["model"], trained["version"])
    assert mv.tags["transition_request"] == "Production"
    assert len(mv.tags["git.commit"]) == 40 and mv.tags["git.dirty"] in ("true", "false")
    assert "LightGBM churn model trained on synthetic churn data" in mv.description
    run = mlflow_client.get_run(trained["run_id"])
    contexts = {i.dataset.name: [t.value for t in i.tags] for i in run.inputs.dataset_inputs}
    assert contexts == {"churn-training": ["training"], "churn-validation": ["validation"],
                        "churn-holdout": ["holdout"]}
    assert all(i.dataset.digest for i in run.inputs.dataset_inputs)
    for metric in ("train_roc_auc", "validation_roc_auc", "holdout_roc_auc", "holdout_f1",
                   "holdout_precision", "holdout_recall", "holdout_log_loss",
                   "holdout_accuracy", "holdout_oracle_roc_auc", "holdout_logreg_roc_auc"):
        assert metric in run.data.metrics
    assert run.data.metrics["holdout_roc_auc_vs_oracle"] >= 0.95
    artifacts = {a.path for a in mlflow_client.list_artifacts(trained["run_id"], "plots")}
    assert artifacts == {"plots/roc.png", "plots/precision_recall.png",
                         "plots/confusion_matrix.png", "plots/feature_importance.png"}
    nested = mlflow_client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{trained['run_id']}'")
    assert len(nested) == 2


def test_the_logged_model_reloads_with_signature_and_the_same_predictions(trained, tmp_path):
    uri = f"models:/{trained['model']}/{trained['version']}"
    pyfunc = mlflow.pyfunc.load_model(uri)
    assert pyfunc.metadata.signature is not None
    assert pyfunc.metadata.get_input_schema().input_names() == list(FEATURES)
    optional = [c.name for c in pyfunc.metadata.get_input_schema().inputs if not c.required]
    assert optional == ["TotalCharges"]  # blank for new customers, in any training sample
    raw, _ = generate(200, seed=9)
    X = to_typed(raw)[list(FEATURES)]
    sk = mlflow.sklearn.load_model(uri)
    assert np.allclose(np.asarray(pyfunc.predict(X)), sk.predict_proba(X))
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path)))
    assert (local / "input_example.json").exists()
    requirements = (local / "requirements.txt").read_text().split()
    assert any(r.startswith("lightgbm==") for r in requirements)
    holdout = mlflow.artifacts.download_artifacts(run_id=trained["run_id"],
                                                  artifact_path="holdout/holdout.csv",
                                                  dst_path=str(tmp_path))
    assert len(pd.read_csv(holdout)) == 1200
    # the rows that trained it, hashed: none of the holdout's (the comparison checks this)
    from training.lineage import TRAIN_IDS, overlap

    trained_ids = np.load(mlflow.artifacts.download_artifacts(
        run_id=trained["run_id"], artifact_path=TRAIN_IDS, dst_path=str(tmp_path)))
    assert len(trained_ids) == 4800  # train + validation of 6,000 rows
    assert overlap(pd.read_csv(holdout)["customerID"], trained_ids) == 0


def test_score_and_drift_on_files_of_the_real_layout(trained, mlflow_server, tmp_path):
    uri = f"models:/{trained['model']}/{trained['version']}"
    same, _ = generate(3000, seed=21)
    drifted, _ = generate(3000, seed=22, drift=1.0)
    same.drop(columns=["Churn"]).to_csv(tmp_path / "same.csv", index=False)
    drifted.to_csv(tmp_path / "drifted.csv", index=False)
    scored = podium(mlflow_server.url, "score", "--model-uri", uri, "--input",
                    str(tmp_path / "same.csv"), "--output", str(tmp_path / "out.csv"), "--json",
                    cwd=tmp_path)  # the inference log and the store default to the cwd
    assert scored.returncode == 0, scored.stderr[-2000:]
    report = json.loads(scored.stdout)
    assert (report["rows"], report["scored"], report["rejected"]) == (3000, 3000, 0)
    assert report["model_version"] == f"{trained['model']}/{trained['version']}"
    logged = report["inference_log"]
    assert logged["rows"] == 3000 and logged["version"] == str(trained["version"])
    assert logged["run_id"] == trained["run_id"]
    assert pd.read_parquet(logged["path"])["customer_id"].tolist() == \
        same["customerID"].tolist()
    calm = podium(mlflow_server.url, "drift", "--model", trained["model"], "--input",
                  str(tmp_path / "same.csv"), "--json")
    assert calm.returncode == 0 and json.loads(calm.stdout)["drifted"] == []
    moved = podium(mlflow_server.url, "drift", "--model", trained["model"], "--input",
                   str(tmp_path / "drifted.csv"), "--json")
    assert moved.returncode == 1
    assert "MonthlyCharges" in json.loads(moved.stdout)["drifted"]


def test_train_refuses_invalid_data_listing_every_problem(mlflow_server, tmp_path):
    raw, _ = generate(50, seed=1)
    raw.loc[3, "Contract"] = "Weekly"
    raw.loc[7, "SeniorCitizen"] = "yes"
    raw.to_csv(tmp_path / "bad.csv", index=False)
    proc = podium(mlflow_server.url, "train", "--data", str(tmp_path / "bad.csv"))
    assert proc.returncode == 1
    assert "refusing to train on invalid data" in proc.stderr
    assert "line 5, Contract: unknown category 'Weekly'" in proc.stderr
    assert "line 9, SeniorCitizen: expected 0 or 1, got 'yes'" in proc.stderr


@pytest.fixture
def local_svc(sqlite_url, mlflow_server, tmp_path):
    from tests.support.settings import make_settings
    from webhook_server.service.services import build

    svc = build(make_settings(sqlite_url, mlflow_tracking_uri=mlflow_server.url,
                              policy_path=str(tmp_path / "podium.yaml")))
    svc.store.migrate()
    yield svc
    svc.close()


def run_job(svc, kind, key, model):
    from webhook_server.jobs.queue import Job
    from webhook_server.service.handlers import for_services

    for_services(svc)[kind](Job(1, key, kind, {"model": model}, 1, 6, "test"))


def audit_rows(svc, action):
    from sqlalchemy import select

    from webhook_server.store.schema import audit

    with svc.store.read() as conn:
        return [json.loads(r.detail) for r in conn.execute(
            select(audit).where(audit.c.action == action))]


def test_a_scheduled_retrain_trains_registers_and_requests_promotion(local_svc, tmp_path,
                                                                     mlflow_client):
    (tmp_path / "podium.yaml").write_text(
        "models:\n  churn-sched:\n    training: {synthetic: 3000, trials: 1, "
        "request: Staging}\n")
    run_job(local_svc, "retrain", "retrain:churn-sched:2026-12-01", "churn-sched")
    (entry,) = audit_rows(local_svc, "retrain")
    mv = mlflow_client.get_model_version("churn-sched", entry["version"])
    assert mv.tags["transition_request"] == "Staging"
    assert entry["requested"] == f"tag transition_request=Staging on v{entry['version']}"
    run = mlflow_client.get_run(mv.run_id)
    assert run.data.tags["podium.trigger"] == "retrain:churn-sched:2026-12-01"


def test_a_scheduled_drift_report_is_audited_and_queues_a_retrain(local_svc, trained, tmp_path):
    from webhook_server.jobs.queue import list_jobs

    drifted, _ = generate(3000, seed=31, drift=1.0)
    drifted.to_csv(tmp_path / "recent.csv", index=False)
    (tmp_path / "podium.yaml").write_text(
        f"models:\n  {trained['model']}:\n    sandbox: preferred\n    drift: {{input: recent.csv, "
        "retrain_on_drift: true}\n")
    run_job(local_svc, "drift", f"drift:{trained['model']}:2026-12-01", trained["model"])
    (entry,) = audit_rows(local_svc, "drift")
    assert "MonthlyCharges" in entry["drifted"] and entry["rows"] == 3000
    with local_svc.store.read() as conn:
        keys = [j["key"] for j in list_jobs(conn)]
    assert len(keys) == 1 and keys[0].startswith(f"retrain:{trained['model']}:")
    from webhook_server.store import outbox

    with local_svc.store.read() as conn:
        (alert,) = outbox.next_batch(conn, "slack")
    said = messages.text(alert["payload"])
    assert alert["kind"] == "message" and "drift in" in said
    assert "MonthlyCharges" in said and "retraining queued" in said
