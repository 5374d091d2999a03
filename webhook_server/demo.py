"""``podium demo``: what Podium does today, on embedded defaults, start to finish.

Starts a local MLflow server and ``podium serve`` on free ports, registers the webhook,
trains and registers a churn model version, requests Production through the registry tag,
and shows what Podium stored and wrote back. Every line it prints is read back from MLflow
or the store. (Checks, the comparison and Slack approvals join the demo as they are built.)
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import click

from webhook_server.devserver import bin_path, start_mlflow, start_podium

DEMO_DIR = Path(".podium/demo")
MODEL = "churn-demo"


class DemoError(Exception):
    def __init__(self, step: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason, self.log = step, reason, log


def _step(n: int, text: str) -> None:
    click.echo(click.style(f"[{n}] ", bold=True) + text)


def _wait(what: str, predicate, timeout: float = 30, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise DemoError(what, f"not observed within {timeout:.0f} s", log)


def run_demo(keep_running: bool = False, workdir: Path = DEMO_DIR) -> int:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        _run(workdir, procs)
        if keep_running:
            click.echo(f"\nStill running: MLflow {procs[0].url}, Podium {procs[1].url}. "
                       "Press Ctrl-C to stop.")
            while True:
                time.sleep(3600)
        return 0
    except DemoError as exc:
        click.echo(click.style(f"\ndemo failed at '{exc.step}': {exc.reason}", fg="red"),
                   err=True)
        if exc.log:
            click.echo(f"read the log: {exc.log}", err=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            proc.stop()


def _run(workdir: Path, procs: list) -> None:
    from mlflow import MlflowClient

    from webhook_server.services import build
    from webhook_server.settings import Settings
    from webhook_server.store import requests as reqs

    started = time.monotonic()
    _step(1, f"starting MLflow (SQLite backend, artifacts under {workdir})")
    try:
        mlflow = start_mlflow(workdir / "mlflow")
    except RuntimeError as exc:
        raise DemoError("start MLflow", str(exc), workdir / "mlflow" / "mlflow.log") from None
    procs.append(mlflow)
    secret = secrets.token_urlsafe(24)
    db_url = f"sqlite:///{workdir / 'podium.db'}"
    env = {"MLFLOW_TRACKING_URI": mlflow.url, "PODIUM_DATABASE_URL": db_url,
           "PODIUM_MLFLOW_WEBHOOK_SECRET": secret, "PODIUM_WORKER_POLL": "0.1"}
    _step(2, "starting podium serve (SQLite store, worker and scheduler)")
    try:
        podium = start_podium(workdir, env)
    except RuntimeError as exc:
        raise DemoError("start Podium", str(exc)) from None
    procs.append(podium)
    click.echo(f"    MLflow {mlflow.url}   Podium {podium.url}")

    _step(3, "registering the MLflow webhook (podium webhook register --test)")
    reg = subprocess.run([bin_path("podium"), "webhook", "register", "--url",
                          f"{podium.url}/webhooks/mlflow", "--test"],
                         env={**_base_env(), **env}, capture_output=True, text=True,
                         timeout=120)
    if reg.returncode != 0:
        raise DemoError("register webhook", (reg.stderr or reg.stdout).strip()[-500:])
    click.echo("    " + reg.stdout.strip().splitlines()[-1])

    client = MlflowClient(tracking_uri=mlflow.url, registry_uri=mlflow.url)
    _step(4, f"training '{MODEL}' v1: LightGBM on 5,000 synthetic churn rows, logged to MLflow")
    version = _train(mlflow.url)
    _step(5, f"requesting Production: tag transition_request=Production on v{version}")
    from training.requests import request_transition

    request_transition(client, MODEL, version, target="Production")
    click.echo("    Podium checks the version (22 checks in a child process), compares it "
               "with the champion and decides")
    tags = _wait("a decision written back",
                 lambda: (t := client.get_model_version(MODEL, version).tags)
                 .get("podium.status") in ("promoted", "rejected", "failed") and t,
                 timeout=120, log=podium.log_path)
    click.echo(f"    MLflow shows on v{version}: podium.status={tags['podium.status']}, "
               f"podium.checks={tags.get('podium.checks')}, "
               f"podium.decided_by={tags.get('podium.decided_by')}, "
               f"podium.request_id={tags.get('podium.request_id')}")
    champion = client.get_registered_model(MODEL).aliases.get("champion")
    click.echo(f"    champion alias: {f'v{champion}' if champion else 'none'}")

    svc = build(Settings(database_url=db_url))
    with svc.store.read() as conn:
        rows = [r for r in reqs.list_(conn, model=MODEL) if r["version"] == str(version)]
        history = reqs.history(conn, rows[0]["id"]) if rows else []
    svc.close()
    if not rows:
        raise DemoError("read the stored request", "no request in Podium's store",
                        podium.log_path)
    _step(6, "timeline, read back from Podium's store")
    from webhook_server.tables import render

    click.echo(render(["time", "model", "version", "event", "status", "by"],
                      [[h["at"].strftime("%H:%M:%S"), MODEL, version,
                        h["note"] or ("stored" if h["from_state"] is None else "moved"),
                        h["to_state"], h["actor"]] for h in history]))
    click.echo(f"\nDone in {time.monotonic() - started:.0f} s. Look further with: "
               f"PODIUM_DATABASE_URL={db_url} podium requests; MLflow UI at {mlflow.url} "
               "(with --keep-running).")


def _train(tracking_uri: str) -> str:
    import contextlib
    import io

    from training.train import Dataset, TrainConfig, train

    out = sys.stdout

    def progress(message: str) -> None:
        click.echo(f"    {message}", file=out)

    with contextlib.redirect_stdout(io.StringIO()):  # MLflow's run links; we print ours
        result = train(Dataset.synthetic(5000, seed=1),
                       TrainConfig(model_name=MODEL, trials=2, experiment="podium-demo"),
                       tracking_uri=tracking_uri, progress=progress)
    m = result.metrics
    click.echo(f"    registered v{result.version}: holdout ROC AUC {m['holdout_roc_auc']:.3f} "
               f"(oracle {m['holdout_oracle_roc_auc']:.3f}); run {result.run_url}")
    return str(result.version)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PODIUM_", "MLFLOW_", "SLACK_", "GITLAB_"))}


if __name__ == "__main__":
    sys.exit(run_demo())
