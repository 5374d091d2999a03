"""The MLflow server the demo, the benchmarks and the tests start (``dev/mlflow_server.py``):
MLflow's own ``server`` command, serving from its own process instead of starting uvicorn
in a second one that imports MLflow and opens the stores again."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from webhook_server.dev.processes import start_mlflow

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        pytest.skip("this kernel does not list a process's children (CONFIG_PROC_CHILDREN)")
    return path.read_text().split()


def test_the_server_is_one_process_that_serves_the_registry_and_its_webhooks(tmp_path):
    server = start_mlflow(tmp_path / "mlflow")
    try:
        assert _children(server.proc.pid) == []  # no second process importing MLflow
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_registered_model("launch-check")
        assert client.get_registered_model("launch-check").name == "launch-check"
        # MLflow's own command ran: its store (SQLite, the schema made) and its webhook
        # settings from the environment start_mlflow gives it
        assert (tmp_path / "mlflow" / "mlflow.db").stat().st_size > 0
        hook = client.create_webhook(name="launch-check", url="http://127.0.0.1:9/hook",
                                     events=["model_version.created"])
        assert hook.url == "http://127.0.0.1:9/hook"  # a private address is allowed
    finally:
        server.stop()
