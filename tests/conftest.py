"""Shared fixtures. Tests never read the ambient environment: settings are built here (from
``tests.support.settings``), and every in-process Podium comes from one factory, ``make_svc``."""

from __future__ import annotations

import os

import pytest

from tests.support.settings import PG_ENV, make_settings, pg_schema
from webhook_server.service.services import build
from webhook_server.web.app import create_app


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch):
    """Podium, MLflow, Slack and GitLab variables of the caller's shell never leak in."""
    for name in list(os.environ):
        if (name.startswith(("PODIUM_", "MLFLOW_", "SLACK_", "GITLAB_", "OTEL_"))
                and name != PG_ENV):
            monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a private schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'podium.db'}"
        return
    with pg_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'podium.db'}"


@pytest.fixture
def settings(db_url):
    return make_settings(db_url)


@pytest.fixture
def make_svc():
    """``make_svc(settings, policy=None, registry=None)``: a Podium built on ``settings``
    (its store migrated), optionally with a parsed policy and a registry in place of
    MLflow's; every one built is closed after the test."""
    built = []

    def make(settings, *, policy=None, registry=None):
        services = build(settings)
        built.append(services)
        services.store.migrate()
        if policy is not None:
            services.policy = policy
        if registry is not None:
            services.registry = registry
        return services

    yield make
    for services in reversed(built):
        services.close()


@pytest.fixture
def svc(make_svc, settings):
    return make_svc(settings)


@pytest.fixture
def app(svc):
    return create_app(svc.settings, services=svc)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def spark():
    """The test process's local SparkSession (skips, saying why, without pyspark or Java)."""
    from tests.support.spark import spark_session

    return spark_session()


def pytest_collection_modifyitems(items):
    """The hostile-model attacks run at the strongest level in `make test`; the same attacks
    at the weaker levels (each a fresh sandbox: seconds of imports) run with `make drill`."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (item.path.name == "test_sandbox.py"
                and any(v in ("process", "user") for v in params.values() if isinstance(v, str))):
            item.add_marker(pytest.mark.drill)
