"""Flask blueprints, one per surface. They translate HTTP to calls and back; no logic."""

from __future__ import annotations

import hmac
import logging

from flask import current_app, jsonify, request

from webhook_server.intake.sources import REJECTION_REASONS
from webhook_server.service.services import Services
from webhook_server.store.counters import incr
from webhook_server.web.auth_limit import message

log = logging.getLogger(__name__)


def services() -> Services:
    return current_app.extensions["podium"]


def error(status: int, message: str, **extra):
    body = {"error": message, **extra}
    return jsonify(body), status


def too_many_failures():
    """429 with ``Retry-After`` while this client may not try a token (``auth_limit``);
    None when it may."""
    wait = current_app.extensions["podium.auth_limit"].retry_after(request.remote_addr)
    if wait is None:
        return None
    body, status = error(429, message(wait), retry_after_s=wait[0])
    return body, status, {"Retry-After": str(wait[0])}


def bearer_matches(offered: str, expected: str) -> bool:
    """Constant-time comparison of a bearer token with the one expected."""
    return hmac.compare_digest(offered.encode("utf-8", "replace"), expected.encode())


def count_failure() -> None:
    current_app.extensions["podium.auth_limit"].failed(request.remote_addr)


def count_rejected(source: str, reason: str) -> None:
    """Count a refused delivery on ``podium_rejected_signatures_total{source,reason}``.
    ``reason`` is one of ``sources.REJECTION_REASONS``: never text from the request, so
    garbage cannot grow the label set or the counters table."""
    if reason not in REJECTION_REASONS:
        reason = "malformed"

    try:
        incr(services().store, "rejected_signatures", f"{source}|{reason}")
    except Exception:  # counting must never turn a 401 into a 500
        log.exception("could not count a rejected signature")
