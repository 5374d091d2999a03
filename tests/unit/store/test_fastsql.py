"""Rows written by the hand-written hot-path SQL read back through SQLAlchemy unchanged."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store.schema import deliveries, jobs, requests


def test_timestamps_written_on_the_hot_path_read_back_as_aware_utc(svc):
    now = datetime.now(UTC)  # SQLite's clock has milliseconds: the bound is floored to them
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)
    svc.intake.record(Delivery("mlflow", "d-1", "model_version_tag.set", "{}",
                               TransitionRequested("churn", "3", "Production", "tag")))
    with svc.store.tx() as conn:
        svc.queue.enqueue(conn, kind="later", key="later", payload={}, delay_s=60)
    after = datetime.now(UTC)
    with svc.store.read() as conn:
        received = conn.execute(select(deliveries.c.received_at)).scalar_one()
        created = conn.execute(select(requests.c.created_at)).scalar_one()
        run_after = conn.execute(select(jobs.c.run_after).where(jobs.c.key == "later")
                                 ).scalar_one()
    for value in (received, created):
        assert value.tzinfo is not None and before <= value <= after
    assert before + timedelta(seconds=60) <= run_after <= after + timedelta(seconds=60)
