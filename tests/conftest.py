"""Shared fixtures. Tests never read the ambient environment: settings are built here."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.support.signing import DATABRICKS_SECRET, SECRET
from webhook_server.core.settings import Settings
from webhook_server.service.services import build
from webhook_server.store.db import normalise_url

PG_ENV = "PODIUM_TEST_DATABASE_URL"
# strong: `podium serve` refuses a token under 32 characters or 128 bits
API_TOKEN = "test-api-token-R2YDbSFiaRG_hpcrMOB8iivGzr6-myJJLZClHY9X"
# the built-in defaults (nothing needs approval): a policy file must exist, Podium never
# falls back to defaults for a missing one
DEFAULT_POLICY = os.path.join(os.path.dirname(__file__), "data", "policy-defaults.yaml")


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


def _postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL store tests skipped")
    problem = _postgres_problem(url)
    if problem:
        pytest.skip(problem)
    return url


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch):
    """Podium, MLflow, Slack and GitLab variables of the caller's shell never leak in."""
    for name in list(os.environ):
        if name.startswith(("PODIUM_", "MLFLOW_", "SLACK_", "GITLAB_")) and name != PG_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a private schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'podium.db'}"
        return
    with pg_schema() as url:
        yield url


@contextlib.contextmanager
def pg_schema():
    """The URL of a private, empty schema on the test PostgreSQL, dropped afterwards
    (skipped, with the reason, without a server)."""
    base = normalise_url(_postgres_url())
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


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'podium.db'}"


def make_settings(database_url: str, **overrides) -> Settings:
    base = dict(database_url=database_url, mlflow_webhook_secret=SECRET,
                databricks_webhook_secret=DATABRICKS_SECRET, api_token=API_TOKEN,
                job_backoff_s=0.01, worker_poll_s=0.01, policy_path=DEFAULT_POLICY)
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def settings(db_url):
    return make_settings(db_url)


@pytest.fixture
def svc(settings):
    services = build(settings)
    services.store.migrate()
    yield services
    services.close()


@pytest.fixture
def app(svc):
    from webhook_server.web.app import create_app

    return create_app(svc.settings, services=svc)


@pytest.fixture
def client(app):
    return app.test_client()


def pytest_collection_modifyitems(items):
    """The hostile-model attacks run at the strongest level in `make test`; the same attacks
    at the weaker levels (each a fresh sandbox: seconds of imports) run with `make drill`."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (item.path.name == "test_sandbox.py"
                and any(v in ("process", "user") for v in params.values() if isinstance(v, str))):
            item.add_marker(pytest.mark.drill)
