"""The scheduled monitoring job, ``monitor:<model>:<period>`` (policy ``schedules.monitor``;
the period is the policy's ``monitoring.period`` containing the trigger, e.g. ``2026-W23``):
one job per model and period, so a trigger fired twice changes nothing.

The job builds the monitoring report; when the champion has decayed or the period's latest
drift report found drift, it posts one Slack message keyed ``monitor:<model>:<period>``
(through the outbox: once per model and period, however often the job runs) and, on decay
with ``retrain_on_decay``, queues that day's retrain. The audit row, the message and the
retrain are written in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from podium_policy.schema import Policy
from webhook_server.jobs.queue import JobQueue
from webhook_server.monitoring.report import MonitorReport, build, period_of
from webhook_server.store import Store, audit, outbox

KIND = "monitor"
# (connection, reason) -> whether a retrain was queued now (False: already queued today)
QueueRetrain = Callable[[Connection, str], bool]


def job_key(model: str, period: str) -> str:
    return f"{KIND}:{model}:{period}"


def enqueue(store: Store, queue: JobQueue, model: str, period: str,
            now: datetime | None = None) -> bool:
    """The trigger: the job of ``model`` for the ``period`` containing ``now``."""
    label = period_of(now or datetime.now(UTC), period)
    with store.tx() as conn:
        return queue.enqueue(conn, kind=KIND, key=job_key(model, label),
                             payload={"model": model, "period": label})


def run(payload: dict[str, Any], *, store: Store, policy: Policy,
        queue_retrain: QueueRetrain,
        holdout_of: Callable[[str], dict | None] | None = None) -> dict[str, Any]:
    """One monitoring job; what it found and did (also the audit row's detail)."""
    model, label = payload["model"], payload["period"]
    mp = policy.for_model(model)
    with store.read() as conn:
        report = build(conn, model, mp, holdout_of=holdout_of)
    drift = report.drift
    drifted = (drift["drifted"] if drift and period_of(drift["at"], report.period) == label
               else [])
    found = {"job": job_key(model, label), "period": label, "decayed": report.decayed,
             "decay": report.decay, "drifted": drifted, "retrain": None, "alert": None}
    with store.tx() as conn:
        if report.decayed and mp.monitoring.retrain_on_decay:
            queued = queue_retrain(conn, f"decay ({found['job']})")
            found["retrain"] = "queued" if queued else "already queued"
        if report.decayed or drifted:
            found["alert"] = job_key(model, label)
            outbox.emit(conn, key=found["alert"], kind="message",
                        payload=alert(report, label, drifted, found["retrain"]))
        audit.record(conn, actor="scheduler", action=KIND, subject=model, detail=found)
    return found


def alert(report: MonitorReport, period: str, drifted: list[str],
          retrain: str | None) -> dict[str, Any]:
    """The alert's data (``adapters/notify/messages.py`` words it): the decay when the
    champion decayed, the PSI of each drifted feature, what became of the retrain."""
    d, decay = report.drift, report.decay
    return {"what": "monitoring", "model": report.model, "period": period,
            "decay": ({k: decay[k] for k in ("version", "period", "reason")}
                      if report.decayed else None), "drifted": drifted,
            "drift": ({"model_version": d["model_version"], "threshold": d["threshold"],
                       "psi": {k: d["psi"][k] for k in drifted}} if drifted else None),
            "retrain": retrain}
