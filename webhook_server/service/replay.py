"""``podium replay``: re-run a stored delivery, or give its dead jobs another go."""

from __future__ import annotations

from sqlalchemy import or_, select

from webhook_server import contract
from webhook_server.intake.sources import Delivery, PayloadError
from webhook_server.jobs.queue import DEAD
from webhook_server.service.services import Services
from webhook_server.store import audit
from webhook_server.store import deliveries as inbox
from webhook_server.store.schema import jobs
from webhook_server.workflow import permissions, revive


class ReplayError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def replay(svc: Services, ref: str, *, actor: str | None) -> dict:
    """``ref`` is the sender's delivery id or Podium's numeric delivery number; ``actor``
    must be an operator (``permissions``: NotAllowed otherwise, with an audit row)."""
    permissions.authorize(svc.store, _policy(svc), "replay", actor,
                          subject=f"delivery:{ref}"[:255])
    with svc.store.read() as conn:
        rows = inbox.by_ref(conn, ref)
        if not rows:
            raise ReplayError(f"no stored delivery {ref!r}", 404)
        if len(rows) > 1:
            raise ReplayError(f"{ref!r} matches {len(rows)} deliveries; use the delivery "
                              f"number ({', '.join(str(r['id']) for r in rows)})", 409)
        row = rows[0]
        dead = []
        if row["request_id"] is not None:
            dead = list(conn.execute(select(jobs.c.key).where(
                jobs.c.state == DEAD,
                or_(jobs.c.key == contract.request_job(row["request_id"]),
                    jobs.c.key.like(contract.request_job_prefix(row["request_id"]))))).scalars())
        replays = inbox.replays(conn, row["source"], row["delivery_id"])
    if dead:
        with svc.store.tx() as conn:  # the request reopens with its job, or neither
            requeued = [key for key in dead if svc.queue.requeue(key, conn)]
            resumed = revive(conn, row["request_id"]) if requeued else None
            audit.record(conn, actor=actor, action="replay", subject=f"delivery:{row['id']}",
                         detail={"jobs": requeued})
        out = {"delivery": row["id"], "action": "requeued", "jobs": requeued}
        if resumed:
            out["request"] = {"id": row["request_id"], "state": resumed}
        return out
    parser = {"mlflow": svc.mlflow_source, "databricks": svc.databricks_source}.get(row["source"])
    if parser is None:
        raise ReplayError(f"deliveries from {row['source']!r} have nothing to re-run "
                          "and no dead job", 409)
    new_id = inbox.replay_id(row["delivery_id"], replays + 1)
    try:
        parsed = parser.parse(new_id, row["body"].encode())
    except (PayloadError, ValueError, UnicodeError) as exc:
        raise ReplayError(f"delivery {row['id']} cannot be re-run: its stored body no "
                          f"longer parses ({exc}); nothing was changed", 422) from None
    result = svc.intake.record(Delivery(row["source"], new_id, parsed.event_name,
                                        parsed.body, parsed.event))
    with svc.store.tx() as conn:
        audit.record(conn, actor=actor, action="replay", subject=f"delivery:{row['id']}",
                     detail={"new_delivery": new_id})
    return {"delivery": row["id"], "action": "re-run", "new_delivery": result.as_json()}


def _policy(svc: Services):
    """The policy, or None when it cannot be read (then nobody may operate: fail closed)."""
    try:
        return svc.policy
    except Exception:
        return None
