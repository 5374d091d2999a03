"""Databricks workspace model-registry webhooks (hex HMAC-SHA256 of the raw body).

What each event means (and Databricks' example payload) is in ``databricks_events``."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from webhook_server.contract import DATABRICKS_SIGNATURE_HEADER
from webhook_server.intake.sources import Delivery, secret_list
from webhook_server.intake.sources._common import load_json_object, require_str, require_version
from webhook_server.intake.sources.databricks_events import EXAMPLE, databricks_event
from webhook_server.intake.sources.errors import (
    MALFORMED,
    MISMATCH,
    MISSING,
    UNCONFIGURED,
    PayloadError,
    SignatureError,
)
from webhook_server.intake.sources.window import check_window
from webhook_server.intake.validate import MAX_NAME

__all__ = ["EXAMPLE", "MAX_EVENT_MS", "SOURCE", "DatabricksSource", "sign"]

SOURCE = "databricks"
MAX_EVENT_MS = 10**15  # year 33658: any event_timestamp beyond is no time at all


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DatabricksSource:
    """Databricks sends no delivery id or timestamp header: both come from the body.

    ``secret`` may list several secrets (a list, or comma-separated: the current and the
    previous one while rotating); a body signed with any of them verifies."""

    def __init__(self, secret: str | list[str] | None, *, tolerance_s: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        self._secrets = secret_list(secret)
        self._tolerance = tolerance_s
        self._clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        if not self._secrets:
            raise SignatureError("Databricks webhooks are not configured "
                                 "(PODIUM_DATABRICKS_WEBHOOK_SECRET is unset)", UNCONFIGURED)
        offered = headers.get(DATABRICKS_SIGNATURE_HEADER)
        if not offered:
            raise SignatureError(f"missing header {DATABRICKS_SIGNATURE_HEADER}", MISSING)
        offered = offered.strip().lower()
        if len(offered) != 64 or not offered.isascii():
            raise SignatureError(f"{DATABRICKS_SIGNATURE_HEADER} is not a hex HMAC-SHA256 "
                                 "(64 hex digits)", MALFORMED)
        matched = False
        for secret in self._secrets:  # every secret is compared: no early exit
            matched |= hmac.compare_digest(sign(secret, body).encode(), offered.encode())
        if not matched:
            raise SignatureError("no matching signature", MISMATCH)

    def delivery_id(self, body: bytes) -> str:
        """Derived idempotency key: webhook + event + model + version + event time."""
        doc = load_json_object(body)
        webhook = require_str(doc, "webhook_id", max_len=64)
        event = require_str(doc, "event", max_len=100)
        model = require_str(doc, "model_name", max_len=MAX_NAME)
        version = doc.get("version")
        version = require_version(doc) if version not in (None, "") else "-"
        stamp = doc.get("event_timestamp")
        if (not isinstance(stamp, int) or isinstance(stamp, bool)
                or not 0 <= stamp <= MAX_EVENT_MS):
            raise PayloadError("field 'event_timestamp' must be milliseconds since the epoch",
                               status=422)
        check_window(stamp / 1000, self._clock(), self._tolerance)
        key = ":".join([webhook, event, model, version, str(stamp)])
        if len(key) > 255:  # the column's width; still one key per delivery
            key = f"{webhook}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
        return key

    def parse(self, delivery_id: str, body: bytes) -> Delivery:
        doc = load_json_object(body)
        name = require_str(doc, "event", max_len=100)
        return Delivery(SOURCE, delivery_id, name, body.decode("utf-8"),
                        databricks_event(name, doc))
