"""PostgreSQL-only fixtures of the job tests (claims with SKIP LOCKED, LISTEN/NOTIFY)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import _postgres_url
from webhook_server.store import Store
from webhook_server.store.db import normalise_url


@pytest.fixture
def pg_url():
    """A private schema on the test PostgreSQL (skipped, with the reason, without one)."""
    base = normalise_url(_postgres_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_store(pg_url):
    store = Store(pg_url)
    store.migrate()
    yield store
    store.dispose()
