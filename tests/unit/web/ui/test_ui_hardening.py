"""Issue 25, the web page: guessing a token is limited (failures only), and a session ends
for real (logout, expiry, `podium sessions revoke`) on every node. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from flask.sessions import SecureCookieSessionInterface

from tests.support.ui import TOKENS, Page, other_node
from webhook_server.store.schema import ui_sessions

TOKEN = dict(entry.split("=") for entry in TOKENS.split(","))


@pytest.fixture
def ui_db(db_url):
    return db_url


def guess(page: Page, n: int) -> list[int]:
    return [page.post("/ui/login", token=f"wrong-token-{i}").status_code for i in range(n)]


def test_wrong_logins_are_limited_per_address_and_a_429_says_when_to_retry(ui_app):
    attacker = Page(ui_app, REMOTE_ADDR="198.51.100.7")
    assert guess(attacker, 10) == [401] * 10
    resp = attacker.post("/ui/login", token="wrong-again")
    assert resp.status_code == 429 and resp.mimetype == "text/html"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "too many failed authentication attempts from this address" in \
        resp.get_data(as_text=True)
    # the right token from the limited address is refused too: a 429 tells nothing
    assert attacker.post("/ui/login", token=TOKEN["ana"]).status_code == 429
    # ...and from anywhere else it still logs in
    assert Page(ui_app, REMOTE_ADDR="192.0.2.1").post(
        "/ui/login", token=TOKEN["ana"]).status_code == 303


def test_wrong_logins_are_limited_in_total_across_addresses(usvc):
    app = other_node(usvc, auth_limit_total="5 per minute")
    codes = [Page(app, REMOTE_ADDR=f"203.0.113.{i}").post("/ui/login", token="nope")
             .status_code for i in range(6)]
    assert codes == [401] * 5 + [429]
    resp = Page(app, REMOTE_ADDR="203.0.113.99").post("/ui/login", token="nope")
    assert "(all addresses)" in resp.get_data(as_text=True)


def test_right_logins_never_count(ui_app):
    page = Page(ui_app, REMOTE_ADDR="192.0.2.5")
    assert [page.post("/ui/login", token=TOKEN["bob"]).status_code
            for _ in range(30)] == [303] * 30
    assert Page(ui_app, REMOTE_ADDR="192.0.2.5").post("/ui/login", token="x").status_code == 401


def _cookie(page: Page) -> str:
    return page.client.get_cookie("podium_ui", path="/ui").value


def test_logout_ends_the_session_for_every_copy_of_the_cookie_on_every_node(usvc, as_person,
                                                                          ui_app):
    page = as_person("ana")
    stolen = _cookie(page)
    assert page.post("/ui/logout").status_code == 303
    for app in (ui_app, other_node(usvc)):
        thief = Page(app)
        thief.client.set_cookie("podium_ui", stolen, path="/ui")
        assert thief.get("/ui/").status_code == 401
    with usvc.store.read() as conn:
        assert conn.execute(ui_sessions.select()).all() == []


def test_the_cookie_carries_only_a_random_id_and_the_store_only_its_hash(usvc, as_person,
                                                                        ui_app):
    page = as_person("ana")
    serializer = SecureCookieSessionInterface().get_signing_serializer(ui_app)
    content = serializer.loads(_cookie(page))
    assert set(content) == {"sid", "csrf", "_permanent"} and len(content["sid"]) >= 43
    with usvc.store.read() as conn:
        (row,) = conn.execute(ui_sessions.select()).mappings().all()
    assert row["id_hash"] == hashlib.sha256(content["sid"].encode()).hexdigest()
    assert content["sid"] not in json.dumps({k: str(v) for k, v in row.items()})
    assert TOKEN["ana"] not in json.dumps({k: str(v) for k, v in row.items()})


def test_a_forged_or_unknown_session_id_opens_nothing(ui_app):
    serializer = SecureCookieSessionInterface().get_signing_serializer(ui_app)
    page = Page(ui_app)
    page.client.set_cookie("podium_ui", serializer.dumps({"sid": "A" * 43}), path="/ui")
    assert page.get("/ui/").status_code == 401


def _podium(usvc, *args):
    from webhook_server.cli import main

    env = {"PODIUM_DATABASE_URL": usvc.settings.database_url,
           "PODIUM_POLICY": "/nonexistent/podium.yaml"}
    return CliRunner().invoke(main, list(args), env=env)


def test_podium_sessions_revoke_ends_one_persons_sessions_everywhere(usvc, as_person, ui_app):
    ana, ana_phone, bob = as_person("ana"), as_person("ana"), as_person("bob")
    listed = _podium(usvc, "sessions", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert sorted(r["actor"] for r in json.loads(listed.output)) == ["ui:ana", "ui:ana",
                                                                     "ui:bob"]
    result = _podium(usvc, "sessions", "revoke", "--person", "ui:ana")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "revoked 2 session(s) of ui:ana (ui:ana)"
    assert ana.get("/ui/").status_code == 401 and ana_phone.get("/ui/").status_code == 401
    assert bob.get("/ui/").status_code == 200
    again = _podium(usvc, "sessions", "revoke", "--person", "ui:ana", "--json")
    assert json.loads(again.output) == {"person": "ui:ana", "revoked": 0, "actors": []}


def test_podium_sessions_revoke_by_the_policys_person(usvc, as_person, tmp_path):
    import yaml

    from tests.support.ui import POLICY
    from webhook_server.cli import main

    (tmp_path / "podium.yaml").write_text(yaml.safe_dump(POLICY))
    ana, bob = as_person("ana"), as_person("bob")
    result = CliRunner().invoke(main, ["sessions", "revoke", "--person", "ana"], env={
        "PODIUM_DATABASE_URL": usvc.settings.database_url,
        "PODIUM_POLICY": str(tmp_path / "podium.yaml")})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "revoked 1 session(s) of ana (ui:ana)"
    assert ana.get("/ui/").status_code == 401 and bob.get("/ui/").status_code == 200
