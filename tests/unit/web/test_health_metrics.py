"""The figures the alerts watch, read from the store at scrape time: live workers, the last
finished job of each kind, failing notifications, gate (sandbox) failures, decayed
champions, requests past their approval expiry, the oldest open request, requests waiting
in shadowing for live evidence."""

import threading
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from podium_policy.check import parse_text
from tests.support.signing import mlflow_headers, tag_set
from tests.support.waiting import wait_for
from webhook_server.intake import tell
from webhook_server.jobs.worker import Worker, run_heartbeat
from webhook_server.service.handlers import for_services
from webhook_server.store import audit, counters, outbox
from webhook_server.store import transition_requests as reqs
from webhook_server.store.clock import db_now
from webhook_server.store.schema import request_events, requests
from webhook_server.web.app import create_app


def samples(client) -> dict:
    """{(name, sorted labels): value} of every sample /metrics shows."""
    text = client.get("/metrics").data.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_worker_process_heartbeat_counts_while_it_runs_and_not_after(svc, client):
    assert samples(client)[("podium_workers", ())] == 0
    stop = threading.Event()
    beat = threading.Thread(target=run_heartbeat, args=(svc.store, "node-a:1", stop, 30))
    beat.start()
    try:
        wait_for(lambda: samples(client)[("podium_workers", ())] == 1, what="the heartbeat")
    finally:
        stop.set()
        beat.join()
    assert samples(client)[("podium_workers", ())] == 0  # a clean stop removes the row


def test_a_finished_job_stamps_its_kind_and_an_open_request_its_age(svc, client):
    body = tag_set()
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body))
    assert samples(client)[("podium_request_oldest_open_seconds",
                            (("state", "queued"),))] >= 0
    Worker(svc.queue, for_services(svc), owner="w").run_once()
    with svc.store.read() as conn:
        now = db_now(conn).timestamp()
    stamp = samples(client)[("podium_job_last_done_timestamp_seconds", (("kind", "request"),))]
    assert now - 60 < stamp <= now + 1


def test_failing_notifications_gate_failures_and_decay_are_shown(svc, client):
    with svc.store.tx() as conn:
        outbox.emit(conn, key="k1", kind="message", payload={"what": "x"})
        row_id = outbox.next_batch(conn, "slack")[0]["id"]
        outbox.mark_failed(conn, row_id, "slack chat_postMessage: 500", 60)
        audit.record(conn, actor="scheduler", action="monitor", subject="churn",
                     detail={"decayed": True})
        audit.record(conn, actor="scheduler", action="monitor", subject="fraud",
                     detail={"decayed": True})
        audit.record(conn, actor="scheduler", action="monitor", subject="fraud",
                     detail={"decayed": False})  # the latest report counts
    counters.incr(svc.store, counters.GATE_FAILURES, "check|failed")
    counters.incr(svc.store, counters.GATE_FAILURES, "check|failed")
    seen = samples(client)
    assert seen[("podium_notifications_failing", (("channel", "slack"),))] == 1
    assert seen[("podium_notifications_failing", (("channel", "gitlab"),))] == 0
    assert seen[("podium_notification_oldest_pending_seconds", (("channel", "slack"),))] >= 0
    assert seen[("podium_gate_failures_total", (("outcome", "failed"), ("stage", "check")))] == 2
    assert seen[("podium_model_decayed", (("model", "churn"),))] == 1
    assert seen[("podium_model_decayed", (("model", "fraud"),))] == 0


def test_a_request_awaiting_approval_past_its_expiry_is_overdue(svc):
    svc.policy = parse_text("people:\n  dana: {slack: U0123ABCD}\ndefault:\n  approval: "
                            "{targets: [Production], approvers: [dana], expiry_hours: 1}\n")
    client = create_app(svc.settings, services=svc).test_client()
    for delivery in ("a", "b"):
        body = tag_set(version="1" if delivery == "a" else "2")
        client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body))
    with svc.store.tx() as conn:
        now = db_now(conn)
        conn.execute(update(requests).values(state="awaiting_approval"))
        conn.execute(update(requests).where(requests.c.id == 1)
                     .values(updated_at=now - timedelta(hours=2)))
    assert samples(client)[("podium_requests_overdue", ())] == 1


def test_an_unreadable_policy_leaves_the_overdue_figure_out_not_the_scrape(make_svc,
                                                                          settings, tmp_path):
    svc = make_svc(settings.replace(policy_path=str(tmp_path / "missing.yaml")))
    client = create_app(svc.settings, services=svc).test_client()
    body = tag_set()
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body))
    with svc.store.tx() as conn:
        conn.execute(update(requests).values(state="awaiting_approval"))
    resp = client.get("/metrics")
    assert resp.status_code == 200 and b"podium_workers " in resp.data
    assert b"podium_requests_overdue" not in resp.data


def shadowing(svc, client, version: str, *, days: float, pairs: int | None) -> None:
    """A request of ``churn`` moved into shadowing ``days`` ago, its last look with
    ``pairs`` labelled pairs (None: not looked at yet)."""
    body = tag_set(version=version)
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body))
    with svc.store.tx() as conn:
        rid = max(r.id for r in reqs.list_(conn))
        tell.transition(conn, rid, expect=("queued",), to="shadowing", actor="policy",
                        reason="waiting for live evidence")
        conn.execute(update(request_events).where(request_events.c.request_id == rid,
                                                  request_events.c.to_state == "shadowing")
                     .values(at=db_now(conn) - timedelta(days=days)))
        live = {"alias": "challenger"} if pairs is None else {"alias": "challenger",
                                                                "pairs": pairs}
        reqs.save_evidence(conn, rid, {"live": live})


def test_a_request_waiting_for_live_evidence_shows_its_wait_pairs_and_max_days(svc):
    svc.policy = parse_text("default:\n  shadow: [challenger]\n  comparison:\n"
                            "    live: {min_pairs: 500, max_days: 10}\n")
    client = create_app(svc.settings, services=svc).test_client()
    shadowing(svc, client, "1", days=3, pairs=None)
    seen = samples(client)
    waited = seen[("podium_shadowing_seconds", (("model", "churn"),))]
    assert 3 * 86400 - 60 < waited < 3 * 86400 + 60  # since it entered, not since a look
    assert seen[("podium_shadowing_pairs", (("model", "churn"),))] == 0  # never looked at
    assert seen[("podium_shadowing_max_seconds", (("model", "churn"),))] == 10 * 86400
    with svc.store.tx() as conn:
        reqs.save_evidence(conn, 1, {"live": {"alias": "challenger", "pairs": 812}})
        tell.transition(conn, 1, expect=("shadowing",), to="cancelled", actor="worker")
    assert ("podium_shadowing_pairs", (("model", "churn"),)) not in samples(client)
    shadowing(svc, client, "2", days=1, pairs=812)
    assert samples(client)[("podium_shadowing_pairs", (("model", "churn"),))] == 812


def test_an_unreadable_policy_leaves_out_only_the_shadowing_limit(make_svc, settings,
                                                                  tmp_path):
    svc = make_svc(settings.replace(policy_path=str(tmp_path / "missing.yaml")))
    client = create_app(svc.settings, services=svc).test_client()
    shadowing(svc, client, "1", days=1, pairs=40)
    seen = samples(client)
    assert seen[("podium_shadowing_pairs", (("model", "churn"),))] == 40
    assert not any(name == "podium_shadowing_max_seconds" for name, _ in seen)
