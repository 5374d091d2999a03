"""Record a verified delivery: inbox row, request, history and first job in one transaction.

The HTTP routes, the reconciler, the API, ``podium replay`` and rollbacks (``podium
rollback``, the API, the page: through the workflow, which checks them first) all come
through here, so every way a request can enter Podium has the same idempotency and the same
effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from webhook_server import contract
from webhook_server.intake import tell
from webhook_server.intake.events import (
    ROLLBACK_ORIGIN,
    TARGETS,
    AliasChanged,
    Ignored,
    RequestCancelled,
    RollbackRequested,
    TestDelivery,
    TransitionRequested,
    VersionCreated,
)
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import JobQueue, SqlJobQueue
from webhook_server.store import Store, StoreUnavailable, one_call, outbox, states
from webhook_server.store import deliveries as inbox
from webhook_server.store import transition_requests as reqs

ACCEPTED, IGNORED, TEST, INVALID = "accepted", "ignored", "test", "invalid"
# a delivery's ``sent_at`` is the sender's clock (MLflow's, in whole seconds), the requests'
# times the store's: hosts kept by NTP differ by far less
SENT_AT_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True)
class IntakeResult:
    delivery_pk: int
    status: str
    duplicate: bool = False
    request_id: int | None = None
    cancelled: tuple[int, ...] = ()
    detail: str | None = None
    # The delivery reported a request already open (same model, version, origin and
    # target): it made none, and ``request_id`` is the open one.
    already_open: bool = False

    def as_json(self) -> dict:
        out = {"delivery": self.delivery_pk, "status": self.status,
               "duplicate": self.duplicate}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.already_open:
            out["already_open"] = True
        if self.cancelled:
            out["cancelled"] = list(self.cancelled)
        if self.detail:
            out["detail"] = self.detail
        return out


class Intake:
    def __init__(self, store: Store, queue: JobQueue, *, one_call: bool = True) -> None:
        """``one_call``: a new request in one call (``_in_one_call``) where it can be, i.e.
        on PostgreSQL with the job queue in the same database."""
        self.store = store
        self.queue = queue
        self._one_call = (one_call and store.dialect == "postgresql"
                          and isinstance(queue, SqlJobQueue))
        # what the database raises when it cannot take a write now: SQLAlchemy's wrapper,
        # and the driver's own from the statements run on the bare driver (``fastsql``: a
        # lock or statement timeout, a deadlock, a lost connection), as ``call_alone`` does
        self._unavailable = (OperationalError, store.engine.dialect.loaded_dbapi.OperationalError)

    def record(self, delivery: Delivery) -> IntakeResult:
        """Store ``delivery`` and its effects exactly once. Raises StoreUnavailable."""
        try:
            done = self._in_one_call(delivery) if self._one_call else None
            if done is not None:
                return done
            with self.store.tx(batched=True) as conn:
                return self._record(conn, delivery)
        except self._unavailable as exc:
            raise StoreUnavailable(_why(exc)) from exc

    def _in_one_call(self, d: Delivery) -> IntakeResult | None:
        """A valid transition request for a version with no open request, stored by one
        call (``store/one_call.py``: the same rows as ``_record`` writes, one round trip).
        None when it is anything else: ``_record`` decides."""
        e = d.event
        if not isinstance(e, TransitionRequested) or e.target is None:
            return None
        if e.origin == "alias":  # also the model's alias lock (``_record``), rare: not here
            return None
        queue: SqlJobQueue = self.queue  # type: ignore[assignment]  (``_one_call``)
        job = queue.job_row(kind="request", key=contract.request_job(one_call.ID),  # type: ignore[arg-type]
                            payload={"request_id": one_call.ID},
                            lock_key=contract.model_lock(e.model))
        stored = one_call.record_request(
            self.store, source=d.source, delivery_id=d.delivery_id, event=d.event_name,
            body=d.body, model=e.model, version=e.version, target=e.target,
            raw_target=e.raw_target, origin=e.origin, requested_by=e.requested_by,
            comment=e.comment, job=job)
        if stored is None:
            return None
        return IntakeResult(stored[0], ACCEPTED, request_id=stored[1])

    def record_in(self, conn: Connection, delivery: Delivery) -> IntakeResult:
        """``record`` inside the caller's transaction (a rollback: the workflow checks it
        against the ledger and records the asker's agreement in the same one)."""
        return self._record(conn, delivery)

    def record_invalid(self, source: str, delivery_id: str, body: bytes, error: str) -> None:
        """Keep an authentic but unusable delivery for the operator (status ``invalid``)."""
        text = _text(body)
        try:
            with self.store.tx() as conn:
                self._insert(conn, source, delivery_id, "unknown", INVALID, error, text)
        except self._unavailable as exc:
            raise StoreUnavailable(_why(exc)) from exc

    def record_action(self, source: str, delivery_id: str, event: str, body: bytes,
                      job_kind: str, payload: dict, delay_s: float = 0) -> tuple[int, bool]:
        """Store an interaction (e.g. a Slack click) and its job (runnable after
        ``delay_s``) in one transaction. Returns (delivery pk, duplicate); a replayed
        delivery queues nothing."""
        try:
            with self.store.tx() as conn:
                pk = self._insert(conn, source, delivery_id, event, ACCEPTED, None,
                                  _text(body))
                if pk is None:
                    inbox.count_duplicate(conn, source, delivery_id)
                    return inbox.find(conn, source, delivery_id)["id"], True
                self.queue.enqueue(conn, kind=job_kind, key=f"{source}:{pk}",
                                   payload={"delivery": pk, **payload}, delay_s=delay_s)
                return pk, False
        except self._unavailable as exc:
            raise StoreUnavailable(_why(exc)) from exc

    def _insert(self, conn: Connection, source: str, delivery_id: str, event: str,
                status: str, detail: str | None, body: str) -> int | None:
        return inbox.insert(conn, source=source, delivery_id=delivery_id, event=event,
                            status=status, detail=detail, body=body)

    def _record(self, conn: Connection, d: Delivery) -> IntakeResult:
        event = d.event
        status, detail = ACCEPTED, None
        if isinstance(event, Ignored):
            status, detail = IGNORED, event.reason
        elif isinstance(event, TestDelivery):
            status, detail = TEST, f"test delivery from MLflow ({event.event})"
        asks = isinstance(event, TransitionRequested) and event.target is not None
        # a withdrawal waits for a request being stored at the same moment (a tag or alias
        # set and removed at once), so it finds and cancels it
        withdraws = isinstance(event, RequestCancelled)
        if asks or (withdraws and event.version is not None):  # the version's lock before
            # the delivery's row, as in the one call: two deliveries of one id, one on each
            # path, never wait for each other in a circle
            reqs.lock_version(conn, event.model, event.version)
        if (asks and event.origin == "alias") or (withdraws and event.version is None):
            reqs.lock_alias_requests(conn, event.model)  # an alias deletion names no version
        stored = inbox.insert_later(conn, source=d.source, delivery_id=d.delivery_id,
                                    event=d.event_name, status=status, detail=detail,
                                    body=d.body)
        # read with the lock and the delivery's row (one round trip on PostgreSQL)
        open_ = reqs.open_for_version(conn, event.model, event.version) if asks else None
        pk = stored()
        if pk is None:  # a duplicate: it changes nothing (the lock ends with the tx)
            return self._duplicate(conn, d)
        request_id, cancelled, already_open = None, (), False
        if isinstance(event, VersionCreated):
            outbox.emit(conn, key=f"version:{event.model}:{event.version}", kind="message",
                        payload={"what": "version", "model": event.model,
                                 "version": event.version, "run_id": event.run_id})
        if isinstance(event, TransitionRequested):
            request_id, detail, already_open = self._request(conn, event, pk, open_,
                                                             d.sent_at)
            if already_open:
                inbox.set_detail(conn, pk, detail)
        elif isinstance(event, RollbackRequested):
            request_id = self._rollback(conn, event, pk)
        elif isinstance(event, RequestCancelled):
            cancelled, detail = self._cancel(conn, event)
            inbox.set_detail(conn, pk, detail)
        elif isinstance(event, AliasChanged):  # the workflow's guard decides what it means
            self.queue.enqueue(conn, kind="revert", key=f"revert:{event.model}:d{pk}",
                               payload={"model": event.model, "alias": event.alias},
                               lock_key=contract.model_lock(event.model))
        return IntakeResult(pk, status, request_id=request_id, cancelled=cancelled,
                            detail=detail, already_open=already_open)

    def _duplicate(self, conn: Connection, d: Delivery) -> IntakeResult:
        inbox.count_duplicate(conn, d.source, d.delivery_id)
        row = inbox.find(conn, d.source, d.delivery_id)
        return IntakeResult(row["id"], row["status"], duplicate=True,
                            request_id=row["request_id"],
                            detail=row["detail"] or row["reason"],
                            already_open=row["linked"])

    def _request(self, conn: Connection, e: TransitionRequested, delivery_pk: int,
                 open_: list[dict] | None,
                 sent_at: datetime | None = None) -> tuple[int, str | None, bool]:
        """(request id, detail, already open). One tag set makes one request: a request
        already open with the same origin and target takes the delivery (the webhook
        retried after the reconciler recovered it, or the other way round). A newer one
        supersedes the version's other open requests that may still be cancelled.
        ``open_``: the version's open requests, read under its lock (``_record``)."""
        target = e.target
        if target is None:  # nothing to supersede: an invalid target changes nothing
            reason = (f"invalid target {e.raw_target!r}: expected one of "
                      f"{', '.join(TARGETS)} (case-insensitive)")
            request_id = self._create(conn, e, delivery_pk, states.REJECTED, reason)
            return request_id, reason, False
        for row in reversed(open_ or ()):
            # a version waiting for live evidence sits on the shadow alias Podium set: that
            # alias (or any other way of asking the same) is the same request, not a new one
            if row["target"] == target and (row["origin"] == e.origin
                                            or row["state"] == states.SHADOWING):
                return row["id"], inbox.already_open_detail(row["id"], e.origin), True
        own = self._own_shadow_move(conn, e, sent_at) if e.origin == "alias" else None
        if own is not None:
            return own
        request_id = self._create(conn, e, delivery_pk, states.QUEUED, None)
        for row in open_ or ():  # a promoting request is left to its job; the new one waits
            if row["state"] in states.CANCELLABLE:
                tell.transition(conn, row["id"], expect=states.CANCELLABLE,
                                to=states.CANCELLED, actor="intake",
                                reason=f"superseded by request {request_id}")
        return request_id, None, False

    @staticmethod
    def _own_shadow_move(conn: Connection, e: TransitionRequested,
                         sent_at: datetime | None) -> tuple[int, str, bool] | None:
        """The version's request that Podium put on the shadow alias (the challenger alias),
        if the alias delivery was sent while it was open: Podium's own move, whenever it
        arrives (MLflow retries a failed delivery). Still open (awaiting approval after
        its live pass, promoting): it takes the delivery. Ended since: it answers it, and
        nothing is asked again (a new request would write its tags over the decision's,
        or judge a rejected version again). A person who sets the alias after the end
        sends a later delivery: a new request."""
        since = sent_at - SENT_AT_MARGIN if sent_at is not None else None
        found = reqs.shadowed(conn, e.model, e.version, e.target, ended_since=since)
        if found is None:
            return None
        request_id, state = found
        if state in states.TERMINAL:
            return request_id, inbox.shadow_move_detail(request_id), False
        return request_id, inbox.already_open_detail(request_id, e.origin), True

    def _create(self, conn: Connection, e: TransitionRequested, delivery_pk: int,
                state: str, reason: str | None) -> int:
        request_id = tell.create(conn, model=e.model, version=e.version, target=e.target,
                                 raw_target=e.raw_target, origin=e.origin, state=state,
                                 reason=reason, delivery_pk=delivery_pk,
                                 requested_by=e.requested_by, comment=e.comment)
        # Even a rejected request gets a job: it reports the rejection on the version.
        self.queue.enqueue(conn, kind="request", key=contract.request_job(request_id),
                           payload={"request_id": request_id},
                           lock_key=contract.model_lock(e.model))
        return request_id

    def _rollback(self, conn: Connection, e: RollbackRequested, delivery_pk: int) -> int:
        """A rollback request and its job; with a quorum over 1 it waits for the others to
        agree, and the decision that completes the quorum queues the job."""
        waiting = e.quorum > 1 or e.proposed
        reason = f"rollback from v{e.current} to v{e.to}" + (
            f": waiting for {e.quorum - 1} more to agree" if waiting else "")
        if e.evidence is not None:  # asked by the monitoring job: why, in its words
            reason = e.evidence["reason"]
        request_id = tell.create(conn, model=e.model, version=e.to, target="Production",
                                 raw_target="rollback", origin=ROLLBACK_ORIGIN,
                                 state=states.AWAITING_APPROVAL if waiting else states.QUEUED,
                                 delivery_pk=delivery_pk, requested_by=e.requested_by,
                                 actor=e.requested_by, reason=reason)
        # the champion it goes back from: what an agreement binds (the digest covers it, and
        # the comparison of a decay), refused by the job once the champion moved
        reqs.summarise(conn, request_id, compared_with=e.current)
        if e.evidence is not None:
            reqs.summarise(conn, request_id, comparison=e.evidence["comparison"])
            reqs.save_evidence(conn, request_id, {"decay": e.evidence})
        if not waiting:
            self.queue.enqueue(conn, kind="request", key=contract.request_job(request_id),
                               payload={"request_id": request_id},
                               lock_key=contract.model_lock(e.model))
        return request_id

    def _cancel(self, conn: Connection, e: RequestCancelled) -> tuple[tuple[int, ...], str]:
        """Cancel the open requests of that origin, except a promoting one (only its job
        ends it). Returns (cancelled ids, detail). Not judged as of the time it was sent:
        with MLflow's clock a few seconds behind the store's, a person's withdrawal would
        then miss the request it withdraws, and the promotion go on (Podium's removal of
        the shadow alias retried after a person set it again cancels the person's request:
        they set it again)."""
        why = ("transition_request tag deleted" if e.origin == "tag"
               else f"{e.origin} withdrawn")
        done, kept = [], []
        for request_id in reqs.open_ids(conn, e.model, e.version, origin=e.origin):
            if tell.transition(conn, request_id, expect=states.CANCELLABLE,
                               to=states.CANCELLED, actor="intake", reason=why):
                done.append(request_id)
                self.queue.enqueue(conn, kind="request",
                                   key=contract.request_job(request_id, "cancelled"),
                                   payload={"request_id": request_id},
                                   lock_key=contract.model_lock(e.model))
            else:
                kept.append(request_id)
        parts = []
        if done:
            parts.append(f"cancelled request(s) {', '.join(map(str, done))}")
        if kept:
            parts.append(f"request(s) {', '.join(map(str, kept))} already promoting: "
                         "left to finish")
        return tuple(done), "; ".join(parts) or "no open request to cancel"


def _why(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper: the driver's error
    return str(orig) if orig else str(exc)


def _text(body: bytes) -> str:
    """A stored copy of a body: undecodable bytes and NUL (PostgreSQL text holds no NUL)
    become U+FFFD."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
