"""``podium replay``: re-run a stored delivery, or give its dead jobs another go."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from webhook_server.jobs.queue import DEAD
from webhook_server.services import Services
from webhook_server.sources import Delivery
from webhook_server.sources._common import is_number
from webhook_server.store.schema import deliveries, jobs, requests


class ReplayError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def replay(svc: Services, ref: str) -> dict:
    """``ref`` is the sender's delivery id or Podium's numeric delivery number."""
    with svc.store.read() as conn:
        cond = deliveries.c.delivery_id == ref
        if is_number(ref):
            cond = or_(cond, deliveries.c.id == int(ref))
        rows = conn.execute(select(deliveries, requests.c.id.label("request_id"))
                            .outerjoin(requests, requests.c.delivery_pk == deliveries.c.id)
                            .where(cond)).mappings().all()
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
                or_(jobs.c.key == f"request:{row['request_id']}",
                    jobs.c.key.like(f"request:{row['request_id']}:%")))).scalars())
        replays = conn.execute(select(func.count()).select_from(deliveries).where(
            deliveries.c.source == row["source"],
            deliveries.c.delivery_id.like(f"{row['delivery_id']}#replay-%"))).scalar_one()
    if dead:
        requeued = [key for key in dead if svc.queue.requeue(key)]
        return {"delivery": row["id"], "action": "requeued", "jobs": requeued}
    parser = {"mlflow": svc.mlflow_source, "databricks": svc.databricks_source}.get(row["source"])
    if parser is None:
        raise ReplayError(f"deliveries from {row['source']!r} have nothing to re-run "
                          "and no dead job", 409)
    new_id = f"{row['delivery_id']}#replay-{replays + 1}"
    parsed = parser.parse(new_id, row["body"].encode())
    result = svc.intake.record(Delivery(row["source"], new_id, parsed.event_name,
                                        parsed.body, parsed.event))
    return {"delivery": row["id"], "action": "re-run", "new_delivery": result.as_json()}
