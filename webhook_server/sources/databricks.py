"""Databricks workspace model-registry webhooks (hex HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from webhook_server.constants import DATABRICKS_SIGNATURE_HEADER
from webhook_server.events import Event, Ignored, TransitionRequested, VersionCreated
from webhook_server.sources import Delivery, PayloadError, SignatureError
from webhook_server.sources._common import load_json_object, require_str, require_version

SOURCE = "databricks"

_TRANSITION_EVENTS = {
    "TRANSITION_REQUEST_CREATED": None,  # target in "to_stage"
    "TRANSITION_REQUEST_TO_STAGING_CREATED": "Staging",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED": "Production",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED": "Archived",
}

EXAMPLE = {
    "event": "TRANSITION_REQUEST_CREATED",
    "webhook_id": "c5596721253c4b429368cf6f4341b88a",
    "event_timestamp": 1589859029343,
    "model_name": "churn",
    "version": "8",
    "to_stage": "Production",
    "from_stage": "Staging",
    "text": "Looks good on the holdout.",
}


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DatabricksSource:
    """Databricks sends no delivery id or timestamp header: both come from the body."""

    def __init__(self, secret: str | None, *, tolerance_s: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._tolerance = tolerance_s
        self._clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        if self._secret is None:
            raise SignatureError("Databricks webhooks are not configured "
                                 "(PODIUM_DATABRICKS_WEBHOOK_SECRET is unset)")
        offered = headers.get(DATABRICKS_SIGNATURE_HEADER)
        if not offered:
            raise SignatureError(f"missing header {DATABRICKS_SIGNATURE_HEADER}")
        if not hmac.compare_digest(sign(self._secret, body).encode(),
                                   offered.strip().lower().encode()):
            raise SignatureError("no matching signature")

    def delivery_id(self, body: bytes) -> str:
        """Derived idempotency key: webhook + event + model + version + event time."""
        doc = load_json_object(body)
        parts = [require_str(doc, k) for k in ("webhook_id", "event", "model_name")]
        version = str(doc.get("version") or "-")
        stamp = doc.get("event_timestamp")
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            raise PayloadError("field 'event_timestamp' must be milliseconds since the epoch",
                               status=422)
        age = self._clock() - stamp / 1000
        if age > self._tolerance:
            raise SignatureError(f"timestamp too old ({int(age)} s > {self._tolerance} s)")
        if -age > self._tolerance:
            raise SignatureError(f"timestamp too far in the future ({int(-age)} s)")
        return ":".join([*parts, version, str(stamp)])

    def parse(self, delivery_id: str, body: bytes) -> Delivery:
        doc = load_json_object(body)
        name = require_str(doc, "event")
        return Delivery(SOURCE, delivery_id, name, body.decode("utf-8"), self._map(name, doc))

    @staticmethod
    def _map(name: str, doc: dict) -> Event:
        if name == "MODEL_VERSION_CREATED":
            return VersionCreated(require_str(doc, "model_name"), require_version(doc))
        if name not in _TRANSITION_EVENTS:
            return Ignored(f"event {name} is not used by Podium")
        target = _TRANSITION_EVENTS[name] or doc.get("to_stage")
        if not isinstance(target, str):
            raise PayloadError("field 'to_stage' must be a string", status=422)
        return TransitionRequested(require_str(doc, "model_name"), require_version(doc),
                                   target, origin="databricks",
                                   comment=doc.get("text") if isinstance(doc.get("text"), str)
                                   else None)
