"""The workflow tests' trained versions (churn-wf v1 modest, v2 overfit, v3 good) and the
pinned judging holdout, shared by tests/integration/test_workflow*.py: trained once per session
into a template MLflow directory (tests/support/mlflow_template.py) that each module's server
starts from a copy of."""

from __future__ import annotations

import mlflow

from tests.support.podium_runs import api
from tests.support.waiting import wait_for
from training.train import Dataset, TrainConfig, train

GOOD = {"num_leaves": 15, "learning_rate": 0.05, "n_estimators": 200, "min_child_samples": 50}
MODEST = {"num_leaves": 3, "learning_rate": 0.1, "n_estimators": 15, "min_child_samples": 100}
WEAK = {"num_leaves": 63, "learning_rate": 0.3, "n_estimators": 300, "min_child_samples": 5}


def train_versions(mlflow_server):
    """churn-wf v1 (modest), v2 (overfit: worse), v3 (good, more data: better); trained once
    for the module."""
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    out = {}
    for key, n, seed, params in (("v1", 4000, 1, MODEST), ("v2", 4000, 1, WEAK),
                                 ("v3", 12000, 1, GOOD)):
        result = train(Dataset.synthetic(n, seed), TrainConfig(model_name="churn-wf",
                                                               params=params, seed=seed),
                       tracking_uri=mlflow_server.url)
        out[key] = result.version
    return out


def pinned_judge(tmp_path_factory):
    """The policy's holdout, pinned: 2,000 customers no version trained on (as in the demo).
    The policies here also relax the single-row latency budget: these tests are about the
    workflow, and a loaded 2-core CI machine is not a latency benchmark."""
    from model_tests.holdout import sha256_of
    from training.data import generate

    path = tmp_path_factory.mktemp("judge") / "judge.csv"
    generate(2000, seed=4242)[0].to_csv(path, index=False)
    return f"  holdout: {path}\n  holdout_sha256: {sha256_of(path)}\n"


def reset_registry(client, model, versions):
    """A clean registry, v1 champion: no request left for the reconciler to pick up."""
    for v in versions.values():
        if "transition_request" in client.get_model_version(model, v).tags:
            client.delete_model_version_tag(model, v, "transition_request")
    if "challenger" in client.get_registered_model(model).aliases:
        client.delete_registered_model_alias(model, "challenger")
    client.set_registered_model_alias(model, "champion", versions["v1"])


def final(server, request_id):
    return wait_for(lambda: (r := api(server, f"/requests/{request_id}"))["state"]
                    in ("promoted", "rejected", "failed", "staged", "awaiting_approval")
                    and r, timeout=240, what=f"request {request_id} to settle")

