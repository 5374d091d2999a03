from tests.support.signing import mlflow_body, mlflow_headers, tag_set


def test_metrics_count_deliveries_by_outcome_duplicates_and_jobs(client):
    body = tag_set()
    headers = mlflow_headers(body, delivery_id="m-1")
    client.post("/webhooks/mlflow", data=body, headers=headers)
    client.post("/webhooks/mlflow", data=body, headers=headers)
    ignored = mlflow_body("prompt.created", {"name": "p"})
    client.post("/webhooks/mlflow", data=ignored, headers=mlflow_headers(ignored))
    text = client.get("/metrics").data.decode()
    assert 'podium_deliveries_total{outcome="accepted",source="mlflow"} 1.0' in text
    assert 'podium_deliveries_total{outcome="ignored",source="mlflow"} 1.0' in text
    assert 'podium_duplicate_deliveries_total{source="mlflow"} 1.0' in text
    assert 'podium_jobs{state="queued"} 1.0' in text
    assert 'podium_requests{state="queued"} 1.0' in text
    assert "podium_queue_age_seconds" in text
    # the new request's notification waits in the outbox (no sender ran)
    assert 'podium_notifications{channel="slack",state="pending"} 1.0' in text


def test_healthz_and_readyz_report_a_migrated_store(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["database"] == "ok"


def test_readyz_is_503_when_mlflow_is_unreachable(svc):
    from webhook_server.web.app import create_app

    app = create_app(svc.settings.replace(mlflow_tracking_uri="http://127.0.0.1:9"),
                     services=svc)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"]["mlflow"].startswith("unreachable")


def test_readyz_is_503_on_an_unmigrated_store(sqlite_url):
    from tests.support.settings import make_settings
    from webhook_server.web.app import create_app

    resp = create_app(make_settings(sqlite_url)).test_client().get("/readyz")
    assert resp.status_code == 503
    assert "run migrations" in resp.json["checks"]["database"]


def test_readyz_is_503_and_says_so_on_a_store_a_newer_release_migrated(sqlite_url):
    """An old pod beside new ones during a rollout: the store is at a revision its code does
    not know. It leaves the Service, and its answer says why (not "run migrations")."""
    from sqlalchemy import text

    from tests.support.settings import make_settings
    from webhook_server.store import Store
    from webhook_server.web.app import create_app

    store = Store(sqlite_url)
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.dispose()
    resp = create_app(make_settings(sqlite_url)).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"]["database"] == (
        f"schema at 9999, newer than this Podium knows ({store.head()}): "
        "a newer release migrated the store")
