"""Input checks every route and source shares: bounded numbers, depth-limited JSON, typed
fields. Each failure is a ``ValidationError`` carrying its HTTP status (400 malformed, 422
well-formed but wrong), so no input reaches the database or ``int()`` unchecked.

- ``parse_json(raw)`` refuses documents nested deeper than ``MAX_DEPTH`` before parsing (no
  ``RecursionError``), ``NaN``/``Infinity``, and keeps integers of more than ``BIG_NUMBER``
  digits as their text (``BigNumber``), so a field check names the field instead of
  ``int()`` failing on 5,000 digits.
- ``digits(text, name)`` caps the length before converting: at most 20 ASCII digits.
- ``field`` / ``text`` / ``version`` / ``integer`` read one field of a JSON object with its
  type, length and range; the message names the field (``'data.version'``).
- ``body_object(request)`` is the JSON object of a Flask request body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
MAX_DIGITS = 20
MAX_ID = 2**63 - 1  # the largest id a BIGINT column holds
MAX_NAME = 200  # model names: keys such as "model:<name>" must fit 255 characters
MAX_TEXT = 10_000  # free text (comments, reasons)
BIG_NUMBER = 100  # JSON integers longer than this stay text
SHA256 = re.compile(r"^[0-9a-f]{64}$")  # a digest as Podium shows it (lower-case hex)


class PayloadError(Exception):
    """The request or delivery is authentic but unusable: ``status`` is 400 (malformed) or
    422 (well-formed, wrong content). Defined here, at the bottom, so the checks below and
    the sources above share it; ``webhook_server.intake.sources`` re-exports it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ValidationError(PayloadError, ValueError):
    """Bad input: ``status`` is 400 (malformed) or 422 (well-formed, wrong content).

    A ``PayloadError`` (the routes already answer those) and a ``ValueError`` (so Flask's
    ``request.get_json(silent=True)`` treats it as unparsable)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status)


class BigNumber(str):
    """A JSON integer too long to be any number Podium reads, kept as its text."""


# --- JSON --------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _too_deep(text: str, max_depth: int) -> bool:
    if text.count("[") + text.count("{") <= max_depth:
        return False  # the common case: too few brackets to nest that deep
    depth = 0
    for c in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        if c in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _int(text: str) -> int | BigNumber:
    return BigNumber(text) if len(text) > BIG_NUMBER else int(text)


def _constant(name: str):
    raise ValidationError(f"malformed JSON: {name} is not a JSON number")


def parse_json(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``raw`` (UTF-8); ValidationError(400) when it is not one, is
    nested deeper than ``max_depth`` or holds NaN / Infinity."""
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("body is not UTF-8") from None
    if not raw.strip():
        raise ValidationError("empty body: expected a JSON object")
    if _too_deep(raw, max_depth):
        raise ValidationError(f"JSON nested deeper than {max_depth}")
    try:
        return json.loads(raw, parse_int=_int, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc.msg} at line {exc.lineno} "
                              f"column {exc.colno}") from None
    except RecursionError:  # only if max_depth is set above the interpreter's limit
        raise ValidationError(f"JSON nested deeper than {max_depth}") from None


def parse_object(raw: bytes | str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A JSON object (422 for any other JSON value)."""
    doc = parse_json(raw, max_depth)
    if not isinstance(doc, dict):
        raise ValidationError(f"expected a JSON object, got {_kind(doc)}", 422)
    return doc


def body_object(request, *, required: bool = False) -> dict[str, Any]:
    """The JSON object in a Flask request's body: ``{}`` for an empty body unless
    ``required``; 415 when a non-empty body is not declared as JSON; 400/422 otherwise."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ValidationError("empty body: expected a JSON object")
        return {}
    if request.mimetype != "application/json":
        raise ValidationError(f"expected Content-Type application/json, got "
                              f"{request.mimetype!r}", 415)
    return parse_object(raw)


# --- numbers -----------------------------------------------------------------------------

def is_digits(text: str, max_len: int = MAX_DIGITS) -> bool:
    """1 to ``max_len`` ASCII digits (``str.isdigit`` also accepts '²', which ``int``
    refuses)."""
    return 0 < len(text) <= max_len and text.isascii() and text.isdigit()


def digits(value: str | None, name: str, max_len: int = MAX_DIGITS, *,
           max_value: int | None = None, status: int = 400, what: str = "a number") -> int:
    """``value`` (a header, query parameter or id) as an int: ASCII digits only, at most
    ``max_len`` of them, checked before any conversion. ``what`` names the expected
    value in the message (``"X-MLflow-Timestamp is not a unix time: 'soon'"``)."""
    if value is None or value == "":
        raise ValidationError(f"missing {name}", status)
    if len(value) > max_len:
        raise ValidationError(f"{name} is not {what}: longer than {max_len} digits", status)
    if not (value.isascii() and value.isdigit()):
        raise ValidationError(f"{name} is not {what}: {_shown(value)}", status)
    number = int(value)
    if max_value is not None and number > max_value:
        raise ValidationError(f"{name} is over {max_value}", status)
    return number


def identifier(value: str | None, name: str) -> int:
    """A positive database id (request or delivery number)."""
    number = digits(value, name, max_value=MAX_ID)
    if number < 1:
        raise ValidationError(f"{name} must be at least 1")
    return number


# --- fields of a JSON object -------------------------------------------------------------

_KINDS = {str: "a string", int: "an integer", bool: "true or false", float: "a number",
          dict: "a JSON object", list: "a JSON array"}
_MISSING = object()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, BigNumber):
        return f"a number of {len(value)} digits"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "a number", float: "a number", dict: "an object",
            list: "an array"}.get(type(value), type(value).__name__)


def _shown(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def clean_text(value: str, name: str, *, max_len: int, status: int = 422) -> str:
    """Text a database column can hold: no NUL, no lone surrogate, at most ``max_len``."""
    if len(value) > max_len:
        raise ValidationError(f"{name} is longer than {max_len} characters", status)
    if "\x00" in value:
        raise ValidationError(f"{name} contains a NUL character", status)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{name} is not valid Unicode text", status) from None
    return value


def field(doc: Mapping[str, Any], name: str, kind: type | tuple[type, ...] = str, *,
          required: bool = False, default: Any = None, where: str = "",
          max_len: int = MAX_TEXT) -> Any:
    """``doc[name]`` checked to be of ``kind`` (``str``, ``int``, ``float``, ``bool``,
    ``dict``, ``list`` or a tuple of them); ``default`` when absent or null and not
    ``required``. Strings are length-checked; ints are bounded to 64 bits; ``bool`` is
    never taken for an int. Raises ValidationError(422) naming ``where + name``."""
    path = f"{where}{name}"
    value = doc.get(name, _MISSING) if isinstance(doc, Mapping) else _MISSING
    if value is _MISSING or value is None:
        if required:
            raise ValidationError(f"missing field {path!r}", 422)
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not _is(value, kinds):
        wanted = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
        raise ValidationError(f"field {path!r} must be {wanted}, got {_kind(value)}", 422)
    if isinstance(value, str):
        return clean_text(value, f"field {path!r}", max_len=max_len)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ID:
        raise ValidationError(f"field {path!r} is out of range", 422)
    return value


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    for k in kinds:
        if k is str and isinstance(value, str) and not isinstance(value, BigNumber):
            return True
        if k is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if k is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if k not in (str, int, float) and isinstance(value, k):
            return True
    return False


def text(doc: Mapping[str, Any], name: str, *, required: bool = True, where: str = "",
         max_len: int = MAX_TEXT, numbers: bool = False) -> str | None:
    """A non-blank string field (``numbers``: a JSON integer is taken as its digits)."""
    path = f"{where}{name}"
    value = doc.get(name) if isinstance(doc, Mapping) else None
    if numbers and isinstance(value, int | BigNumber) and not isinstance(value, bool):
        value = str(value)
        if len(value) > max_len:
            raise ValidationError(f"field {path!r} is longer than {max_len} characters", 422)
        return value
    value = field(doc, name, str, required=required, where=where, max_len=max_len)
    if value is not None and not value.strip():
        if required:
            raise ValidationError(f"field {path!r} must be a non-empty string", 422)
        return None
    return value


def model_name(doc: Mapping[str, Any], key: str = "name", *, where: str = "") -> str:
    """A model name: a non-empty string of at most ``MAX_NAME`` characters."""
    return text(doc, key, where=where, max_len=MAX_NAME)


def version(doc: Mapping[str, Any], key: str = "version", *, where: str = "") -> str:
    """A version number, as a string or a JSON integer: at most 20 ASCII digits,
    normalised (``"007"`` -> ``"7"``)."""
    value = text(doc, key, where=where, max_len=10_000, numbers=True)
    if not is_digits(value):
        shown = (f"{len(value)} digits" if value.isascii() and value.isdigit()
                 else _shown(value))
        raise ValidationError(f"field {where + key!r} must be a version number of at most "
                              f"{MAX_DIGITS} digits, got {shown}", 422)
    return str(int(value))


def integer(doc: Mapping[str, Any], key: str, *, required: bool = True, where: str = "",
            minimum: int | None = None, maximum: int | None = MAX_ID) -> int | None:
    """A JSON integer (not a boolean, not a string) within [minimum, maximum]."""
    value = field(doc, key, int, required=required, where=where)
    if value is None:
        return None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValidationError(f"field {where + key!r} must be between {minimum} and "
                              f"{maximum}, got {value}", 422)
    return value
