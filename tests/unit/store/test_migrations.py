"""The alembic migrations build exactly the schema the code declares (store/schema.py)."""

import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from webhook_server.store import Store
from webhook_server.store.schema import metadata


def test_the_migrated_schema_matches_the_declared_tables(db_url):
    store = Store(db_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        assert store.revision() == store.head() == "0011"
    finally:
        store.dispose()


def test_migrators_starting_together_on_a_new_store_all_end_at_head(db_url):
    """The migration Job and every pod of a rollout start at once, each running `podium
    migrate`: on PostgreSQL they take turns (an advisory lock) instead of racing to create
    the same tables; SQLite's writers take turns already."""
    stores = [Store(db_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def migrate(store):
        start.wait()
        try:
            store.migrate()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,), daemon=True) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert [t for t in threads if t.is_alive()] == [] and errors == []
        assert {s.revision() for s in stores} == {stores[0].head()}
    finally:
        for s in stores:
            s.dispose()


def _upgrade(store: Store, revision: str) -> None:
    from alembic import command

    from webhook_server.store.db import _alembic_config

    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)


def test_0010_keeps_the_labels_before_it_and_lets_each_version_have_its_own(db_url):
    """Labels stored under one-label-per-outcome stay as they were (each judges one
    version's prediction); after 0010 the same outcome takes a row per version, and loading
    it again adds nothing; batches recorded before are the champion's."""
    from datetime import UTC, datetime

    from sqlalchemy import select, text

    from webhook_server.store import monitoring as rows
    from webhook_server.store.schema import inference_batches, labels

    when = datetime(2026, 6, 1, 9, tzinfo=UTC)
    old = {"model": "churn", "version": "3", "batch_id": "A", "customer_id": "c1",
           "churn": 1, "score": 0.9, "scored_at": when, "observed_at": when,
           "loaded_at": when, "outcome": "2026-06-05T00:00:00.000000Z"}
    store = Store(db_url)
    try:
        _upgrade(store, "0009")
        with store.engine.begin() as conn:
            conn.execute(labels.insert().values(**old))
            conn.execute(text(
                "INSERT INTO inference_batches (batch_id, model, version, scored_at, rows, "
                "rejected, flagged, threshold) VALUES ('A', 'churn', '3', :t, 1, 0, 1, 0.5)"),
                {"t": when})
        store.migrate()
        assert store.revision() == store.head()
        with store.read() as conn:
            kept = [dict(r) for r in conn.execute(select(labels)).mappings()]
            assert [(r["version"], r["batch_id"], r["customer_id"], r["score"], r["outcome"])
                    for r in kept] == [("3", "A", "c1", 0.9, old["outcome"])]
            assert conn.execute(select(inference_batches.c.role)).scalar_one() == "champion"
        shadow = {**old, "version": "4", "batch_id": "S", "score": 0.7}
        del shadow["loaded_at"]
        again = {k: v for k, v in old.items() if k != "loaded_at"}
        with store.tx() as conn:
            assert rows.add_labels(conn, [again, shadow]) == 1  # only the shadow's is new
        with store.tx() as conn:
            assert rows.add_labels(conn, [again, shadow]) == 0  # idempotent
        with store.read() as conn:
            assert sorted(rows.labelled(conn, "churn"))[0][0] == "3"
            assert rows.label_count(conn, "churn") == 2
    finally:
        store.dispose()


def test_0010_downgrades_to_one_label_per_outcome_keeping_the_first(db_url):
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from webhook_server.store import monitoring as rows
    from webhook_server.store.db import _alembic_config

    when = datetime(2026, 6, 1, 9, tzinfo=UTC)
    label = {"model": "churn", "version": "3", "batch_id": "A", "customer_id": "c1",
             "churn": 1, "score": 0.9, "scored_at": when, "observed_at": when, "outcome": ""}
    store = Store(db_url)
    try:
        store.migrate()
        with store.tx() as conn:
            rows.add_labels(conn, [label, {**label, "version": "4", "batch_id": "S"}])
        with store.engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0009")
        assert store.revision() == "0009"
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM labels")).scalars().all() == ["3"]
        store.migrate()
        assert store.revision() == store.head()
    finally:
        store.dispose()
