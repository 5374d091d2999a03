"""Small helpers the source adapters share."""

from __future__ import annotations

import json
from typing import Any

from webhook_server.sources import PayloadError


def load_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise PayloadError("empty body: expected a JSON object")
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"expected a JSON object, got {type(doc).__name__}", status=422)
    return doc


def require_str(doc: dict[str, Any], key: str, where: str = "") -> str:
    value = doc.get(key)
    path = f"{where}{key}"
    if value is None:
        raise PayloadError(f"missing field {path!r}", status=422)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"field {path!r} must be a non-empty string", status=422)
    return value


def is_number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' or '٣', which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def require_version(doc: dict[str, Any], key: str = "version", where: str = "") -> str:
    value = require_str(doc, key, where)
    if not is_number(value):
        raise PayloadError(f"field {where}{key!r} must be a version number, got {value!r}",
                           status=422)
    return str(int(value))
