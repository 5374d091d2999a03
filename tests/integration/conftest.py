"""A real `mlflow server` (SQLite backend) per module, and `podium serve` runs."""

from __future__ import annotations

import uuid

import pytest

from tests.support.mlflow_template import start_seeded
from tests.support.settings import API_TOKEN, DEFAULT_POLICY
from tests.support.signing import SECRET
from tests.support.workflow_versions import pinned_judge
from webhook_server.dev.processes import start_podium

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_server(request, tmp_path_factory):
    """One real server per test module: the reconciler in one module never sees the tagged
    versions of another. It starts on a copy of a directory made once per session (the
    schema made; with ``MLFLOW_SEED = "churn-wf"`` in the module, the workflow's three
    trained versions registered too)."""
    server = start_seeded(tmp_path_factory, getattr(request.module, "MLFLOW_SEED", "empty"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _drop_webhooks_after(request):
    """Webhooks of a finished test point at a stopped Podium; MLflow would keep retrying
    them (and delay every later delivery), so each test removes what it registered."""
    yield
    if "mlflow_server" not in request.fixturenames:
        return
    from mlflow import MlflowClient

    server = request.getfixturevalue("mlflow_server")
    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    for hook in client.list_webhooks(max_results=100):
        client.delete_webhook(hook.webhook_id)


@pytest.fixture
def mlflow_client(mlflow_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)


@pytest.fixture
def model_name():
    return f"churn-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def podium_env(tmp_path, mlflow_server):
    return {"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path / 'podium.db'}",
            "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET, "PODIUM_API_TOKEN": API_TOKEN,
            "MLFLOW_TRACKING_URI": mlflow_server.url, "PODIUM_WORKER_POLL": "0.1",
            "PODIUM_JOB_BACKOFF": "0.2", "PODIUM_RECONCILE_INTERVAL": "3600",
            "PODIUM_POLICY": DEFAULT_POLICY,
            # no spare sandboxes: each decision starts the one it takes (the same work, and
            # none left unused when the test stops Podium: 3 s of CPU each); spares are the
            # subject of test_hostile_model.py and the worker sizing tests
            "PODIUM_SANDBOX_SPARES": "0"}


@pytest.fixture
def podium(tmp_path, podium_env):
    started = []

    def start(args=(), **extra):
        proc = start_podium(tmp_path, {**podium_env, **extra}, args=tuple(args))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def versions(mlflow_server):
    """churn-wf v1 (modest), v2 (overfit: worse), v3 (good, more data: better), trained once
    per session and registered on the module's own server (a module that uses them says
    ``MLFLOW_SEED = "churn-wf"``)."""
    if not mlflow_server.extra["versions"]:
        pytest.fail('this module uses `versions`: it needs MLFLOW_SEED = "churn-wf"')
    import mlflow

    mlflow.set_tracking_uri(mlflow_server.url)  # as when they were trained here
    mlflow.set_registry_uri(mlflow_server.url)
    return mlflow_server.extra["versions"]


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    """The policy's holdout, pinned (the single-row latency budget is relaxed in CHECKS)."""
    return pinned_judge(tmp_path_factory)
