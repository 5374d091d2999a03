"""Flask blueprints, one per surface. They translate HTTP to calls and back; no logic."""

from __future__ import annotations

from flask import current_app, jsonify

from webhook_server.services import Services


def services() -> Services:
    return current_app.extensions["podium"]


def error(status: int, message: str, **extra):
    body = {"error": message, **extra}
    return jsonify(body), status
