"""MLflow 3.x registry webhooks: verify the Standard-Webhooks style signature, then map."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

from webhook_server.constants import (
    MLFLOW_DELIVERY_ID_HEADER,
    MLFLOW_SIGNATURE_HEADER,
    MLFLOW_SIGNATURE_VERSION,
    MLFLOW_TIMESTAMP_HEADER,
    TRANSITION_REQUEST_TAG,
)
from webhook_server.events import (
    AliasChanged,
    Event,
    Ignored,
    ModelCreated,
    RequestCancelled,
    TestDelivery,
    TransitionRequested,
    VersionCreated,
)
from webhook_server.sources import Delivery, PayloadError, SignatureError
from webhook_server.sources._common import (
    is_number,
    load_json_object,
    require_str,
    require_version,
)

SOURCE = "mlflow"

# What MLflow's `test_webhook` sends (mlflow/webhooks/types.py `example()` payloads).
EXAMPLES: dict[str, dict[str, Any]] = {
    "registered_model.created": {"name": "example_model", "tags": {"example_key": "example_value"},
                                 "description": "An example registered model"},
    "model_version.created": {"name": "example_model", "version": "1", "source": "models:/123",
                              "run_id": "abcd1234abcd5678",
                              "tags": {"example_key": "example_value"},
                              "description": "An example model version"},
    "model_version_tag.set": {"name": "example_model", "version": "1", "key": "example_key",
                              "value": "example_value"},
    "model_version_tag.deleted": {"name": "example_model", "version": "1",
                                  "key": "example_key"},
    "model_version_alias.created": {"name": "example_model", "alias": "example_alias",
                                    "version": "1"},
    "model_version_alias.deleted": {"name": "example_model", "alias": "example_alias"},
}


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow computes for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{MLFLOW_SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


class MlflowSource:
    """``verify(body, headers) -> delivery id`` then ``parse(delivery id, body) -> Delivery``.

    With no secret, every delivery is refused unless ``insecure`` (``--insecure-no-signature``)
    is set; then the signature is not checked, but the delivery id and timestamp still are.
    """

    def __init__(self, secret: str | None, *, insecure: bool = False, tolerance_s: int = 300,
                 challenger_alias: str = "challenger",
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._insecure = insecure
        self._tolerance = tolerance_s
        self._challenger = challenger_alias
        self._clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        delivery_id = _header(headers, MLFLOW_DELIVERY_ID_HEADER)
        timestamp = _header(headers, MLFLOW_TIMESTAMP_HEADER)
        if not is_number(timestamp):
            raise SignatureError(f"{MLFLOW_TIMESTAMP_HEADER} is not a unix time: {timestamp!r}")
        skew = self._clock() - int(timestamp)
        if skew > self._tolerance:
            raise SignatureError(f"timestamp too old ({int(skew)} s > {self._tolerance} s)")
        if -skew > self._tolerance:
            raise SignatureError(f"timestamp too far in the future ({int(-skew)} s)")
        if self._secret is None:
            if self._insecure:
                return delivery_id
            raise SignatureError("PODIUM_MLFLOW_WEBHOOK_SECRET is not configured")
        offered = _header(headers, MLFLOW_SIGNATURE_HEADER)
        expected = sign(self._secret, delivery_id, timestamp, body).encode()
        # Standard Webhooks allows several space-separated signatures (secret rotation).
        if not any(hmac.compare_digest(expected, candidate.encode())
                   for candidate in offered.split()):
            raise SignatureError("no matching signature")
        return delivery_id

    def parse(self, delivery_id: str, body: bytes) -> Delivery:
        doc = load_json_object(body)
        entity = require_str(doc, "entity")
        action = require_str(doc, "action")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise PayloadError("field 'data' must be a JSON object", status=422)
        name = f"{entity}.{action}"
        event = self._map(name, data)
        return Delivery(SOURCE, delivery_id, name, body.decode("utf-8"), event)

    def _map(self, name: str, data: dict[str, Any]) -> Event:
        if name not in EXAMPLES:
            return Ignored(f"event {name} is not used by Podium")
        if data == EXAMPLES[name]:
            return TestDelivery(name)
        model = require_str(data, "name", "data.")
        if name == "registered_model.created":
            return ModelCreated(model)
        if name == "model_version_alias.deleted":
            alias = require_str(data, "alias", "data.")
            if alias == self._challenger:
                return RequestCancelled(model, None, origin="alias")
            return AliasChanged(model, alias, None)
        version = require_version(data, where="data.")
        if name == "model_version.created":
            return VersionCreated(model, version, source=data.get("source"),
                                  run_id=data.get("run_id"))
        if name == "model_version_alias.created":
            alias = require_str(data, "alias", "data.")
            if alias == self._challenger:
                return TransitionRequested(model, version, "Production", origin="alias")
            return AliasChanged(model, alias, version)
        key = require_str(data, "key", "data.")
        if key != TRANSITION_REQUEST_TAG:
            return Ignored(f"tag {key!r} is not watched")
        if name == "model_version_tag.deleted":
            return RequestCancelled(model, version, origin="tag")
        value = data.get("value")
        if not isinstance(value, str):
            raise PayloadError("field 'data.value' must be a string", status=422)
        return TransitionRequested(model, version, value, origin="tag")


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing header {name}")
    return value
