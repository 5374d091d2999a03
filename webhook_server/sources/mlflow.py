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
from webhook_server.sources import (
    MALFORMED,
    MISMATCH,
    MISSING,
    STALE,
    UNCONFIGURED,
    Delivery,
    SignatureError,
    secret_list,
)
from webhook_server.sources._common import load_json_object, require_str, require_version
from webhook_server.validate import MAX_NAME, ValidationError, digits, field

SOURCE = "mlflow"
MAX_DELIVERY_ID = 128  # MLflow sends a UUID; the column holds 255 with the replay suffix
MAX_SIGNATURE_HEADER = 4096  # room for a few dozen "v1,<base64>" signatures
UNSIGNED_BANNER = ("UNSIGNED MLflow deliveries accepted (insecure mode: "
                   "PODIUM_INSECURE_NO_SIGNATURE or --insecure-no-signature)")
MAX_RAW_TARGET = 100  # longer transition_request values are kept cut (they are invalid)

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

    ``secret`` may list several secrets (a list, or comma-separated: the current and the
    previous one while rotating); a delivery signed with any of them verifies. With no
    secret, every delivery is refused unless ``insecure`` (``--insecure-no-signature``) is
    set; then the signature is not checked, but the delivery id and timestamp still are.
    """

    def __init__(self, secret: str | list[str] | None, *, insecure: bool = False,
                 tolerance_s: int = 300, challenger_alias: str = "challenger",
                 clock: Callable[[], float] = time.time) -> None:
        self._secrets = secret_list(secret)
        self._insecure = insecure
        self._tolerance = tolerance_s
        self._challenger = challenger_alias
        self._clock = clock

    @property
    def unsigned(self) -> bool:
        """True when deliveries are accepted without a signature (insecure mode)."""
        return not self._secrets and self._insecure

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        delivery_id = _header(headers, MLFLOW_DELIVERY_ID_HEADER)
        if len(delivery_id) > MAX_DELIVERY_ID or not delivery_id.isprintable():
            raise SignatureError(f"{MLFLOW_DELIVERY_ID_HEADER} is not a delivery id (at most "
                                 f"{MAX_DELIVERY_ID} printable characters)", MALFORMED)
        raw_ts = _header(headers, MLFLOW_TIMESTAMP_HEADER)
        try:
            timestamp = digits(raw_ts, MLFLOW_TIMESTAMP_HEADER, what="a unix time")
        except ValidationError as exc:
            raise SignatureError(str(exc), MALFORMED) from None
        skew = self._clock() - timestamp
        if skew > self._tolerance:
            raise SignatureError(f"timestamp too old ({int(skew)} s > {self._tolerance} s)",
                                 STALE)
        if -skew > self._tolerance:
            raise SignatureError(f"timestamp too far in the future ({int(-skew)} s)", STALE)
        if not self._secrets:
            if self._insecure:
                return delivery_id
            raise SignatureError("PODIUM_MLFLOW_WEBHOOK_SECRET is not configured",
                                 UNCONFIGURED)
        offered = _header(headers, MLFLOW_SIGNATURE_HEADER)
        if len(offered) > MAX_SIGNATURE_HEADER:
            raise SignatureError(f"{MLFLOW_SIGNATURE_HEADER} is longer than "
                                 f"{MAX_SIGNATURE_HEADER} characters", MALFORMED)
        expected = [sign(secret, delivery_id, raw_ts, body).encode()
                    for secret in self._secrets]
        # Standard Webhooks allows several space-separated signatures (the sender's
        # rotation); we accept any of our secrets (ours). Every pair is compared.
        matched = False
        for candidate in offered.split():
            for mine in expected:
                matched |= hmac.compare_digest(mine, candidate.encode())
        if not matched:
            raise SignatureError("no matching signature", MISMATCH)
        return delivery_id

    def parse(self, delivery_id: str, body: bytes) -> Delivery:
        doc = load_json_object(body)
        entity = require_str(doc, "entity", max_len=48)
        action = require_str(doc, "action", max_len=48)
        data = field(doc, "data", dict)
        if data is None:
            raise ValidationError("field 'data' must be a JSON object", 422)
        name = f"{entity}.{action}"
        event = self._map(name, data)
        return Delivery(SOURCE, delivery_id, name, body.decode("utf-8"), event)

    def _map(self, name: str, data: dict[str, Any]) -> Event:
        if name not in EXAMPLES:
            return Ignored(f"event {name} is not used by Podium")
        if data == EXAMPLES[name]:
            return TestDelivery(name)
        model = require_str(data, "name", "data.", max_len=MAX_NAME)
        if name == "registered_model.created":
            return ModelCreated(model)
        if name == "model_version_alias.deleted":
            alias = require_str(data, "alias", "data.")
            if alias == self._challenger:
                return RequestCancelled(model, None, origin="alias")
            return AliasChanged(model, alias, None)
        version = require_version(data, where="data.")
        if name == "model_version.created":
            return VersionCreated(model, version,
                                  source=field(data, "source", where="data."),
                                  run_id=field(data, "run_id", where="data.", max_len=64))
        if name == "model_version_alias.created":
            alias = require_str(data, "alias", "data.")
            if alias == self._challenger:
                return TransitionRequested(model, version, "Production", origin="alias")
            return AliasChanged(model, alias, version)
        key = require_str(data, "key", "data.", max_len=250)
        if key != TRANSITION_REQUEST_TAG:
            return Ignored(f"tag {key[:100]!r} is not watched")
        if name == "model_version_tag.deleted":
            return RequestCancelled(model, version, origin="tag")
        value = field(data, "value", str, required=True, where="data.", max_len=10_000)
        return TransitionRequested(model, version, raw_target(value), origin="tag")


def raw_target(value: str) -> str:
    """What was asked for, as stored: a value too long to be a target is cut (it is still
    refused as an invalid target, and the version says why)."""
    return value if len(value) <= MAX_RAW_TARGET else value[:MAX_RAW_TARGET] + "..."


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing header {name}", MISSING)
    return value
