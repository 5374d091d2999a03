"""The outbox: a notification is written with the change that causes it, sent once, in
order, through Slack outages, rate limits and a crash between posting and recording."""

import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support.rollback import roll_back
from tests.support.slack_rig import ALICE
from webhook_server.adapters.notify.drain import drain
from webhook_server.intake import tell
from webhook_server.store import outbox as ob
from webhook_server.store.schema import outbox


def rows(rig, state=None):
    with rig.svc.store.read() as conn:
        q = select(outbox).where(outbox.c.channel == "slack").order_by(outbox.c.id)
        if state:
            q = q.where(outbox.c.state == state)
        return [dict(r) for r in conn.execute(q).mappings()]


def make_due(rig):
    """Skip the backoff wait (a test must not sleep): every pending row is due now."""
    from webhook_server.store.schema import utcnow

    with rig.svc.store.tx() as conn:
        conn.execute(outbox.update().values(run_after=utcnow()))


def test_a_state_change_that_rolls_back_leaves_no_notification(rig):
    rid = rig.request()
    before = len(rows(rig))
    with pytest.raises(RuntimeError), rig.svc.store.tx() as conn:
        tell.transition(conn, rid, expect=("awaiting_approval",), to="rejected", actor="x")
        raise RuntimeError("the transaction fails after the transition")
    assert len(rows(rig)) == before and rig.state(rid).state == "awaiting_approval"


def test_slack_down_for_the_whole_flow_delays_every_message_and_loses_none(rig):
    rig.fake.down = True
    rid = rig.request("3")
    rig.click(rid, ALICE)
    rig.run_jobs()
    assert rig.state(rid).state == "promoted"
    for _ in range(2):  # passes while Slack is down send nothing and keep the order
        make_due(rig)
        assert rig.sender.flush()["sent"] == 0
    assert rig.fake.messages == [] and len(rows(rig, "pending")) == len(rows(rig))
    rig.fake.down = False
    make_due(rig)
    sent = rig.sender.flush()
    assert sent["sent"] == len(rows(rig)) and rows(rig, "pending") == []
    (parent,) = rig.fake.parents()
    replies = [m["text"] for m in rig.fake.replies(parent["ts"])]
    assert replies == _step_texts(rig, rid)  # each step once, in the order it happened
    assert "promoted" in parent["text"]
    assert len({m["metadata"]["event_payload"]["key"] for m in rig.fake.messages}) == len(
        rig.fake.messages)


def _step_texts(rig, rid):
    from webhook_server.adapters.notify import blocks

    return [blocks.step(json.loads(r["payload"])) for r in rows(rig)
            if r["request_id"] == rid and r["kind"] == "step"]


def test_a_rate_limit_is_waited_out_by_the_client(rig):
    rig.fake.fail_next(1, status=429, retry_after=0)
    rig.request("3")
    assert rig.sender.flush()["retry"] == 0
    assert rig.fake.calls.count("chat.postMessage") >= 2 and rig.fake.parents()


def test_server_errors_past_the_client_retries_are_retried_later_in_order(rig):
    rig.fake.fail_next(3, status=500)  # the client retries twice, then gives up
    rid = rig.request("3")
    first = rig.sender.flush()
    assert first == {"sent": 0, "retry": 1, "dead": 0}
    (head, *_) = rows(rig, "pending")
    assert head["attempts"] == 1 and "internal_error" in head["last_error"]
    assert rig.sender.flush()["sent"] == 0  # not due yet: the backoff is respected
    make_due(rig)
    assert rig.sender.flush()["sent"] == len(rows(rig))
    assert len(rig.fake.parents()) == 1
    assert rig.state(rid).state == "awaiting_approval"


def test_a_crash_between_posting_and_recording_does_not_post_twice(rig, monkeypatch):
    rig.request("3")
    real = ob.mark_sent
    calls = {"n": 0}

    def crash_once(conn, row_id, result):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemError("worker killed after Slack answered")
        return real(conn, row_id, result)

    monkeypatch.setattr(ob, "mark_sent", crash_once)
    with pytest.raises(SystemError):
        rig.sender.flush()
    posted = len(rig.fake.messages)
    monkeypatch.setattr(ob, "mark_sent", real)
    rig.sender.flush()
    keys = [m["metadata"]["event_payload"]["key"] for m in rig.fake.messages]
    assert len(keys) == len(set(keys)), keys  # nothing posted twice
    # row 1 was recorded, row 2 posted but not recorded: neither is posted again
    assert len(rig.fake.messages) == posted + len(rows(rig)) - 2
    assert "conversations.replies" in rig.fake.calls  # it looked before posting again


def test_a_permanent_slack_error_drops_that_message_after_three_tries(rig):
    rig.request("3")
    rig.sender.flush()
    with rig.svc.store.tx() as conn:
        ob.emit(conn, key="msg:bad", kind="message", payload={"text": "x" * 50})
        ob.emit(conn, key="msg:good", kind="message", payload={"text": "after the bad one"})
    rig.fake.fail_next(3, error="msg_too_long")
    for _ in range(3):
        make_due(rig)
        rig.sender.flush()
    (dead,) = rows(rig, "dead")
    assert dead["key"] == "msg:bad" and "msg_too_long" in dead["last_error"]
    assert rig.fake.messages[-1]["text"] == "after the bad one"


def test_only_the_lease_holder_sends(rig):
    rig.request("3")
    other = rig.svc.slack_sender(owner="other-process")
    with rig.svc.store.tx() as conn:
        assert ob.acquire_lease(conn, "outbox:slack", "other-process", 60)
    assert rig.sender.flush()["sent"] == 0 and rig.fake.messages == []
    assert other.flush()["sent"] > 0


def test_without_slack_notifications_go_to_the_log(rig, caplog):
    from webhook_server.adapters.notify.sender import SlackSender

    rig.request("3")
    with caplog.at_level(logging.INFO, logger="webhook_server.adapters.notify.sender"):
        assert SlackSender(rig.svc.store).flush()["sent"] == len(rows(rig))
    assert "churn v3 → Production (request 1)" in caplog.text
    assert {r["result"] for r in rows(rig)} == {"log"} and rig.fake.messages == []


def test_the_incoming_webhook_mode_posts_plain_messages(rig):
    from webhook_server.adapters.notify.sender import SlackSender
    from webhook_server.adapters.notify.slack import SlackHook

    rig.request("3")
    sender = SlackSender(rig.svc.store, hook=SlackHook(f"{rig.fake.url}/hooks/T1/B1/x"))
    assert sender.flush()["sent"] == len(rows(rig))
    assert [p["hook"] for p in rig.fake.hook_posts] == ["T1/B1/x"] * len(rows(rig))
    assert "request received" in rig.fake.hook_posts[0]["text"]


def test_new_versions_rollbacks_and_dead_jobs_get_their_own_messages(rig):
    from webhook_server.intake.events import VersionCreated
    from webhook_server.intake.sources import Delivery
    from webhook_server.jobs.worker import PermanentJobError, Worker

    rig.svc.intake.record(Delivery("mlflow", "d-new", "model_version.created", "{}",
                                   VersionCreated("churn", "4", run_id="r1")))
    rig.svc.intake.record(Delivery("mlflow", "d-new", "model_version.created", "{}",
                                   VersionCreated("churn", "4", run_id="r1")))  # redelivered
    with rig.svc.store.tx() as conn:
        rig.svc.queue.enqueue(conn, kind="boom", key="boom:1", payload={})

    def boom(job):
        raise PermanentJobError("the model file is gone")

    Worker(rig.svc.queue, {"boom": boom}, poll_s=0).run_once()
    with rig.svc.store.tx() as conn:  # a ledger entry to roll back along
        from webhook_server.store import ledger

        ledger.record(conn, model="churn", alias="champion", from_version=None,
                      to_version="1", kind="promote", actor="policy")
        ledger.record(conn, model="churn", alias="champion", from_version="1",
                      to_version="2", kind="promote", actor="policy")
    rig.registry.aliases["champion"] = "2"
    from podium_policy.policy import parse_policy

    rig.svc.policy = parse_policy({"people": {"ana": {"cli": "ana"}},  # ana may roll back
                                   "default": {"rollback": {"approvers": ["ana"]}}})
    roll_back(rig.workflow(), "churn", "cli:ana", to="1")
    rig.sender.flush()
    parents = rig.fake.parents()
    texts = [m["text"] for m in parents]
    assert texts[0] == ":new: churn v4 registered (run r1)"
    assert texts[1].startswith(":skull: job boom:1 (boom) is dead after 1 attempt(s): the "
                               "model file is gone")
    # a rollback is a request of its own: its thread tells who moved the champion where
    assert texts[2] == ":trophy: churn v1 → Production: promoted"
    assert rig.fake.replies(parents[2]["ts"])[-1]["text"] == (
        ":trophy: promoted by cli:ana: champion rolled back from v2 to v1")
    assert len(texts) == 3


# --- two senders, one channel: the lease is renewed before each row ------------------------

LEASE_S, SEND_S = 0.5, 0.2  # five rows take 1 s: twice the lease


def emit_messages(store, n: int = 5) -> list[str]:
    keys = [f"msg:{i}" for i in range(n)]
    with store.tx() as conn:
        for key in keys:
            ob.emit(conn, key=key, kind="message", payload={"text": key})
    return keys


def pending(store) -> bool:
    with store.read() as conn:
        return bool(ob.next_batch(conn, "slack", 1))


def flush_concurrently(store, flushers) -> None:
    """Each flusher passes over the outbox until nothing is pending, all at once."""

    def loop(flush):
        while pending(store):
            flush()
            time.sleep(0.01)  # the sender thread's poll interval

    threads = [threading.Thread(target=loop, args=(f,), daemon=True) for f in flushers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)


def test_two_senders_with_slow_sends_send_every_row_exactly_once(svc):
    """Without renewing, the lease runs out mid-pass and the other sender sends the row the
    first one is still sending."""
    keys = emit_messages(svc.store)
    sent, lock = [], threading.Lock()

    def sender(owner):
        def send(row):
            with lock:
                sent.append(row["key"])
            time.sleep(SEND_S)  # a slow Slack
            return owner, None

        return lambda: drain(svc.store, channel="slack", owner=owner, send=send, limit=50,
                             max_backoff_s=1, permanent_attempts=3, lease_s=LEASE_S)

    flush_concurrently(svc.store, [sender("a"), sender("b")])
    assert sorted(sent) == keys


def test_two_slack_senders_with_slow_posts_post_every_message_exactly_once(rig, monkeypatch):
    from webhook_server.adapters.notify.sender import SlackSender
    from webhook_server.adapters.notify.slack import SlackBot

    real = SlackBot.post

    def slow_post(self, **kw):
        time.sleep(SEND_S)  # Slack answers slowly, before the message lands
        return real(self, **kw)

    monkeypatch.setattr(SlackBot, "post", slow_post)
    keys = emit_messages(rig.svc.store)
    senders = [SlackSender(rig.svc.store, bot=SlackBot(rig.svc.settings), owner=owner,
                           lease_s=LEASE_S) for owner in ("a", "b")]
    flush_concurrently(rig.svc.store, [s.flush for s in senders])
    posted = [m["metadata"]["event_payload"]["key"] for m in rig.fake.messages]
    assert sorted(posted) == keys


def counting_send(store, sent, during_first=None):
    def send(row):
        sent.append(row["key"])
        if during_first and len(sent) == 1:
            during_first()
        return "ok", None

    return send


def pass_as_a(store, send):
    return drain(store, channel="slack", owner="a", send=send, limit=50, max_backoff_s=1,
                 permanent_attempts=3, lease_s=60)


def test_a_sender_whose_lease_was_taken_stops_before_its_next_row(svc):
    from webhook_server.store.schema import leases, utcnow

    store, sent = svc.store, []
    emit_messages(store, 3)

    def taken_over():  # a second sender took the channel (a's lease had run out)
        with store.tx() as conn:
            conn.execute(leases.update().values(owner="b",
                                                expires_at=utcnow() + timedelta(minutes=1)))

    assert pass_as_a(store, counting_send(store, sent, taken_over))["sent"] == 1
    assert sent == ["msg:0"]
    with store.read() as conn:
        assert [r["key"] for r in ob.next_batch(conn, "slack")] == ["msg:1", "msg:2"]


def test_a_sender_whose_lease_ran_out_stops_even_if_nobody_took_it(svc):
    """Someone may have held it meanwhile: what the pass read is stale, so it ends."""
    from webhook_server.store.schema import leases, utcnow

    store, sent = svc.store, []
    emit_messages(store, 3)

    def ran_out():
        with store.tx() as conn:
            conn.execute(leases.update().values(expires_at=utcnow() - timedelta(seconds=1)))

    assert pass_as_a(store, counting_send(store, sent, ran_out))["sent"] == 1
    assert pass_as_a(store, counting_send(store, sent))["sent"] == 2  # the next pass goes on
    assert sent == ["msg:0", "msg:1", "msg:2"]
