"""PostgreSQL's one call for a new request (migration 0011's ``podium_record_request``,
``store/one_call.py``) and ``Store.call_alone`` under it: the same rows as the general path,
nothing written when the general path must decide, workers woken, a lost connection
survived."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from tests.support.settings import make_settings, pg_schema
from webhook_server import contract
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.intake import Intake
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.listen import PgWakeup
from webhook_server.store import StoreUnavailable, one_call, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import deliveries, jobs, outbox, request_events, requests

pytestmark = pytest.mark.postgres
TABLES = (deliveries, requests, request_events, outbox, jobs)


@pytest.fixture
def pg(make_svc):
    with pg_schema() as url:
        yield make_svc(make_settings(url))


def delivery(version: str, delivery_id: str, **fields) -> Delivery:
    event = TransitionRequested("churn", version, "Production", origin="tag",
                                requested_by=fields.get("requested_by"),
                                comment=fields.get("comment"))
    return Delivery("mlflow", delivery_id, "model_version_tag.set", '{"v": 1}', event)


def call(svc, d: Delivery, job: dict | None = None):
    """``d`` stored by the one call, with ``job`` (default: the request's job row)."""
    e = d.event
    job = job or svc.queue.job_row(kind="request", key=f"request:{one_call.ID}",
                                   payload={"request_id": one_call.ID},
                                   lock_key="model:churn")
    return one_call.record_request(
        svc.store, source=d.source, delivery_id=d.delivery_id, event=d.event_name,
        body=d.body, model=e.model, version=e.version, target=e.target,
        raw_target=e.raw_target, origin=e.origin, requested_by=e.requested_by,
        comment=e.comment, job=job)


def counts(svc) -> tuple[int, ...]:
    with svc.store.read() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in TABLES)


def rows_of(svc, delivery_pk: int) -> dict[str, dict]:
    """The rows a delivery left, without what differs by nature (ids, clocks, version)."""
    with svc.store.read() as conn:
        d = dict(conn.execute(select(deliveries).where(deliveries.c.id == delivery_pk))
                 .mappings().one())
        r = dict(conn.execute(select(requests).where(requests.c.delivery_pk == delivery_pk))
                 .mappings().one())
        e = dict(conn.execute(select(request_events)
                              .where(request_events.c.request_id == r["id"])).mappings().one())
        o = dict(conn.execute(select(outbox).where(outbox.c.request_id == r["id"]))
                 .mappings().one())
        j = dict(conn.execute(select(jobs).where(jobs.c.key == f"request:{r['id']}"))
                 .mappings().one())
    rid = str(r["id"])
    o["key"], j["payload"] = o["key"].replace(rid, "ID"), j["payload"].replace(rid, "ID")
    j["key"] = j["key"].replace(rid, "ID")
    for row, drop in ((d, ("id", "delivery_id", "received_at")),
                      (r, ("id", "version", "delivery_pk", "created_at", "updated_at")),
                      (e, ("id", "request_id", "at")),
                      (o, ("id", "request_id", "created_at", "run_after")),
                      (j, ("id", "run_after", "created_at", "updated_at"))):
        for key in drop:
            row.pop(key)
    return {"delivery": d, "request": r, "event": e, "outbox": o, "job": j}


def test_the_one_call_stores_the_rows_the_general_path_stores(pg):
    before = datetime.now(UTC)
    fields = {"requested_by": "ann", "comment": "ship it"}
    pk, request_id = call(pg, delivery("3", "d-1", **fields))
    general = Intake(pg.store, pg.queue, one_call=False).record(delivery("4", "d-2", **fields))
    assert rows_of(pg, pk) == rows_of(pg, general.delivery_pk)
    with pg.store.read() as conn:
        made = reqs.get(conn, request_id)
        received = conn.execute(select(deliveries.c.received_at)
                                .where(deliveries.c.id == pk)).scalar_one()
    assert (made.version, made.state, made.delivery_pk) == ("3", states.QUEUED, pk)
    assert before <= received <= made.created_at <= datetime.now(UTC)


def test_the_intake_answers_a_new_request_stored_by_the_one_call_as_before(pg):
    result = pg.intake.record(delivery("3", "d-1"))
    again = pg.intake.record(delivery("3", "d-1"))
    assert (result.status, result.duplicate, again.duplicate) == ("accepted", False, True)
    assert again.request_id == result.request_id
    assert counts(pg) == (1, 1, 1, 1, 1)


def test_the_one_call_writes_nothing_when_the_version_has_an_open_request(pg):
    pg.intake.record(delivery("3", "d-1"))
    assert call(pg, delivery("3", "d-2")) is None
    assert counts(pg) == (1, 1, 1, 1, 1)


def test_the_one_call_writes_nothing_for_a_delivery_stored_before(pg):
    """The request it made has ended, so nothing is open: the delivery's key stops it."""
    first = pg.intake.record(delivery("3", "d-1"))
    with pg.store.tx() as conn:
        reqs.transition(conn, first.request_id, expect=states.OPEN, to=states.REJECTED,
                        actor="test")
    before = counts(pg)
    assert call(pg, delivery("3", "d-1")) is None
    assert counts(pg) == before


def test_a_request_stored_by_the_one_call_wakes_listening_workers(pg):
    wake = PgWakeup.for_engine(pg.store.engine)
    try:
        wake.wait(0.01)  # starts the listening thread
        assert wake.connected.wait(15), "the listener never connected"
        wake.wait(0)  # the wake-up every connection gives
        assert call(pg, delivery("3", "d-1")) is not None
        assert wake.wait(15) is True
    finally:
        wake.close()


def test_a_call_whose_pooled_connection_was_lost_is_made_again_on_a_new_one(pg):
    store = pg.store
    ((pid,),) = store.call_alone("SELECT pg_backend_pid()", {})
    with store.engine.connect() as conn:  # as a server restart would
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    ((again,),) = store.call_alone("SELECT pg_backend_pid()", {})
    assert again != pid


def test_a_call_that_loses_its_connection_twice_says_the_store_is_unavailable(pg):
    with pytest.raises(StoreUnavailable):
        pg.store.call_alone("SELECT pg_terminate_backend(pg_backend_pid())", {})
    assert pg.store.call_alone("SELECT 1", {}) == [(1,)]


def test_a_call_that_fails_raises_and_commits_nothing(pg):
    with pytest.raises(Exception, match="division by zero"):
        pg.store.call_alone(
            "WITH d AS (INSERT INTO deliveries (source, delivery_id, event, status, body, "
            "received_at) VALUES ('s', 'x', 'e', 'accepted', '{}', now()) RETURNING id) "
            "SELECT id / 0 FROM d", {})
    assert counts(pg)[0] == 0


def test_a_percent_sign_in_a_key_written_into_the_statement_is_stored_as_it_is(pg):
    """The arguments every call shares are written into the statement's text (psycopg
    quotes them); a ``%`` there is not taken for a parameter."""
    job = pg.queue.job_row(kind="request", key=f"request:{one_call.ID}:100%",
                           payload={"request_id": one_call.ID, "share": "100%"},
                           lock_key="model:churn")
    _, request_id = call(pg, delivery("3", "d-1"), job)
    with pg.store.read() as conn:
        key, payload = conn.execute(select(jobs.c.key, jobs.c.payload)).one()
    assert key == f"request:{request_id}:100%"
    assert payload == f'{{"request_id": {request_id}, "share": "100%"}}'


@pytest.mark.parametrize("in_one_call", [True, False], ids=["one call", "general path"])
def test_a_delivery_whose_version_lock_times_out_finds_the_store_unavailable(make_svc,
                                                                            in_one_call):
    """The database refuses the write for now (here ``lock_timeout`` while another
    transaction holds the version's lock; a deadlock or a statement timeout alike): both
    paths say StoreUnavailable (the sender is told to retry, 503) and store nothing. The
    general path's statements run on the bare driver, whose errors SQLAlchemy never wraps:
    it let the driver's LockNotAvailable through (an unhandled error, 500)."""
    from webhook_server.service.services import build

    with pg_schema() as url:
        # migrated with the usual timeouts: the migration's lock is one for the whole
        # database, and another test's migration may hold it longer than 200 ms
        make_svc(make_settings(url))
        svc = build(make_settings(f"{url}%20-clock_timeout%3D200"))
        try:
            intake = Intake(svc.store, svc.queue, one_call=in_one_call)
            with svc.store.engine.connect() as conn, conn.begin():
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                             {"key": contract.version_lock("churn", "3")})
                with pytest.raises(StoreUnavailable, match="lock timeout"):
                    intake.record(delivery("3", "d-1"))
            assert counts(svc) == (0, 0, 0, 0, 0)
        finally:
            svc.close()


def odd(delivery_id: str, version: str = "3", origin: str = "tag", model: str = "churn",
        body: str = '{"v": 1}', **fields) -> Delivery:
    event = TransitionRequested(model, version, fields.pop("target", "Production"),
                                origin=origin, **fields)
    return Delivery("mlflow", delivery_id, "model_version_tag.set", body, event)


def every_row(svc) -> dict[str, list[dict]]:
    """Every row of the intake's tables but its clocks (ids included: two fresh schemas
    fed the same deliveries number them alike)."""
    clocks = {"received_at", "created_at", "updated_at", "at", "run_after"}
    with svc.store.read() as conn:
        return {t.name: [{k: v for k, v in row.items() if k not in clocks}
                         for row in conn.execute(select(t).order_by(t.c.id)).mappings()]
                for t in TABLES}


def test_the_one_call_and_the_general_path_leave_the_same_rows_for_any_text(make_svc):
    """The same deliveries, in order, through the intake with and without the one call:
    the same answers and the same rows, ids included. A duplicate, the same version asked
    again, another origin superseding, another version, an invalid target, and text that
    quoting gets wrong: quotes, backslashes, ``%``, ``{id}`` (the one call's stand-in for
    the request id), control and bidirectional characters (scrubbed from a comment),
    non-ASCII, a comment over the scrubber's cap, a long body, JSON escapes."""
    weird = "q'\"\\%s%%(x)s{id}$body$"
    sequence = [
        odd("d-1"), odd("d-1"), odd("d-2"), odd("d-3", origin="alias"), odd("d-4", "4"),
        odd(weird, "5", model=f"m-{weird}", requested_by=f"o'brien\\{weird}",
            comment=f"c {weird}\x01\u202e\n"),
        odd("ünï-モデル", "6", model="モデル-é", requested_by="José", comment="é" * 3000,
            body='{"a": "\\u0000", "b": "\u00fc\\"\\\\", "c": [1e400, -0.0]}'),
        odd("long", "7", model="x" * 200, requested_by="y" * 255, body="z" * 200_000),
        odd("d-5", "6", origin="api", target="staging"), odd("d-6", "8", target="nowhere"),
        odd(weird, "5", model=f"m-{weird}"),
    ]
    with pg_schema() as one_url, pg_schema() as general_url:
        one, general = make_svc(make_settings(one_url)), make_svc(make_settings(general_url))
        with_call = Intake(one.store, one.queue)
        without = Intake(general.store, general.queue, one_call=False)
        for d in sequence:
            assert with_call.record(d) == without.record(d), d.delivery_id
        assert every_row(one) == every_row(general)


def test_constants_written_into_the_statement_are_quoted_not_run(pg):
    """The arguments every call shares are written into the statement's text as psycopg's
    literals: quotes, backslashes and dollar quotes in them are data, never SQL."""
    nasty = "x'); DROP TABLE jobs; --\\$body$"
    job = pg.queue.job_row(kind=nasty[:32], key=f"request:{one_call.ID}:{nasty}",
                           payload={"request_id": one_call.ID, "why": nasty + "é"},
                           lock_key="model:churn")
    _, request_id = call(pg, delivery("3", "d-1"), job)
    with pg.store.read() as conn:
        kind, key, payload = conn.execute(select(jobs.c.kind, jobs.c.key, jobs.c.payload)).one()
    assert (kind, key) == (nasty[:32], f"request:{request_id}:{nasty}")
    assert payload == one_call.template({"request_id": request_id, "why": nasty + "é"})
    assert counts(pg) == (1, 1, 1, 1, 1)


def at_once(calls) -> list:
    """Each of ``calls`` in a thread of its own, released together; their answers."""
    answers: list = [None] * len(calls)
    errors: list[BaseException] = []
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            answers[i] = calls[i]()
        except BaseException as exc:
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return answers


def test_one_delivery_many_times_at_once_on_both_paths_makes_one_request(pg):
    general = Intake(pg.store, pg.queue, one_call=False)
    answers = at_once([lambda i=i: (general if i % 3 == 0 else pg.intake).record(
        delivery("3", "d-1")) for i in range(6)])
    assert sorted(a.duplicate for a in answers) == [False] + [True] * 5
    assert len({a.request_id for a in answers}) == 1
    assert counts(pg) == (1, 1, 1, 1, 1)
    with pg.store.read() as conn:
        assert conn.execute(select(deliveries.c.duplicates)).scalar_one() == 5


def test_two_versions_asked_from_two_origins_at_once_end_as_if_one_after_another(pg):
    """Each version ends with one queued request; every other one was superseded
    (cancelled, with its step); every request has its job and its first step."""
    general = Intake(pg.store, pg.queue, one_call=False)
    at_once([lambda i=i: (general if i % 3 == 0 else pg.intake).record(
        odd(f"d-{i}", str(3 + i % 2), origin=("tag", "alias")[i // 2 % 2])) for i in range(8)])
    with pg.store.read() as conn:
        made = conn.execute(select(requests.c.id, requests.c.version, requests.c.state)
                            .order_by(requests.c.id)).all()
        notes = conn.execute(select(outbox.c.request_id, outbox.c.kind, outbox.c.key)).all()
        job_keys = set(conn.execute(select(jobs.c.key)).scalars())
    for version in ("3", "4"):
        ends = [r.state for r in made if r.version == version]
        assert ends[-1] == states.QUEUED and set(ends[:-1]) <= {states.CANCELLED}
    for r in made:
        kinds = sorted(kind for rid, kind, _ in notes if rid == r.id)
        assert kinds == (["decision", "step", "step"] if r.state == states.CANCELLED
                         else ["step"])
        assert contract.request_created_note(r.id) in {key for _, _, key in notes}
        assert contract.request_job(r.id) in job_keys
    assert counts(pg)[0] == 8


def _waits_for_an_advisory_lock(svc) -> bool:
    with svc.store.read() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")).scalar_one())


@pytest.mark.parametrize("origin", ["tag", "alias"])
def test_a_request_withdrawn_while_it_is_being_stored_is_cancelled(pg, origin):
    """The tag (or the alias) is set and removed at once: the removal's delivery arrives while
    the setting's transaction has made the request and not yet committed. The removal waits
    for the lock the request's writer holds (the version's; MLflow's alias-deleted delivery
    names no version: the model's alias lock) and cancels the request; without it, it found
    no open request ("no open request to cancel") and the request the person withdrew went
    on."""
    from tests.support.waiting import wait_for
    from webhook_server.intake.events import RequestCancelled

    intake = Intake(pg.store, pg.queue)
    recorded, release, outcome = threading.Event(), threading.Event(), {}
    asked = Delivery("mlflow", "set-1", f"model_version_{origin}.set", '{"v": 1}',
                     TransitionRequested("churn", "3", "Production", origin=origin))
    withdrawn = Delivery("mlflow", "deleted-1", f"model_version_{origin}.deleted", "{}",
                         RequestCancelled("churn", "3" if origin == "tag" else None, origin))

    def ask() -> None:
        with pg.store.tx() as conn:
            outcome["set"] = intake._record(conn, asked)
            recorded.set()
            release.wait(30)

    def withdraw() -> None:
        outcome["deleted"] = intake.record(withdrawn)

    setter = threading.Thread(target=ask)
    setter.start()
    wait_for(recorded.is_set, 10, "the request stored, not committed")
    remover = threading.Thread(target=withdraw)
    remover.start()
    wait_for(lambda: not remover.is_alive() or _waits_for_an_advisory_lock(pg), 10,
             "the removal to finish or to wait for the lock")
    release.set()
    setter.join(10)
    remover.join(10)
    request_id = outcome["set"].request_id
    assert outcome["deleted"].cancelled == (request_id,), outcome["deleted"].detail
    with pg.store.read() as conn:
        assert reqs.get(conn, request_id).state == states.CANCELLED


def test_an_alias_request_is_stored_by_the_general_path_with_the_alias_lock(pg):
    """An alias-made request takes the model's alias lock too, which the one call does not
    take: it is stored by the general path (the same rows, as the parity tests show)."""
    asked = Delivery("mlflow", "alias-1", "model_version_alias.created", "{}",
                     TransitionRequested("churn", "3", "Production", origin="alias"))
    intake = Intake(pg.store, pg.queue)
    assert intake._one_call and intake._in_one_call(asked) is None
    assert intake.record(asked).request_id is not None
