import json

import pytest

from tests.support.signing import DATABRICKS_SECRET, databricks_body, databricks_headers
from webhook_server.intake.events import Ignored, TransitionRequested, VersionCreated
from webhook_server.intake.sources import PayloadError, SignatureError
from webhook_server.intake.sources.databricks import DatabricksSource


def source(secret=DATABRICKS_SECRET, now=None):
    import time

    return DatabricksSource(secret, clock=(lambda: now) if now else time.time)


def test_signed_transition_request_maps_to_a_request_with_the_comment():
    body = databricks_body()
    src = source()
    src.verify(body, databricks_headers(body))
    delivery = src.parse(src.delivery_id(body), body)
    assert delivery.event == TransitionRequested("churn", "8", "Production", origin="databricks",
                                                 comment="Looks good on the holdout.")


@pytest.mark.parametrize("event,target", [("TRANSITION_REQUEST_TO_STAGING_CREATED", "Staging"),
                                          ("TRANSITION_REQUEST_TO_ARCHIVED_CREATED", "Archived")])
def test_stage_specific_events_carry_their_target(event, target):
    body = databricks_body(event=event, to_stage=None)
    assert source().parse("x", body).event.target == target


def test_model_version_created_maps():
    body = databricks_body(event="MODEL_VERSION_CREATED", version="9")
    assert source().parse("x", body).event == VersionCreated("churn", "9")


def test_other_events_are_ignored():
    assert isinstance(source().parse("x", databricks_body(event="COMMENT_CREATED")).event,
                      Ignored)


def test_delivery_id_is_derived_from_webhook_event_model_version_and_time():
    body = databricks_body(event_timestamp=1_800_000_000_000)
    src = source(now=1_800_000_000)
    assert src.delivery_id(body) == ("c5596721253c4b429368cf6f4341b88a:"
                                     "TRANSITION_REQUEST_CREATED:churn:8:1800000000000")


def test_stale_event_timestamp_is_rejected():
    body = databricks_body(event_timestamp=1_800_000_000_000 - 301_000)
    with pytest.raises(SignatureError, match="timestamp too old"):
        source(now=1_800_000_000).delivery_id(body)


def test_wrong_or_missing_signature_is_rejected():
    body = databricks_body()
    with pytest.raises(SignatureError, match="no matching signature"):
        source().verify(body, databricks_headers(body, secret="other"))
    with pytest.raises(SignatureError, match="missing header X-Databricks-Signature"):
        source().verify(body, {})


def test_a_tampered_body_is_rejected():
    body = databricks_body()
    headers = databricks_headers(body)
    with pytest.raises(SignatureError):
        source().verify(body.replace(b"Production", b"Archived"), headers)


def test_unconfigured_databricks_refuses_with_the_variable_name():
    body = databricks_body()
    with pytest.raises(SignatureError, match="PODIUM_DATABRICKS_WEBHOOK_SECRET"):
        source(secret=None).verify(body, databricks_headers(body))


def test_event_timestamp_must_be_milliseconds():
    body = json.dumps(dict(json.loads(databricks_body()), event_timestamp="soon")).encode()
    with pytest.raises(PayloadError, match="milliseconds") as err:
        source().delivery_id(body)
    assert err.value.status == 422
