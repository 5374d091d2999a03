"""Record a verified delivery: inbox row, request, history and first job in one transaction.

The HTTP routes, the reconciler, the API and ``podium replay`` all come through here, so
every way a request can enter Podium has the same idempotency and the same effects.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import OperationalError

from webhook_server.events import (
    TARGETS,
    Ignored,
    RequestCancelled,
    TestDelivery,
    TransitionRequested,
    VersionCreated,
)
from webhook_server.jobs.queue import JobQueue
from webhook_server.sources import Delivery
from webhook_server.store import Store, StoreUnavailable, fastsql, outbox, states
from webhook_server.store import requests as reqs
from webhook_server.store.schema import deliveries, requests, utcnow

ACCEPTED, IGNORED, TEST, INVALID = "accepted", "ignored", "test", "invalid"


@dataclass(frozen=True)
class IntakeResult:
    delivery_pk: int
    status: str
    duplicate: bool = False
    request_id: int | None = None
    cancelled: tuple[int, ...] = ()
    detail: str | None = None

    def as_json(self) -> dict:
        out = {"delivery": self.delivery_pk, "status": self.status,
               "duplicate": self.duplicate}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.cancelled:
            out["cancelled"] = list(self.cancelled)
        if self.detail:
            out["detail"] = self.detail
        return out


def request_job_key(request_id: int) -> str:
    return f"request:{request_id}"


def model_lock(model: str) -> str:
    return f"model:{model}"


class Intake:
    def __init__(self, store: Store, queue: JobQueue) -> None:
        self.store = store
        self.queue = queue

    def record(self, delivery: Delivery) -> IntakeResult:
        """Store ``delivery`` and its effects exactly once. Raises StoreUnavailable."""
        try:
            with self.store.tx() as conn:
                return self._record(conn, delivery)
        except OperationalError as exc:
            raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc

    def record_invalid(self, source: str, delivery_id: str, body: bytes, error: str) -> None:
        """Keep an authentic but unusable delivery for the operator (status ``invalid``)."""
        text = body.decode("utf-8", errors="replace")
        try:
            with self.store.tx() as conn:
                self._insert(conn, source, delivery_id, "unknown", INVALID, error, text)
        except OperationalError as exc:
            raise StoreUnavailable(str(exc.orig)) from exc

    def record_action(self, source: str, delivery_id: str, event: str, body: bytes,
                      job_kind: str, payload: dict) -> tuple[int, bool]:
        """Store an interaction (e.g. a Slack click) and its job in one transaction.
        Returns (delivery pk, duplicate); a replayed delivery queues nothing."""
        try:
            with self.store.tx() as conn:
                pk = self._insert(conn, source, delivery_id, event, ACCEPTED, None,
                                  body.decode("utf-8", errors="replace"))
                if pk is None:
                    where = (deliveries.c.source == source,
                             deliveries.c.delivery_id == delivery_id)
                    conn.execute(update(deliveries).where(*where)
                                 .values(duplicates=deliveries.c.duplicates + 1))
                    return conn.execute(select(deliveries.c.id).where(*where)).scalar_one(), True
                self.queue.enqueue(conn, kind=job_kind, key=f"{source}:{pk}",
                                   payload={"delivery": pk, **payload})
                return pk, False
        except OperationalError as exc:
            raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc

    def _insert(self, conn: Connection, source: str, delivery_id: str, event: str,
                status: str, detail: str | None, body: str) -> int | None:
        fast = fastsql.for_conn(conn)
        row = fast.one(conn, "insert_delivery", {
            "source": source, "delivery_id": delivery_id, "event": event, "status": status,
            "detail": detail, "body": body, "received_at": fast.ts(utcnow())})
        return row[0] if row else None

    def _record(self, conn: Connection, d: Delivery) -> IntakeResult:
        event = d.event
        status, detail = ACCEPTED, None
        if isinstance(event, Ignored):
            status, detail = IGNORED, event.reason
        elif isinstance(event, TestDelivery):
            status, detail = TEST, f"test delivery from MLflow ({event.event})"
        pk = self._insert(conn, d.source, d.delivery_id, d.event_name, status, detail, d.body)
        if pk is None:
            return self._duplicate(conn, d)
        request_id, cancelled = None, ()
        if isinstance(event, VersionCreated):
            outbox.emit(conn, key=f"version:{event.model}:{event.version}", kind="message",
                        payload={"text": f":new: {event.model} v{event.version} registered"
                                         + (f" (run {event.run_id})" if event.run_id else "")})
        if isinstance(event, TransitionRequested):
            request_id, detail = self._request(conn, event, pk)
        elif isinstance(event, RequestCancelled):
            cancelled = self._cancel(conn, event)
            detail = (f"cancelled request(s) {', '.join(map(str, cancelled))}" if cancelled
                      else "no open request to cancel")
            conn.execute(update(deliveries).where(deliveries.c.id == pk).values(detail=detail))
        return IntakeResult(pk, status, request_id=request_id, cancelled=cancelled,
                            detail=detail)

    def _duplicate(self, conn: Connection, d: Delivery) -> IntakeResult:
        where = (deliveries.c.source == d.source, deliveries.c.delivery_id == d.delivery_id)
        conn.execute(update(deliveries).where(*where)
                     .values(duplicates=deliveries.c.duplicates + 1))
        row = conn.execute(select(deliveries.c.id, deliveries.c.status, deliveries.c.detail,
                                  requests.c.id.label("request_id"), requests.c.reason)
                           .outerjoin(requests, requests.c.delivery_pk == deliveries.c.id)
                           .where(*where)).mappings().first()
        return IntakeResult(row["id"], row["status"], duplicate=True,
                            request_id=row["request_id"],
                            detail=row["detail"] or row["reason"])

    def _request(self, conn: Connection, e: TransitionRequested,
                 delivery_pk: int) -> tuple[int, str | None]:
        target = e.target
        if target is None:
            reason = (f"invalid target {e.raw_target!r}: expected one of "
                      f"{', '.join(TARGETS)} (case-insensitive)")
            state = states.REJECTED
        else:
            reason, state = None, states.QUEUED
        superseded = reqs.open_ids(conn, e.model, e.version)
        request_id = reqs.create(conn, model=e.model, version=e.version, target=target,
                                 raw_target=e.raw_target, origin=e.origin, state=state,
                                 reason=reason, delivery_pk=delivery_pk,
                                 requested_by=e.requested_by, comment=e.comment)
        for old in superseded if state == states.QUEUED else ():
            reqs.transition(conn, old, expect=states.OPEN, to=states.CANCELLED, actor="intake",
                            reason=f"superseded by request {request_id}")
        # Even a rejected request gets a job: it reports the rejection on the version.
        self.queue.enqueue(conn, kind="request", key=request_job_key(request_id),
                           payload={"request_id": request_id}, lock_key=model_lock(e.model))
        return request_id, reason

    def _cancel(self, conn: Connection, e: RequestCancelled) -> tuple[int, ...]:
        why = ("transition_request tag deleted" if e.origin == "tag"
               else f"{e.origin} withdrawn")
        done = []
        for request_id in reqs.open_ids(conn, e.model, e.version, origin=e.origin):
            if reqs.transition(conn, request_id, expect=states.OPEN, to=states.CANCELLED,
                               actor="intake", reason=why):
                done.append(request_id)
                self.queue.enqueue(conn, kind="request",
                                   key=f"{request_job_key(request_id)}:cancelled",
                                   payload={"request_id": request_id},
                                   lock_key=model_lock(e.model))
        return tuple(done)
