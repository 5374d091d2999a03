"""``podium demo``'s decay step: after the promotion, a week of customers is scored with the
champion (logged), their outcomes arrive after the relationship has changed (a competitor's
offer: ``training.outcomes`` with ``concept=1``), ``podium monitor`` reports the drop and exits
1, and the scheduled monitoring job posts the Slack alert and queues the retrain.

Scoring and label loading run the commands' own code in this process (the model is loaded
once); ``podium monitor`` runs as the command. ``say``, ``wait`` and ``error`` are the demo's
(printing, waiting on the store, ``DemoError``)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from datetime import UTC, datetime

from sqlalchemy import select

from webhook_server.adapters.registry import mlflow_client
from webhook_server.dev.processes import bin_path
from webhook_server.monitoring import batches
from webhook_server.monitoring import job as monitoring
from webhook_server.monitoring.labels import load_labels
from webhook_server.store.schema import jobs, outbox


def decay_step(demo, model: str, *, say, wait, error) -> None:
    from training.data import TARGET, generate
    from training.outcomes import outcomes
    from training.score import load_predictor, score_file

    work, store, log = demo.workdir, demo.svc.store, demo.podium.log_path
    log_root = str(work / "inference-log")
    customers, truth = generate(2000, seed=41, drift=1.0)
    src = work / "customers-week.csv"
    customers.drop(columns=[TARGET]).to_csv(src, index=False)
    with contextlib.redirect_stdout(io.StringIO()):
        predict, version = load_predictor(f"models:/{model}@champion")
    with batches.open_log(log_root, version, mlflow_client(demo.mlflow.url)) as batch:
        report = score_file(predict, src, work / "scored-week.csv", model_version=version,
                            log=batch)
    logged = batches.record(store, batch, rejected=report.rejected, source=str(src))
    say(f"podium score: {logged['rows']:,} predictions of {version} logged under "
        f"inference-log/model={model}/version={logged['version']}/ (predicted churn "
        f"{logged['mean_score']:.1%})")
    outcome_file = work / "outcomes.csv"
    outcomes(customers, truth, concept=1.0, seed=42,
             observed_at=datetime.now(UTC)).to_csv(outcome_file, index=False)
    labels = load_labels(store, model, outcome_file, log_root)
    say(f"podium labels: {labels.joined:,} outcomes joined to their predictions "
        f"({labels.rejected} rejected); a competitor's offer changed who churns")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PODIUM_", "MLFLOW_", "SLACK_", "GITLAB_"))}
    mon = subprocess.run([bin_path("podium"), "monitor", "--model", model],
                         env={**env, **demo.env, "PODIUM_INFERENCE_LOG": log_root},
                         capture_output=True, text=True, timeout=120)
    if mon.returncode != 1:
        raise error("podium monitor", f"expected exit 1 (decay), got {mon.returncode}: "
                    f"{(mon.stderr or mon.stdout)[-800:]}")
    say(f"podium monitor --model {model} (exit 1: the policy's decay rule fired):")
    for line in mon.stdout.splitlines():
        say("  " + line)
    monitoring.enqueue(store, demo.svc.queue, model, "week")
    say("the scheduled monitoring job runs in the worker (one alert per model and week)")
    wait("the monitoring alert in Slack", lambda: _sent(store, f"{monitoring.KIND}:{model}:%"),
         30, log)
    retrain = wait("the retrain queued by the monitoring job",
                   lambda: _job(store, f"retrain:{model}:%"), 30, log)
    say(f"retrain queued: job {retrain} (the worker trains the next version from the "
        "policy's training section; the demo stops before it is done)")


def _sent(store, pattern: str) -> bool:
    with store.read() as conn:
        return conn.execute(select(outbox.c.id).where(outbox.c.key.like(pattern),
                                                      outbox.c.state == "sent")).first() \
            is not None


def _job(store, pattern: str) -> str | None:
    with store.read() as conn:
        return conn.execute(select(jobs.c.key).where(jobs.c.key.like(pattern))).scalar()
