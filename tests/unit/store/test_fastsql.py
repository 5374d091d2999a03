"""Rows written by the hand-written hot-path SQL read back through SQLAlchemy unchanged."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import deliveries as inbox
from webhook_server.store import fastsql
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


def test_a_batched_transaction_whose_unread_statement_fails_stores_nothing(svc):
    """On PostgreSQL the intake's statements travel in a pipeline: one that fails without
    its answer being read still raises before the transaction ends, which rolls back the
    delivery written before it; the next transaction works."""
    # the driver's own IntegrityError (psycopg's or sqlite3's): the statement is bare
    with pytest.raises(Exception, match="(?i)not null|null value"):
        with svc.store.tx(batched=True) as conn:
            inbox.insert(conn, source="s", delivery_id="lost", event="e",
                         status="accepted", detail=None, body="{}")
            fast = fastsql.for_conn(conn)
            fast.send(conn, "insert_event", {"request_id": None, "now": None,
                                             "from_state": None, "to_state": None,
                                             "actor": None, "note": None})
    with svc.store.tx(batched=True) as conn:
        inbox.insert(conn, source="s", delivery_id="kept", event="e", status="accepted",
                     detail=None, body="{}")
    with svc.store.read() as conn:
        assert list(conn.execute(select(deliveries.c.delivery_id)).scalars()) == ["kept"]
