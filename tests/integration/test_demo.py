"""`podium demo` end to end in a scratch directory: what it prints is what MLflow and the
store hold."""

import subprocess

import pytest
from sqlalchemy import create_engine, text

from webhook_server.devserver import bin_path

pytestmark = pytest.mark.integration


def test_demo_runs_the_loop_and_leaves_the_request_in_the_store(tmp_path):
    proc = subprocess.run([bin_path("podium"), "demo"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "test delivery: ok (HTTP 200)" in proc.stdout
    assert "MLflow shows on v1: podium.status=promoted, podium.checks=22/22 passed, " \
        "podium.decided_by=policy, podium.request_id=1" in proc.stdout
    assert "champion alias: v1" in proc.stdout
    assert "trial 2/2" in proc.stdout and "registered v1: holdout ROC AUC" in proc.stdout
    db = tmp_path / ".podium" / "demo" / "podium.db"
    with create_engine(f"sqlite:///{db}").connect() as conn:
        rows = conn.execute(text("SELECT model, version, target, state FROM requests")).all()
        test_deliveries = conn.execute(text(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'test'")).scalar_one()
    assert rows == [("churn-demo", "1", "Production", "promoted")]
    assert test_deliveries == 1
