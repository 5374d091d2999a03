"""`podium prune`: old deliveries, sent or dead notifications and finished jobs go; nothing a
live request needs goes, nor the delivery a request was made from (a foreign key), nor the
ledger rows that say where an alias points; audit rows and the ledger only when asked."""

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import audit as audit_repo
from webhook_server.store import ledger as ledger_repo
from webhook_server.store import outbox as ob
from webhook_server.store.prune import prune
from webhook_server.store.schema import (
    audit,
    deliveries,
    jobs,
    ledger,
    outbox,
    requests,
    utcnow,
)

OLD = utcnow() - timedelta(days=40)


def request(svc, version, state):
    rid = svc.intake.record(Delivery("api", f"d-{version}", "api.request", "{}",
                                     TransitionRequested("churn", version, "Production",
                                                         "api"))).request_id
    with svc.store.tx() as conn:
        conn.execute(update(requests).where(requests.c.id == rid).values(state=state))
    return rid


def seed(svc):
    """Everything 40 days old: a finished and a live request (with their deliveries, jobs
    and notifications), a stray delivery, sent / dead / pending notifications, finished
    and queued jobs, audit rows, ledger rows; then one young row of each kind."""
    done = request(svc, "3", "promoted")
    live = request(svc, "4", "awaiting_approval")
    svc.intake.record(Delivery("mlflow", "stray", "model_version.created", "{}", None))
    with svc.store.tx() as conn:
        conn.execute(update(outbox).where(outbox.c.request_id == done).values(state="sent"))
        conn.execute(update(outbox).where(outbox.c.request_id == live).values(state="sent"))
        ob.emit(conn, key="dead-one", kind="message", payload={"text": "x"})
        ob.emit(conn, key="pending-one", kind="message", payload={"text": "x"})
        conn.execute(update(outbox).where(outbox.c.key == "dead-one").values(state="dead"))
        conn.execute(update(jobs).values(state="done"))  # both requests' jobs ran
        for key, state in (("reconcile:1", "dead"), ("reconcile:2", "queued")):
            svc.queue.enqueue(conn, kind="reconcile", key=key, payload={})
            conn.execute(update(jobs).where(jobs.c.key == key).values(state=state))
        audit_repo.record(conn, actor="slack:U1", action="approve", subject=f"request:{live}")
        audit_repo.record(conn, actor="slack:U1", action="approve", subject=f"request:{done}")
        for frm, to in (("1", "2"), ("2", "3")):
            ledger_repo.record(conn, model="churn", alias="champion", from_version=frm,
                               to_version=to, kind="promote", actor="policy")
        ledger_repo.record(conn, model="churn", alias="champion", from_version="3",
                           to_version="4", kind="promote", actor="policy", request_id=live,
                           state="intent")
        for table, column in ((deliveries, "received_at"), (outbox, "created_at"),
                              (jobs, "updated_at"), (audit, "at"), (ledger, "at")):
            conn.execute(update(table).values({column: OLD}))
    svc.intake.record(Delivery("mlflow", "young", "model_version.created", "{}", None))
    return done, live


def counts(svc):
    with svc.store.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (deliveries, outbox, jobs, audit, ledger, requests)}


def test_prune_removes_only_what_no_live_request_needs(svc):
    done, live = seed(svc)
    before = counts(svc)
    with svc.store.read() as conn:
        kept_rows = conn.execute(select(func.count()).select_from(outbox).where(
            (outbox.c.request_id == live) | (outbox.c.key == "pending-one"))).scalar_one()
        dry = prune(conn, 30, dry_run=True)
    assert counts(svc) == before
    with svc.store.tx() as conn:
        removed = prune(conn, 30)
    assert removed == dry == {"deliveries": 1, "outbox": before["outbox"] - kept_rows,
                             "jobs": 2}
    after = counts(svc)
    assert after["requests"] == 2 and after["audit"] == 2 and after["ledger"] == 3
    with svc.store.read() as conn:
        keys = set(conn.execute(select(jobs.c.key)).scalars())
        left = set(conn.execute(select(outbox.c.key, outbox.c.request_id)).all())
        ids = set(conn.execute(select(deliveries.c.delivery_id)).scalars())
    assert keys == {f"request:{live}", "reconcile:2"}  # the live request's, the queued
    assert ("pending-one", None) in left and ("dead-one", None) not in left
    assert all(rid == live for key, rid in left if key != "pending-one")
    assert ids == {"d-3", "d-4", "young"}  # both requests' deliveries stay (foreign key)


def test_audit_and_ledger_go_only_when_asked_and_never_what_is_still_read(svc):
    done, live = seed(svc)
    with svc.store.tx() as conn:
        removed = prune(conn, 30, include_audit=True)
    assert removed["audit"] == 1 and removed["ledger"] == 1
    with svc.store.read() as conn:
        (subject,) = conn.execute(select(audit.c.subject)).scalars()
        assert subject == f"request:{live}"  # its approval still counts
        assert ledger_repo.current(conn, "churn", "champion") == "3"
        assert [e["state"] for e in ledger_repo.entries(conn, "churn",
                                                        include_unapplied=True)] == [
            "applied", "intent"]


def test_a_former_champions_ledger_row_with_an_evidence_bundle_is_never_pruned(svc):
    """The 1 -> 2 move (a former champion's) carries its decision's bundle digest: it stays,
    where the same move without one goes (the test above)."""
    seed(svc)
    with svc.store.tx() as conn:
        conn.execute(update(ledger).where(ledger.c.to_version == "2")
                     .values(bundle_sha256="e" * 64))
        removed = prune(conn, 30, include_audit=True)
    assert removed["ledger"] == 0
    with svc.store.read() as conn:
        kept = [(e["to_version"], e["bundle_sha256"]) for e in ledger_repo.entries(conn,
                                                                                  "churn")]
    assert ("2", "e" * 64) in kept


def test_young_rows_stay_and_a_day_is_the_least(svc):
    seed(svc)
    with svc.store.tx() as conn:
        assert set(prune(conn, 60, include_audit=True).values()) == {0}
        with pytest.raises(ValueError, match="keeps at least 1 day"):
            prune(conn, 0)


def test_the_command_prints_a_table_json_and_a_dry_run(svc):
    from webhook_server.cli import main

    seed(svc)
    env = {"PODIUM_DATABASE_URL": svc.settings.database_url}
    runner = CliRunner()
    dry = runner.invoke(main, ["prune", "--older-than", "30", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "would remove" in dry.output and "deliveries" in dry.output
    assert "audit" not in dry.output
    out = runner.invoke(main, ["prune", "--older-than", "30", "--include-audit", "--json"],
                        env=env)
    data = json.loads(out.output)
    assert data["removed"]["deliveries"] == 1 and data["removed"]["audit"] == 1
    again = runner.invoke(main, ["prune", "--older-than", "30", "--json"], env=env)
    assert set(json.loads(again.output)["removed"].values()) == {0}
    bad = runner.invoke(main, ["prune", "--older-than", "0"], env=env)
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_the_scheduled_prune_is_one_keyed_job_a_day_that_prunes(svc):
    from webhook_server.jobs.scheduler import enqueue_prune
    from webhook_server.jobs.worker import Worker
    from webhook_server.service.handlers import for_services

    seed(svc)
    assert enqueue_prune(svc.store, svc.queue, 30, now=86400 * 100 + 5)
    assert not enqueue_prune(svc.store, svc.queue, 30, now=86400 * 100 + 7200)
    worker = Worker(svc.queue, {"prune": for_services(svc)["prune"]}, poll_s=0)
    with svc.store.tx() as conn:  # only the prune job is runnable
        conn.execute(update(jobs).where(jobs.c.kind != "prune").values(state="done"))
    assert worker.run_once() is not None
    with svc.store.read() as conn:
        assert conn.execute(select(jobs.c.state).where(jobs.c.key == "prune:100")
                            ).scalar_one() == "done"
        assert "stray" not in set(conn.execute(select(deliveries.c.delivery_id)).scalars())
