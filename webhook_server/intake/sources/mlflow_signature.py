"""MLflow's delivery headers and its Standard-Webhooks signature: ``v1,<base64
HMAC-SHA256(secret, "{delivery id}.{timestamp}.{body}")>``, several space-separated."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from webhook_server.contract import (
    MLFLOW_DELIVERY_ID_HEADER,
    MLFLOW_SIGNATURE_HEADER,
    MLFLOW_SIGNATURE_VERSION,
    MLFLOW_TIMESTAMP_HEADER,
)
from webhook_server.intake.sources.errors import MALFORMED, MISMATCH, MISSING, SignatureError
from webhook_server.intake.validate import ValidationError, digits

MAX_DELIVERY_ID = 128  # MLflow sends a UUID; the column holds 255 with the replay suffix
MAX_SIGNATURE_HEADER = 4096  # room for a few dozen "v1,<base64>" signatures


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow computes for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{MLFLOW_SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def read_delivery_id(headers: Mapping[str, str]) -> str:
    delivery_id = _header(headers, MLFLOW_DELIVERY_ID_HEADER)
    if len(delivery_id) > MAX_DELIVERY_ID or not delivery_id.isprintable():
        raise SignatureError(f"{MLFLOW_DELIVERY_ID_HEADER} is not a delivery id (at most "
                             f"{MAX_DELIVERY_ID} printable characters)", MALFORMED)
    return delivery_id


def read_timestamp(headers: Mapping[str, str]) -> tuple[str, int]:
    """The timestamp header as sent (it is signed) and as a unix time."""
    raw_ts = _header(headers, MLFLOW_TIMESTAMP_HEADER)
    try:
        return raw_ts, digits(raw_ts, MLFLOW_TIMESTAMP_HEADER, what="a unix time")
    except ValidationError as exc:
        raise SignatureError(str(exc), MALFORMED) from None


def check_signature(secrets: tuple[str, ...], body: bytes, headers: Mapping[str, str],
                    delivery_id: str, raw_ts: str) -> None:
    """Some offered signature is ours under one of ``secrets``, or SignatureError."""
    offered = _header(headers, MLFLOW_SIGNATURE_HEADER)
    if len(offered) > MAX_SIGNATURE_HEADER:
        raise SignatureError(f"{MLFLOW_SIGNATURE_HEADER} is longer than "
                             f"{MAX_SIGNATURE_HEADER} characters", MALFORMED)
    expected = [sign(secret, delivery_id, raw_ts, body).encode() for secret in secrets]
    # Standard Webhooks allows several space-separated signatures (the sender's
    # rotation); we accept any of our secrets (ours). Every pair is compared.
    matched = False
    for candidate in offered.split():
        for mine in expected:
            matched |= hmac.compare_digest(mine, candidate.encode())
    if not matched:
        raise SignatureError("no matching signature", MISMATCH)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing header {name}", MISSING)
    return value
