"""Event sources: verify raw bytes, parse, return a domain event. Nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from webhook_server.events import Event

# Why a delivery was refused before its content was trusted: the only label values of
# ``podium_rejected_signatures_total{reason}`` (never text from the request).
MISSING, MALFORMED, STALE, MISMATCH, UNCONFIGURED, UNKNOWN_WORKSPACE = (
    "missing", "malformed", "stale", "mismatch", "unconfigured", "unknown_workspace")
REJECTION_REASONS = (MISSING, MALFORMED, STALE, MISMATCH, UNCONFIGURED, UNKNOWN_WORKSPACE)


class SignatureError(Exception):
    """The delivery is not provably from the configured sender (HTTP 401).

    ``reason`` is one of ``REJECTION_REASONS``; the message says exactly what was wrong."""

    def __init__(self, message: str, reason: str = MISMATCH) -> None:
        super().__init__(message)
        self.reason = reason if reason in REJECTION_REASONS else MALFORMED


def secret_list(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Secrets for rotation: a list, or one setting with comma-separated values (the
    current and the previous secret). Blanks are dropped; ``()`` means not configured."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s.strip() for s in items if s and s.strip())


class PayloadError(Exception):
    """The delivery is authentic but unusable: ``status`` is 400 (malformed) or 422."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: where it came from, its idempotency key and what it means."""

    source: str
    delivery_id: str
    event_name: str
    body: str
    event: Event
