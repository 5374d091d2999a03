"""Secret rotation: each source takes several secrets (a list, or the existing variable with
comma-separated values: the current and the previous one). Both verify; a third does not."""

import json
import time
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import Clock

from tests.support.settings import make_settings
from tests.support.signing import databricks_body, databricks_headers, mlflow_headers, tag_set
from webhook_server.dev.fakes.slack import click_payload, sign
from webhook_server.intake.sources import SignatureError, secret_list
from webhook_server.intake.sources.databricks import DatabricksSource
from webhook_server.intake.sources.mlflow import MlflowSource
from webhook_server.intake.sources.slack import SlackSource
from webhook_server.service.services import build
from webhook_server.web.app import create_app

CURRENT, PREVIOUS, OTHER = "secret-current", "secret-previous", "secret-other"
BOTH = [f"{CURRENT},{PREVIOUS}", f" {CURRENT} , {PREVIOUS} ,", [CURRENT, PREVIOUS]]


def test_secret_list_reads_lists_and_comma_separated_values():
    assert secret_list(None) == secret_list("") == secret_list(" , ") == ()
    assert secret_list("one") == ("one",)
    for value in BOTH:
        assert secret_list(value) == (CURRENT, PREVIOUS)


@pytest.mark.parametrize("secrets", BOTH)
def test_mlflow_accepts_the_current_and_the_previous_secret(secrets):
    src = MlflowSource(secrets)
    body = tag_set()
    for secret in (CURRENT, PREVIOUS):
        assert src.verify(body, mlflow_headers(body, secret=secret, delivery_id="d"))
    with pytest.raises(SignatureError, match="no matching signature") as err:
        src.verify(body, mlflow_headers(body, secret=OTHER, delivery_id="d"))
    assert err.value.reason == "mismatch"
    assert not src.unsigned and not MlflowSource(secrets, insecure=True).unsigned


@pytest.mark.parametrize("secrets", BOTH)
def test_databricks_accepts_the_current_and_the_previous_secret(secrets):
    src = DatabricksSource(secrets)
    body = databricks_body()
    for secret in (CURRENT, PREVIOUS):
        src.verify(body, databricks_headers(body, secret=secret))
    with pytest.raises(SignatureError, match="no matching signature"):
        src.verify(body, databricks_headers(body, secret=OTHER))


@pytest.mark.parametrize("secrets", BOTH)
def test_slack_accepts_the_current_and_the_previous_secret(secrets):
    src = SlackSource(secrets, team_id="T0PODIUM", clock=Clock())
    body = urlencode({"payload": json.dumps(click_payload(1, "U0ALICE"))}).encode()
    for secret in (CURRENT, PREVIOUS):
        src.verify(body, sign(secret, body.decode()))
    with pytest.raises(SignatureError, match="does not match the body"):
        src.verify(body, sign(OTHER, body.decode()))


def test_rotation_end_to_end_through_the_settings(sqlite_url):
    """The existing variables carry both secrets: every route verifies either one."""
    svc = build(make_settings(sqlite_url, mlflow_webhook_secret=f"{CURRENT},{PREVIOUS}",
                              databricks_webhook_secret=f"{CURRENT},{PREVIOUS}",
                              slack_signing_secret=f"{CURRENT},{PREVIOUS}",
                              slack_team_id="T0PODIUM"))
    svc.store.migrate()
    try:
        client = create_app(svc.settings, services=svc).test_client()
        for i, secret in enumerate((CURRENT, PREVIOUS, OTHER)):
            ok = secret != OTHER
            body = tag_set(version=str(i + 1))
            resp = client.post("/webhooks/mlflow", data=body,
                               headers=mlflow_headers(body, secret=secret))
            assert resp.status_code == (200 if ok else 401)
            body = databricks_body(version=str(i + 1),
                                   event_timestamp=int(time.time() * 1000) + i)
            resp = client.post("/webhooks/databricks", data=body,
                               headers=databricks_headers(body, secret=secret))
            assert resp.status_code == (200 if ok else 401)
            form = urlencode({"payload": json.dumps(click_payload(i + 1, "U0ALICE"))})
            resp = client.post("/slack/interactions", data=form, headers=sign(secret, form))
            assert resp.status_code == (200 if ok else 401)
    finally:
        svc.close()
