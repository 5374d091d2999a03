"""Shared fixtures. Tests never read the ambient environment: settings are built here (from
``tests.support.settings``), and every in-process Podium comes from one factory, ``make_svc``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.settings import PG_ENV, make_settings, pg_schema
from webhook_server.service.services import build
from webhook_server.web.app import create_app

# The modules that take longest (seconds of one worker on idle cores, measured with
# --durations), started first: with `--dist loadscope --no-loadscope-reorder` (the Makefile)
# pytest-xdist hands out modules in collection order, so a long module started last would
# run alone at the end while the other workers sit idle. xdist's own reordering (by number
# of tests) did exactly that to the one-test modules: the demo, the release pipeline.
LONGEST_FIRST = (
    "tests/integration/test_demo.py",
    "tests/integration/test_training.py",
    "tests/integration/test_workflow.py",
    "tests/integration/test_workflow_approvals.py",
    "tests/integration/test_crash_drill.py",  # in .ci/run's run of make test
    "tests/integration/test_scale_drill.py",
    "tests/unit/model_tests/test_sandbox_limits.py",
    "tests/integration/test_spark_engine.py",
    "tests/integration/test_live_evidence.py",
    "tests/integration/test_hostile_model.py",
    "tests/integration/test_ui_browser.py",
    "tests/integration/test_release.py",
    "tests/integration/test_mlflow_webhooks.py",
    "tests/integration/test_side_doors.py",
    "tests/unit/monitoring/test_labels_memory.py",
    "tests/unit/model_tests/test_sandbox.py",
    "tests/integration/test_wheel.py",
)


def pytest_configure(config):
    """One thread per native library in every test process and what it starts: the suite
    runs more workers than cores, and OpenMP or BLAS threads waiting at barriers for a
    descheduled sibling cost many times the work itself (the sandbox sets the same)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def _longest_first(items) -> None:
    """The longest modules first (LONGEST_FIRST), then the rest in their usual order."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A SQLite store migrated to the newest revision, made once per test process."""
    from webhook_server.store import Store

    path = tmp_path_factory.mktemp("migrated") / "podium.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.dispose()
    return path


def _start_from(url: str, request) -> None:
    """A new SQLite store starts as a copy of ``migrated_sqlite``: the file ``migrate()``
    makes, without running the migrations again in each of a thousand tests (50 ms each);
    ``migrate()`` still runs on it and finds it at the newest revision."""
    if not url.startswith("sqlite:///") or "?" in url:
        return
    path = Path(url.removeprefix("sqlite:///"))
    if not path.parent.is_dir():
        return
    template = request.getfixturevalue("migrated_sqlite")
    if not path.exists() and not template.with_name("podium.db-wal").exists():
        shutil.copyfile(template, path)


@pytest.fixture
def make_svc(request):
    """``make_svc(settings, policy=None, registry=None)``: a Podium built on ``settings``
    (its store migrated), optionally with a parsed policy and a registry in place of
    MLflow's; every one built is closed after the test."""
    built = []

    def make(settings, *, policy=None, registry=None):
        _start_from(settings.database_url, request)
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
    """The hostile-model attacks (and the cgroup limits they hit) run in `make test` at the
    strongest level as Podium runs it by default (bubblewrap, sandboxes forked from the
    zygote); the same attacks on the fallbacks (bubblewrap starting each sandbox on its own,
    the weaker levels: each a fresh sandbox, seconds of imports) run with `make drill`,
    which `.ci/run` runs too."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (item.path.name in ("test_sandbox.py", "test_sandbox_limits.py")
                and any(v in ("bwrap", "process", "user")
                        for v in params.values() if isinstance(v, str))):
            item.add_marker(pytest.mark.drill)
    _longest_first(items)
