"""Driving a real Podium and a real MLflow server from a test: new versions, the API, the
CLI as a subprocess, requests by tag, and waiting for the tags a decision writes."""

from __future__ import annotations

import os
import pwd
import subprocess

import requests

from tests.support.settings import API_TOKEN
from tests.support.waiting import wait_for
from webhook_server.dev.processes import bin_path

CHECKS = "default:\n  checks: {slice_roc_auc: 0.5, slice_gap: 0.5, latency_p95_ms: 1000}\n"


def new_version(client, name: str) -> str:
    """Register a version backed by a real run artifact (what `podium train` will do)."""
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(name)
    run = client.create_run("0")
    client.log_text(run.info.run_id, "placeholder model", "model/README.txt")
    client.set_terminated(run.info.run_id)
    mv = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model",
                                     run_id=run.info.run_id)
    return str(mv.version)


def api(podium, path: str):
    resp = requests.get(podium.url + "/api/v1" + path,
                        headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def me() -> str:
    """The OS account `podium approve` / `podium rollback` act as (cli:<account>)."""
    return pwd.getpwuid(os.getuid()).pw_name


def cli(env, *args):
    full = {**{k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "MLFLOW_"))},
            **env}
    return subprocess.run([bin_path("podium"), *args], env=full, capture_output=True,
                          text=True, timeout=300)


def tags_when(client, model, version, status):
    """The version's tags once podium.status reached ``status`` (written after the store)."""
    return wait_for(lambda: (t := client.get_model_version(model, version).tags)
                    .get("podium.status") == status and t, what=f"v{version} {status}")


def request(client, server, model, version, value="Production"):
    client.set_model_version_tag(model, version, "transition_request", value)
    rows = wait_for(lambda: [r for r in api(server, f"/requests?model={model}")["requests"]
                             if r["version"] == version and r["raw_target"] == value],
                    what=f"request for v{version}")
    return rows[0]["id"]
