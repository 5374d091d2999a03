"""The scheduled monitoring job, ``monitor:<model>:<period>`` (policy ``schedules.monitor``;
the period is the policy's ``monitoring.period`` containing the trigger, e.g. ``2026-W23``):
one job per model and period, so a trigger fired twice changes nothing.

The job builds the monitoring report; when the champion has decayed or the period's latest
drift report found drift, it posts one Slack message keyed ``monitor:<model>:<period>``
(through the outbox: once per model and period, however often the job runs) and, on decay
with ``retrain_on_decay``, queues that day's retrain. On decay with ``on_decay: propose`` or
``rollback``, when the former champion is significantly better live (``decay.py``), it asks
for the rollback (``ask_rollback``: the workflow's, through the intake), proposed or at once;
the alert says what became of it. The audit row, the message, the retrain and the rollback
request are written in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from podium_policy.schema import Policy
from webhook_server.intake.events import MONITOR, RollbackRequested
from webhook_server.jobs.queue import JobQueue
from webhook_server.monitoring.decay import RollbackCase, rollback_case
from webhook_server.monitoring.report import MonitorReport, build, period_of
from webhook_server.store import Store, audit, outbox

KIND = "monitor"
# (connection, reason) -> whether a retrain was queued now (False: already queued today)
QueueRetrain = Callable[[Connection, str], bool]
# (connection, the rollback asked for) -> what became of it: state, request, why
# (``workflow.rollback.decayed``)
AskRollback = Callable[[Connection, RollbackRequested], dict]


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
        holdout_of: Callable[[str], dict | None] | None = None,
        ask_rollback: AskRollback | None = None) -> dict[str, Any]:
    """One monitoring job; what it found and did (also the audit row's detail)."""
    model, label = payload["model"], payload["period"]
    mp = policy.for_model(model)
    with store.read() as conn:
        report = build(conn, model, mp, holdout_of=holdout_of)
    drift = report.drift
    drifted = (drift["drifted"] if drift and period_of(drift["at"], report.period) == label
               else [])
    found = {"job": job_key(model, label), "period": label, "decayed": report.decayed,
             "decay": report.decay, "drifted": drifted, "retrain": None, "alert": None,
             "rollback": None}
    mode = mp.monitoring.on_decay
    case = (rollback_case(store, model, mp, report.decay)
            if report.decayed and mode != "alert" and ask_rollback is not None else None)
    with store.tx() as conn:
        if report.decayed and mp.monitoring.retrain_on_decay:
            queued = queue_retrain(conn, f"decay ({found['job']})")
            found["retrain"] = "queued" if queued else "already queued"
        if case is not None:
            found["rollback"] = {"mode": mode, **case.as_json(), "state": "not asked",
                                 "request": None, "note": None}
            if case.better:
                done = ask_rollback(conn, asked(case, mode, found["job"]))
                found["rollback"].update(state=done["state"], request=done["request"],
                                         note=done["why"])
        if report.decayed or drifted:
            found["alert"] = job_key(model, label)
            outbox.emit(conn, key=found["alert"], kind="message",
                        payload=alert(report, label, drifted, found["retrain"],
                                      found["rollback"]))
        audit.record(conn, actor="scheduler", action=KIND, subject=model, detail=found)
    return found


def asked(case: RollbackCase, mode: str, job: str) -> RollbackRequested:
    """The rollback ``case`` makes: proposed (``propose``) or at once (``rollback``), with
    the live comparison as its evidence."""
    return RollbackRequested(
        case.model, case.former, case.champion, requested_by=MONITOR,
        proposed=mode == "propose",
        evidence={"job": job, "comparison": case.comparison(),
                  "reason": (f"champion v{case.champion} decayed and {case.why}: "
                             + (f"rollback to v{case.former} proposed (monitoring.on_decay: "
                                "propose)" if mode == "propose" else
                                f"rolling back to v{case.former} (monitoring.on_decay: "
                                "rollback)")),
                  "live": case.live.as_json() if case.live else None})


def alert(report: MonitorReport, period: str, drifted: list[str],
          retrain: str | None, rollback: dict | None = None) -> dict[str, Any]:
    """The alert's data (``adapters/notify/messages.py`` words it): the decay when the
    champion decayed, the PSI of each drifted feature, what became of the retrain and of
    the rollback ``on_decay`` asked for."""
    d, decay = report.drift, report.decay
    return {"what": "monitoring", "model": report.model, "period": period,
            "decay": ({k: decay[k] for k in ("version", "period", "reason")}
                      if report.decayed else None), "drifted": drifted,
            "drift": ({"model_version": d["model_version"], "threshold": d["threshold"],
                       "psi": {k: d["psi"][k] for k in drifted}} if drifted else None),
            "retrain": retrain,
            "rollback": ({k: rollback[k] for k in ("mode", "former", "why", "state",
                                                   "request", "note")} if rollback else None)}
