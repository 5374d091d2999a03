"""A Podium with a policy that names people on the page, logged-in test clients, and a
request waiting for approval (``tests.support.ui``)."""

from __future__ import annotations

import pytest

from podium_policy.policy import parse_policy
from tests.support.ui import POLICY, TOKENS, Page, settings_for
from webhook_server.web.app import create_app


@pytest.fixture
def ui_db(sqlite_url):
    """SQLite; the pages' own queries run on PostgreSQL too (test_ui_pages overrides)."""
    return sqlite_url


@pytest.fixture
def usvc(make_svc, ui_db):
    # deciding only touches the store and the queue: the MLflow URL is never called
    return make_svc(settings_for(ui_db), policy=parse_policy(POLICY))


@pytest.fixture
def ui_app(usvc):
    return create_app(usvc.settings, services=usvc)


@pytest.fixture
def as_person(ui_app):
    """``as_person("ana")``: a client logged in with ana's API token."""
    tokens = dict(entry.split("=") for entry in TOKENS.split(","))
    return lambda name, app=None: Page(app or ui_app).login(tokens[name])

