import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.signing import SECRET, mlflow_body, mlflow_headers, tag_set
from webhook_server.intake.events import (
    AliasChanged,
    Ignored,
    ModelCreated,
    RequestCancelled,
    TestDelivery,
    TransitionRequested,
    VersionCreated,
)
from webhook_server.intake.sources import PayloadError, SignatureError
from webhook_server.intake.sources._common import is_number
from webhook_server.intake.sources.mlflow import EXAMPLES, MlflowSource

NOW = 1_800_000_000


def source(secret=SECRET, **kw):
    return MlflowSource(secret, clock=lambda: NOW, **kw)


def signed(body=None, **kw):
    body = body if body is not None else tag_set()
    kw.setdefault("timestamp", NOW)
    return body, mlflow_headers(body, **kw)


def test_verify_accepts_a_delivery_signed_like_mlflow_signs_it():
    body, headers = signed(delivery_id="d-1")
    assert source().verify(body, headers) == "d-1"


@pytest.mark.parametrize("header", ["X-MLflow-Delivery-Id", "X-MLflow-Timestamp",
                                    "X-MLflow-Signature"])
def test_verify_names_the_missing_header(header):
    body, headers = signed()
    del headers[header]
    with pytest.raises(SignatureError, match=f"missing header {header}"):
        source().verify(body, headers)


def test_verify_rejects_a_delivery_signed_with_another_secret():
    body, headers = signed(secret="not-the-secret")
    with pytest.raises(SignatureError, match="no matching signature"):
        source().verify(body, headers)


@pytest.mark.parametrize("offset,message", [(-301, "timestamp too old"),
                                            (301, "timestamp too far in the future")])
def test_verify_rejects_timestamps_outside_the_tolerance(offset, message):
    body, headers = signed(timestamp=NOW + offset)
    with pytest.raises(SignatureError, match=message):
        source().verify(body, headers)


def test_verify_accepts_timestamps_at_the_edge_of_the_tolerance():
    body, headers = signed(timestamp=NOW - 300)
    assert source().verify(body, headers)


@pytest.mark.parametrize("stamp", ["yesterday", "²", "١٨٠٠٠٠٠٠٠٠"])
def test_verify_rejects_a_non_numeric_timestamp(stamp):
    """Unicode digits pass str.isdigit but not int(): a 401, never a 500 (found by hypothesis)."""
    body, headers = signed()
    headers["X-MLflow-Timestamp"] = stamp
    with pytest.raises(SignatureError, match="not a unix time"):
        source().verify(body, headers)


def test_verify_accepts_any_of_several_signatures_during_secret_rotation():
    body, headers = signed(delivery_id="d-2")
    old = mlflow_headers(body, secret="old", delivery_id="d-2", timestamp=NOW)
    headers["X-MLflow-Signature"] = f"{old['X-MLflow-Signature']} {headers['X-MLflow-Signature']}"
    assert source().verify(body, headers) == "d-2"


def test_verify_refuses_everything_when_no_secret_is_configured():
    body, headers = signed()
    with pytest.raises(SignatureError, match="PODIUM_MLFLOW_WEBHOOK_SECRET is not configured"):
        source(secret=None).verify(body, headers)


def test_verify_in_insecure_mode_skips_only_the_signature():
    body, headers = signed(delivery_id="d-3")
    del headers["X-MLflow-Signature"]
    assert source(secret=None, insecure=True).verify(body, headers) == "d-3"
    headers["X-MLflow-Timestamp"] = str(NOW - 1000)
    with pytest.raises(SignatureError, match="too old"):
        source(secret=None, insecure=True).verify(body, headers)


def parse(event, data):
    return source().parse("d", mlflow_body(event, data)).event


@pytest.mark.parametrize("value", ["Production", "production", " PRODUCTION ", "staging",
                                   "Archived"])
def test_transition_request_tag_becomes_a_request_with_a_normalised_target(value):
    event = parse("model_version_tag.set", {"name": "churn", "version": "4",
                                            "key": "transition_request", "value": value})
    assert isinstance(event, TransitionRequested)
    assert event.target == value.strip().capitalize()
    assert (event.model, event.version, event.origin) == ("churn", "4", "tag")


def test_invalid_target_is_kept_raw_for_a_reported_rejection():
    event = parse("model_version_tag.set", {"name": "churn", "version": "4",
                                            "key": "transition_request", "value": "Prod"})
    assert event.target is None and event.raw_target == "Prod"


def test_other_tags_are_ignored_with_a_reason():
    event = parse("model_version_tag.set", {"name": "churn", "version": "4",
                                            "key": "owner", "value": "ana"})
    assert event == Ignored("tag 'owner' is not watched")


def test_deleting_the_request_tag_cancels():
    event = parse("model_version_tag.deleted", {"name": "churn", "version": "4",
                                                "key": "transition_request"})
    assert event == RequestCancelled("churn", "4", origin="tag")


def test_challenger_alias_requests_production_and_its_removal_cancels():
    created = parse("model_version_alias.created",
                    {"name": "churn", "alias": "challenger", "version": "5"})
    assert isinstance(created, TransitionRequested)
    assert (created.target, created.origin, created.version) == ("Production", "alias", "5")
    deleted = parse("model_version_alias.deleted", {"name": "churn", "alias": "challenger"})
    assert deleted == RequestCancelled("churn", None, origin="alias")


def test_other_aliases_are_recorded_as_alias_changes():
    assert parse("model_version_alias.created", {"name": "churn", "alias": "staging",
                                                 "version": "2"}) == \
        AliasChanged("churn", "staging", "2")


def test_version_created_maps_even_with_a_null_run_id():
    event = parse("model_version.created", {"name": "churn", "version": "7",
                                            "source": "models:/m-1", "run_id": None,
                                            "tags": {}, "description": None})
    assert event == VersionCreated("churn", "7", source="models:/m-1", run_id=None)


def test_registered_model_created_maps():
    assert parse("registered_model.created", {"name": "churn", "tags": {},
                                              "description": None}) == ModelCreated("churn")


@pytest.mark.parametrize("event", sorted(EXAMPLES))
def test_mlflow_test_webhook_payloads_are_recognised_as_test_deliveries(event):
    assert parse(event, EXAMPLES[event]) == TestDelivery(event)


def test_unknown_events_are_ignored():
    assert isinstance(parse("prompt.created", {"name": "p"}), Ignored)


@pytest.mark.parametrize("body,status,message", [
    (b"", 400, "empty body"),
    (b"{not json", 400, "malformed JSON"),
    (b"\xff\xfe", 400, "not UTF-8"),
    (b"[1, 2]", 422, "expected a JSON object"),
    (b'{"entity": "model_version_tag", "action": "set"}', 422, "'data' must be a JSON object"),
    (b'{"action": "set", "data": {}}', 422, "missing field 'entity'"),
    (mlflow_body("model_version_tag.set", {"version": "1", "key": "transition_request",
                                           "value": "Production"}), 422,
     "missing field 'data.name'"),
    (mlflow_body("model_version_tag.set", {"name": "churn", "version": "³",
                                           "key": "transition_request", "value": "Staging"}),
     422, "must be a version number"),
    (mlflow_body("model_version_tag.set", {"name": "churn", "version": "one",
                                           "key": "transition_request", "value": "Staging"}),
     422, "must be a version number"),
    (mlflow_body("model_version_tag.set", {"name": "churn", "version": "1",
                                           "key": "transition_request", "value": 3}),
     422, "'data.value' must be a string"),
])
def test_parse_rejects_bad_bodies_with_a_precise_message(body, status, message):
    with pytest.raises(PayloadError, match=message) as err:
        source().parse("d", body)
    assert err.value.status == status


HEADER_NAMES = ["X-MLflow-Delivery-Id", "X-MLflow-Timestamp", "X-MLflow-Signature"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_no_mutation_of_a_signed_delivery_is_accepted(data):
    body, headers = signed(delivery_id="delivery-1")
    src = source()
    assert src.verify(body, headers) == "delivery-1"  # the original is accepted
    kind = data.draw(st.sampled_from(["flip", "insert", "delete", "header"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(body) - 1))
        bit = data.draw(st.integers(0, 7))
        body = body[:i] + bytes([body[i] ^ (1 << bit)]) + body[i + 1:]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(body)))
        body = body[:i] + data.draw(st.binary(min_size=1, max_size=8)) + body[i:]
    elif kind == "delete":
        i = data.draw(st.integers(0, len(body) - 1))
        n = data.draw(st.integers(1, 8))
        body = body[:i] + body[i + n:]
    else:
        name = data.draw(st.sampled_from(HEADER_NAMES))
        new = data.draw(st.text(min_size=0, max_size=40).filter(lambda v: v != headers[name]))
        if (name == "X-MLflow-Timestamp" and is_number(new)
                and abs(int(new) - NOW) <= 300):
            new = str(NOW - 301)  # a different timestamp within tolerance stays unsigned
        headers = dict(headers, **{name: new})
    with pytest.raises(SignatureError):
        src.verify(body, headers)


def test_a_real_mlflow_envelope_round_trips():
    body = json.dumps({"entity": "model_version_tag", "action": "set",
                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                       "data": {"name": "churn", "version": "2", "key": "transition_request",
                                "value": "Staging"}}).encode()
    delivery = source().parse("abc", body)
    assert delivery.event_name == "model_version_tag.set"
    assert delivery.body == body.decode()
