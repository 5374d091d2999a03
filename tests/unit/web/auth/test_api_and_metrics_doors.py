"""Issue 25, /api/v1 and /metrics: guessing a bearer token is limited (failures only, per
address and in total, 429 + Retry-After); /metrics can require PODIUM_METRICS_TOKEN."""

from __future__ import annotations

import secrets

import pytest

from tests.support.settings import API_TOKEN
from webhook_server.web.app import create_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
METRICS_TOKEN = secrets.token_urlsafe(32)


def get(client, url="/api/v1/requests", token=None, addr="198.51.100.7"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(url, headers=headers, environ_base={"REMOTE_ADDR": addr})


def test_wrong_bearer_tokens_are_limited_per_address_with_retry_after(client):
    assert [get(client, token=f"guess-{i}").status_code for i in range(10)] == [401] * 10
    resp = get(client, token="guess-10")
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
    assert resp.json["error"].startswith("too many failed authentication attempts from this "
                                         "address: retry in ")
    assert resp.json["retry_after_s"] == int(resp.headers["Retry-After"])
    # no oracle: the right token from the limited address gets the same 429
    assert get(client, token=API_TOKEN).status_code == 429
    assert get(client, token=API_TOKEN, addr="192.0.2.10").status_code == 200


def test_wrong_bearer_tokens_are_limited_in_total_across_addresses(svc):
    app = create_app(svc.settings.replace(auth_limit_total="5 per minute"), services=svc)
    client = app.test_client()
    codes = [get(client, token="guess", addr=f"203.0.113.{i}").status_code for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert "(all addresses)" in get(client, token="x", addr="203.0.113.77").json["error"]


def test_a_ci_job_with_the_right_token_is_never_throttled(client):
    assert {get(client, token=API_TOKEN).status_code for _ in range(60)} == {200}
    assert get(client, token="wrong").status_code == 401  # its own budget is untouched


def test_a_request_without_a_token_is_not_a_guess(client):
    assert {get(client).status_code for _ in range(20)} == {401}
    assert get(client, token=API_TOKEN).status_code == 200


def test_failed_api_tokens_and_failed_logins_share_the_budget(svc):
    app = create_app(svc.settings.replace(auth_limit_per_address="3 per minute"),
                     services=svc)
    client = app.test_client()
    for i in range(3):
        assert get(client, token=f"guess-{i}").status_code == 401
    page = client.get("/ui/login", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    csrf = page.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    login = client.post("/ui/login", data={"token": API_TOKEN, "csrf_token": csrf},
                        environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert login.status_code == 429 and "Retry-After" in login.headers


def test_metrics_are_open_without_a_metrics_token(client):
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("headers,message", [
    ({}, "missing bearer token (PODIUM_METRICS_TOKEN is set)"),
    ({"Authorization": f"Basic {METRICS_TOKEN}"}, "missing bearer token (PODIUM_METRICS_TOKEN "
                                                  "is set)"),
    ({"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"}, "invalid bearer token"),
    ({"Authorization": f"Bearer {API_TOKEN}"}, "invalid bearer token"),  # another door's key
])
def test_metrics_need_the_metrics_token_when_it_is_set(svc, headers, message):
    app = create_app(svc.settings.replace(metrics_token=METRICS_TOKEN), services=svc)
    resp = app.test_client().get("/metrics", headers=headers)
    assert resp.status_code == 401 and resp.json == {"error": message}
    assert METRICS_TOKEN not in resp.get_data(as_text=True)


def test_metrics_answer_with_the_metrics_token(svc):
    app = create_app(svc.settings.replace(metrics_token=METRICS_TOKEN), services=svc)
    resp = app.test_client().get("/metrics",
                                 headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status_code == 200 and b"podium_" in resp.data


def test_the_storage_setting_refuses_an_unknown_scheme_without_showing_it():
    from webhook_server.core.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as err:
        Settings.from_env({"PODIUM_RATELIMIT_STORAGE_URI": "mysql://u:pw@db/x"})
    assert "pw" not in str(err.value) and "is not memory://" in str(err.value)
    assert Settings.from_env({"PODIUM_RATELIMIT_STORAGE_URI": "redis://r:6379/0"})


def test_redis_without_its_client_library_is_a_refusal(monkeypatch):
    import importlib.util

    from webhook_server.core.settings import Settings

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "redis" else real(name, *a))
    (reason,) = Settings(ratelimit_storage_uri="redis://:pw@r:6379/0").refusals()
    assert reason == ("PODIUM_RATELIMIT_STORAGE_URI names Redis but the redis package is not "
                      "installed: pip install 'limits[redis]'")


def test_an_unreachable_limiter_storage_lets_the_token_check_decide(svc, caplog):
    class Down:
        def test(self, *args):
            raise ConnectionError("redis is down")

        hit = test

    app = create_app(svc.settings, services=svc)
    app.extensions["podium.auth_limit"]._window = Down()
    client = app.test_client()
    assert get(client, token="wrong").status_code == 401
    assert get(client, token=API_TOKEN).status_code == 200
    assert "auth limiter: cannot read the counts (ConnectionError); not limiting" in caplog.text
