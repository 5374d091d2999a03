"""Why a delivery is refused: ``SignatureError`` (HTTP 401: not provably from the configured
sender) with its metric reason, or ``PayloadError`` (400 / 422: authentic but unusable; it
lives in ``webhook_server.intake.validate``, whose ``ValidationError`` is one)."""

from __future__ import annotations

from webhook_server.intake.validate import PayloadError

# Why a delivery was refused before its content was trusted: the only label values of
# ``podium_rejected_signatures_total{reason}`` (never text from the request).
MISSING, MALFORMED, STALE, MISMATCH, UNCONFIGURED, UNKNOWN_WORKSPACE = (
    "missing", "malformed", "stale", "mismatch", "unconfigured", "unknown_workspace")
REJECTION_REASONS = (MISSING, MALFORMED, STALE, MISMATCH, UNCONFIGURED, UNKNOWN_WORKSPACE)

__all__ = ["MALFORMED", "MISMATCH", "MISSING", "REJECTION_REASONS", "STALE", "UNCONFIGURED",
           "UNKNOWN_WORKSPACE", "PayloadError", "SignatureError"]


class SignatureError(Exception):
    """The delivery is not provably from the configured sender (HTTP 401).

    ``reason`` is one of ``REJECTION_REASONS``; the message says exactly what was wrong."""

    def __init__(self, message: str, reason: str = MISMATCH) -> None:
        super().__init__(message)
        self.reason = reason if reason in REJECTION_REASONS else MALFORMED
