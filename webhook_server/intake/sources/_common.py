"""Small helpers the source adapters (and the API) share; the checks are in
``webhook_server.intake.validate``."""

from __future__ import annotations

from typing import Any

from webhook_server.intake import validate

MAX_RAW_TARGET = 100  # longer transition request targets are kept cut (they are invalid)


def load_json_object(body: bytes) -> dict[str, Any]:
    """The JSON object of a body: depth-limited, UTF-8; ValidationError (a PayloadError)."""
    return validate.parse_object(body)


def require_str(doc: dict[str, Any], key: str, where: str = "",
                max_len: int = validate.MAX_NAME) -> str:
    """A non-empty string field (a JSON integer is taken as its digits)."""
    return validate.text(doc, key, where=where, max_len=max_len, numbers=True)


def is_number(text: str) -> bool:
    """1 to 20 ASCII digits: ``str.isdigit`` also accepts '²' or '٣', which ``int``
    refuses, and 5,000 digits are no number Podium uses."""
    return validate.is_digits(text)


def require_version(doc: dict[str, Any], key: str = "version", where: str = "") -> str:
    return validate.version(doc, key, where=where)


def raw_target(value: str) -> str:
    """What was asked for, as stored: a value too long to be a target is cut (it is still
    refused as an invalid target, and the version says why)."""
    return value if len(value) <= MAX_RAW_TARGET else value[:MAX_RAW_TARGET] + "..."
