"""MLflow 3.x registry webhooks: verify the Standard-Webhooks style signature, then map.

The headers and the signature are read in ``mlflow_signature``; what each event means (and
MLflow's example payloads) in ``mlflow_events``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from webhook_server.intake.sources import Delivery, secret_list
from webhook_server.intake.sources._common import load_json_object, require_str
from webhook_server.intake.sources.errors import UNCONFIGURED, SignatureError
from webhook_server.intake.sources.mlflow_events import EXAMPLES, mlflow_event
from webhook_server.intake.sources.mlflow_signature import (
    check_signature,
    read_delivery_id,
    read_timestamp,
    sign,
)
from webhook_server.intake.sources.window import check_window
from webhook_server.intake.validate import ValidationError, field

__all__ = ["EXAMPLES", "SOURCE", "UNSIGNED_BANNER", "MlflowSource", "sign"]

SOURCE = "mlflow"
UNSIGNED_BANNER = ("UNSIGNED MLflow deliveries accepted (insecure mode: "
                   "PODIUM_INSECURE_NO_SIGNATURE or --insecure-no-signature)")


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
        delivery_id = read_delivery_id(headers)
        raw_ts, timestamp = read_timestamp(headers)
        check_window(timestamp, self._clock(), self._tolerance)
        if not self._secrets:
            if self._insecure:
                return delivery_id
            raise SignatureError("PODIUM_MLFLOW_WEBHOOK_SECRET is not configured",
                                 UNCONFIGURED)
        check_signature(self._secrets, body, headers, delivery_id, raw_ts)
        return delivery_id

    def sent_at(self, headers: Mapping[str, str]) -> datetime:
        """When MLflow sent the delivery (its signed timestamp header, which ``verify``
        checked): MLflow's retries of a failed delivery resend it unchanged."""
        return datetime.fromtimestamp(read_timestamp(headers)[1], UTC)

    def parse(self, delivery_id: str, body: bytes,
              sent_at: datetime | None = None) -> Delivery:
        doc = load_json_object(body)
        entity = require_str(doc, "entity", max_len=48)
        action = require_str(doc, "action", max_len=48)
        data = field(doc, "data", dict)
        if data is None:
            raise ValidationError("field 'data' must be a JSON object", 422)
        name = f"{entity}.{action}"
        event = mlflow_event(name, data, self._challenger)
        return Delivery(SOURCE, delivery_id, name, body.decode("utf-8"), event, sent_at)
