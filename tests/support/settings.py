"""Settings and databases for tests: a strong API token, the default policy, settings built
from keyword arguments (tests never read the ambient environment), a private PostgreSQL schema."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.support.signing import DATABRICKS_SECRET, SECRET
from webhook_server.core.settings import Settings
from webhook_server.store.db import normalise_url

PG_ENV = "PODIUM_TEST_DATABASE_URL"
# strong: `podium serve` refuses a token under 32 characters or 128 bits
API_TOKEN = "test-api-token-R2YDbSFiaRG_hpcrMOB8iivGzr6-myJJLZClHY9X"
# the built-in defaults (nothing needs approval): a policy file must exist, Podium never
# falls back to defaults for a missing one
DEFAULT_POLICY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data",
                              "policy-defaults.yaml")


@functools.cache
def _postgres_problem(url: str) -> str | None:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # server absent on this machine
        return f"PostgreSQL at {PG_ENV} is unreachable: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


def postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL store tests skipped")
    problem = _postgres_problem(url)
    if problem:
        pytest.skip(problem)
    return url


@contextlib.contextmanager
def pg_schema():
    """The URL of a private, empty schema on the test PostgreSQL, dropped afterwards
    (skipped, with the reason, without a server)."""
    base = normalise_url(postgres_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_settings(database_url: str, **overrides) -> Settings:
    base = dict(database_url=database_url, mlflow_webhook_secret=SECRET,
                databricks_webhook_secret=DATABRICKS_SECRET, api_token=API_TOKEN,
                job_backoff_s=0.01, worker_poll_s=0.01, policy_path=DEFAULT_POLICY)
    base.update(overrides)
    return Settings(**base)
