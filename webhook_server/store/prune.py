"""Pruning what the store no longer needs: old deliveries, sent (or dead) outbox rows and
finished jobs; audit rows and the alias ledger only when asked (``include_audit``).

Nothing a live request (one still open) or the store itself still reads goes:

* deliveries: never one a request was made from (``requests.delivery_pk``, a foreign
  key), nor one whose job is still queued or running;
* outbox rows: only ``sent`` or ``dead`` ones, none of a live request;
* jobs: only ``done`` or ``dead`` ones, none of a live request (its job is requeued when it
  is approved or replayed);
* audit rows: none whose subject is a live request (its approvals count toward a quorum);
* ledger rows: never an intent, a live request's, nor the newest row or the newest applied
  move of a model's alias (where the alias points, and the rollback target, come from it),
  nor an applied move that references an evidence bundle (a current or former champion's
  decision stays re-derivable: ``podium verify`` finds its bundle through the request).

Evidence bundles themselves (MLflow artifacts of the version's run) are never deleted here:
they are kept as long as the request and the ledger row that reference them.

Requests and their history are never pruned. ``prune`` runs in the caller's transaction;
with ``dry_run`` it only counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, String, and_, cast, delete, exists, func, or_, select

from webhook_server.store import states
from webhook_server.store.schema import audit, deliveries, jobs, ledger, outbox, requests, utcnow

MIN_DAYS = 1  # a younger row may still be an idempotency key in use (a replayed delivery)
TABLES = ("deliveries", "outbox", "jobs", "audit", "ledger")


def _live_request_ids():
    return select(requests.c.id).where(requests.c.state.in_(states.OPEN))


def _request_key(column, prefix: str):
    """``column`` names a live request: ``<prefix><id>`` or ``<prefix><id>:...``."""
    rid = cast(requests.c.id, String)
    return exists().where(requests.c.state.in_(states.OPEN),
                          or_(column == prefix + rid, column.like(prefix + rid + ":%")))


def _conditions(cutoff: datetime) -> dict:
    job_of_delivery = exists().where(
        jobs.c.key == deliveries.c.source + ":" + cast(deliveries.c.id, String),
        jobs.c.state.in_(("queued", "running")))
    made_a_request = exists().where(requests.c.delivery_pk == deliveries.c.id)
    newest = (select(func.max(ledger.c.id)).group_by(ledger.c.model, ledger.c.alias)
              .correlate(None))
    newest_applied = (select(func.max(ledger.c.id)).where(ledger.c.state == "applied")
                      .group_by(ledger.c.model, ledger.c.alias).correlate(None))
    return {
        "deliveries": (deliveries, and_(deliveries.c.received_at < cutoff,
                                        ~made_a_request, ~job_of_delivery)),
        "outbox": (outbox, and_(outbox.c.state.in_(("sent", "dead")),
                                outbox.c.created_at < cutoff,
                                or_(outbox.c.request_id.is_(None),
                                    outbox.c.request_id.not_in(_live_request_ids())))),
        "jobs": (jobs, and_(jobs.c.state.in_(("done", "dead")), jobs.c.updated_at < cutoff,
                            ~_request_key(jobs.c.key, "request:"))),
        "audit": (audit, and_(audit.c.at < cutoff, ~_request_key(audit.c.subject, "request:"))),
        "ledger": (ledger, and_(ledger.c.at < cutoff, ledger.c.state != "intent",
                                or_(ledger.c.request_id.is_(None),
                                    ledger.c.request_id.not_in(_live_request_ids())),
                                ledger.c.id.not_in(newest), ledger.c.id.not_in(newest_applied),
                                or_(ledger.c.bundle_sha256.is_(None),
                                    ledger.c.state != "applied"))),
    }


def prune(conn: Connection, older_than_days: float, *, include_audit: bool = False,
          dry_run: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Rows removed (or, with ``dry_run``, that would be) per table; ``audit`` and
    ``ledger`` are only touched with ``include_audit``."""
    if older_than_days < MIN_DAYS:
        raise ValueError(f"older than {older_than_days:g} days: prune keeps at least "
                         f"{MIN_DAYS} day")
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    out: dict[str, int] = {}
    for name, (table, where) in _conditions(cutoff).items():
        if name in ("audit", "ledger") and not include_audit:
            continue
        if dry_run:
            out[name] = conn.execute(select(func.count()).select_from(table)
                                     .where(where)).scalar_one()
        else:
            ids = list(conn.execute(select(table.c.id).where(where)).scalars())
            out[name] = 0
            for i in range(0, len(ids), 500):  # bounded IN lists
                out[name] += conn.execute(delete(table).where(
                    table.c.id.in_(ids[i:i + 500]))).rowcount
    return out
