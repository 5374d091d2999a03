"""PostgreSQL-only fixtures of the job tests (claims with SKIP LOCKED, LISTEN/NOTIFY)."""

from __future__ import annotations

import pytest

from tests.support.settings import pg_schema
from webhook_server.store import Store


@pytest.fixture
def pg_url():
    """A private schema on the test PostgreSQL (skipped, with the reason, without one)."""
    with pg_schema() as url:
        yield url


@pytest.fixture
def pg_store(pg_url):
    store = Store(pg_url)
    store.migrate()
    yield store
    store.dispose()
