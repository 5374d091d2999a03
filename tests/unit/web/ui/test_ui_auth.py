"""Who may see the page: nobody without an identity; a trusted proxy's header only from a
configured address; an API-token login; sessions signed with PODIUM_UI_SECRET."""

import logging

import pytest

from tests.support.ui import TOKENS, Page, other_node, settings_for
from webhook_server.core.settings import Settings, SettingsError
from webhook_server.web.app import create_app

PAGES = ["/ui/", "/ui/requests/1", "/ui/models/churn", "/ui/operations"]

TOKEN = dict(entry.split("=") for entry in TOKENS.split(","))


@pytest.mark.parametrize("url", PAGES)
def test_a_page_without_an_identity_answers_the_login_form_with_401(ui_app, url):
    resp = Page(ui_app).get(url)
    assert resp.status_code == 401 and resp.mimetype == "text/html"
    assert "Log in to Podium" in resp.get_data(as_text=True)


def test_a_token_login_acts_as_ui_and_the_token_name(ui_app):
    page = Page(ui_app)
    resp = page.post("/ui/login", token=TOKEN["ana"], next="/ui/operations")
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/operations"
    html = page.text("/ui/")
    assert '<span id="me">ui:ana</span>' in html and TOKEN["ana"] not in html


def test_a_wrong_token_logs_nobody_in(ui_app):
    page = Page(ui_app)
    resp = page.post("/ui/login", token="tok-guess")
    assert resp.status_code == 401 and "that token is not valid" in resp.get_data(as_text=True)
    assert page.get("/ui/").status_code == 401


def test_the_login_form_brings_you_back_to_the_page_you_asked_for(ui_app):
    page = Page(ui_app)
    asked = page.get("/ui/models/churn?x=1").get_data(as_text=True)
    assert 'name="next" value="/ui/models/churn?x=1"' in asked
    wrong = page.post("/ui/login", token="nope", next="/ui/models/churn?x=1")
    assert 'name="next" value="/ui/models/churn?x=1"' in wrong.get_data(as_text=True)
    right = page.post("/ui/login", token=TOKEN["bob"], next="/ui/models/churn?x=1")
    assert right.headers["Location"] == "/ui/models/churn?x=1"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui/",
                                    "/api/v1/requests", "/ui/\\evil", "javascript:alert(1)"])
def test_after_login_the_page_sends_you_only_within_itself(ui_app, target):
    resp = Page(ui_app).post("/ui/login", token=TOKEN["ana"], next=target)
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/"


def test_logout_ends_the_session(as_person):
    page = as_person("ana")
    assert page.get("/ui/").status_code == 200
    assert page.post("/ui/logout").status_code == 303
    assert page.get("/ui/").status_code == 401


def test_the_trusted_header_names_the_person_from_a_trusted_proxy(usvc):
    app = other_node(usvc, ui_trusted_proxies="10.0.0.0/24, 192.0.2.9")
    page = Page(app, REMOTE_ADDR="10.0.0.7")
    html = page.get("/ui/", headers={"X-Forwarded-Email": "ana@example.com"}) \
        .get_data(as_text=True)
    assert '<span id="me">ui:ana@example.com</span>' in html and "(ana)" in html


@pytest.mark.parametrize("remote", ["10.0.1.7", "127.0.0.1", "::1"])
def test_the_trusted_header_is_ignored_from_any_other_address(usvc, remote):
    app = other_node(usvc, ui_trusted_proxies="10.0.0.0/24")
    resp = Page(app, REMOTE_ADDR=remote).get("/ui/",
                                             headers={"X-Forwarded-Email": "ana@example.com"})
    assert resp.status_code == 401


def test_the_trusted_header_is_ignored_when_no_proxy_is_configured(ui_app):
    resp = Page(ui_app).get("/ui/", headers={"X-Forwarded-Email": "ana@example.com"})
    assert resp.status_code == 401


def test_only_the_configured_header_counts(usvc):
    app = other_node(usvc, ui_trusted_proxies="127.0.0.1", ui_trusted_header="X-Forwarded-User")
    page = Page(app)
    assert page.get("/ui/", headers={"X-Forwarded-Email": "ana@example.com"}).status_code == 401
    assert page.get("/ui/", headers={"X-Forwarded-User": "bob"}).status_code == 200


def test_a_malformed_trusted_header_is_a_400_page_that_shows_it_as_text(usvc):
    app = other_node(usvc, ui_trusted_proxies="127.0.0.1")
    resp = Page(app).get("/ui/", headers={"X-Forwarded-Email": "<script>x</script>"})
    assert resp.status_code == 400 and "<script>x" not in resp.get_data(as_text=True)


def test_malformed_proxy_addresses_stop_the_start_naming_the_variable():
    with pytest.raises(SettingsError, match="PODIUM_UI_TRUSTED_PROXIES: 'proxy.internal' is "
                                            "not an IP address or network"):
        Settings.from_env({"PODIUM_UI_TRUSTED_PROXIES": "10.0.0.1,proxy.internal"})
    s = Settings.from_env({"PODIUM_UI_TRUSTED_PROXIES": "10.0.0.1, fd00::/120",
                           "PODIUM_UI_TRUSTED_HEADER": "X-Forwarded-User",
                           "PODIUM_UI_SECRET": "shh", "PODIUM_UI_SESSION_HOURS": "2"})
    assert [str(n) for n in s.ui_proxies()] == ["10.0.0.1/32", "fd00::/120"]
    assert (s.ui_trusted_header, s.ui_session_hours) == ("X-Forwarded-User", 2.0)
    assert "shh" not in repr(s) and "shh" in s.secrets()


def _cookie(page: Page) -> str:
    return page.client.get_cookie("podium_ui", path="/ui").value


def test_two_nodes_with_the_same_secret_share_logins(usvc, as_person):
    cookie = _cookie(as_person("ana"))
    other_node = Page(create_app(usvc.settings, services=usvc))
    other_node.client.set_cookie("podium_ui", cookie, path="/ui")
    assert other_node.get("/ui/").status_code == 200


@pytest.mark.parametrize("change", [{"ui_secret": "another-secret"},
                                    {"named_api_tokens": f"bob={TOKEN['bob']}"}])
def test_a_session_is_refused_under_another_secret_or_once_its_token_is_gone(usvc, as_person,
                                                                            change):
    cookie = _cookie(as_person("ana"))
    node = Page(other_node(usvc, **change))
    node.client.set_cookie("podium_ui", cookie, path="/ui")
    assert node.get("/ui/").status_code == 401


def test_a_token_login_ends_its_session_hours_after_the_login_even_while_used(
        usvc, as_person):
    from datetime import timedelta

    from webhook_server.store.clock import db_now
    from webhook_server.store.schema import ui_sessions

    page = as_person("ana")
    with usvc.store.read() as conn:
        (row,) = conn.execute(ui_sessions.select()).mappings().all()
        assert row["expires_at"] - row["created_at"] == timedelta(hours=12)
    assert page.get("/ui/").status_code == 200  # used: the expiry does not move
    with usvc.store.tx() as conn:
        assert conn.execute(ui_sessions.select()).mappings().one() == row
        conn.execute(ui_sessions.update().values(
            expires_at=db_now(conn) - timedelta(seconds=1)))
    assert page.get("/ui/").status_code == 401


def test_without_a_secret_the_start_says_sessions_use_a_random_key(ui_db, caplog):
    from webhook_server.service.services import build

    svc = build(settings_for(ui_db, ui_secret=None))
    try:
        with caplog.at_level(logging.WARNING, logger="webhook_server.web.ui"):
            create_app(svc.settings, services=svc)
            create_app(svc.settings.replace(ui_secret="s"), services=svc)
    finally:
        svc.close()
    lines = [r.getMessage() for r in caplog.records if "PODIUM_UI_SECRET" in r.getMessage()]
    assert lines == ["podium: PODIUM_UI_SECRET is not set: the web page signs its sessions "
                     "with a random key of this `podium serve` (logins end when it restarts; "
                     "set the same secret on every node behind one address)"]


@pytest.mark.parametrize("url", ["/ui/", "/ui/login", "/ui/requests/999", "/ui/nope"])
def test_every_page_answer_carries_the_security_headers(as_person, url):
    resp = as_person("ana").get(url)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


def test_the_stylesheet_and_script_need_no_login(ui_app):
    page = Page(ui_app)
    for name, kind in (("ui.css", "text/css"), ("ui.js", "text/javascript")):
        with page.get(f"/ui/static/{name}") as resp:  # a file response: closed after
            assert resp.status_code == 200 and resp.mimetype == kind


def test_the_session_cookie_is_httponly_samesite_and_limited_to_the_page(as_person):
    page = as_person("ana")
    cookie = page.client.get_cookie("podium_ui", path="/ui")
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/ui"
    assert not cookie.secure  # http in tests; PODIUM_PUBLIC_URL=https://... makes it Secure
