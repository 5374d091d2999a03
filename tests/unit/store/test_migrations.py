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
        assert store.revision() == store.head() == "0009"
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
