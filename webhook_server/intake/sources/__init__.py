"""Event sources: verify raw bytes, parse, return a domain event. Nothing else.

One module per sender (``mlflow``, ``databricks``, ``slack``) holds its source class and
the order of its checks; ``*_signature`` / ``*_events`` / ``slack_actions`` hold the
details. Shared: ``errors`` (why a delivery is refused), ``window`` (the timestamp window),
``_common`` (field helpers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from webhook_server.intake.events import Event
from webhook_server.intake.sources.errors import (
    MALFORMED,
    MISMATCH,
    MISSING,
    REJECTION_REASONS,
    STALE,
    UNCONFIGURED,
    UNKNOWN_WORKSPACE,
    PayloadError,
    SignatureError,
)

__all__ = ["MALFORMED", "MISMATCH", "MISSING", "REJECTION_REASONS", "STALE", "UNCONFIGURED",
           "UNKNOWN_WORKSPACE", "Delivery", "PayloadError", "SignatureError", "secret_list"]


def secret_list(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Secrets for rotation: a list, or one setting with comma-separated values (the
    current and the previous secret). Blanks are dropped; ``()`` means not configured."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s.strip() for s in items if s and s.strip())


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: where it came from, its idempotency key and what it means.

    ``sent_at``: when the sender sent it, where it says so in a signed header (MLflow's
    timestamp, the same on each of its retries): a delivery arriving late is judged as of
    then (``Intake``: Podium's own shadow-alias moves). None: as of its arrival."""

    source: str
    delivery_id: str
    event_name: str
    body: str
    event: Event
    sent_at: datetime | None = None
