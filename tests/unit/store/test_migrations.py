"""The alembic migrations build exactly the schema the code declares (store/schema.py)."""

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
        assert store.revision() == store.head() == "0008"
    finally:
        store.dispose()
