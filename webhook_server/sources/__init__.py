"""Event sources: verify raw bytes, parse, return a domain event. Nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from webhook_server.events import Event


class SignatureError(Exception):
    """The delivery is not provably from the configured sender (HTTP 401)."""


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
