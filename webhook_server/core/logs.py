"""Log lines an operator's log platform can filter: one JSON object a line (or text on a
terminal), each line about a request carrying its ids.

``bind(request_id=..., model=...)`` adds fields to every line logged inside it, in this
thread or task (a ``ContextVar``); ``ContextFilter`` (on the handler ``configure`` installs)
copies them onto each record with ``node`` (the host name) and, while a span is recording,
``trace_id`` and ``span_id``. The fields are part of the contract (``FIELDS``; README and
docs/operations.md). Secrets are scrubbed from the record (``scrub.use``) and again from the
formatted line (a traceback, a field passed as ``extra``).

``PODIUM_LOG_FORMAT``: ``json``, ``text``, or ``auto`` (the default: text when stderr is a
terminal, JSON otherwise).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from webhook_server.core import scrub

FORMATS = ("auto", "json", "text")
# the fields a line about a request may carry (None ones are left out)
FIELDS = ("request_id", "model", "version", "delivery_id", "job_id", "job_kind")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"

_json_on = False  # set by configure: start lines become log records too
_bound: ContextVar[Mapping[str, Any] | None] = ContextVar("podium_log_fields", default=None)


class LogFormatError(ValueError):
    pass


def chosen_format(environ: Mapping[str, str] | None = None, stream=None) -> str:
    """``json`` or ``text`` from ``PODIUM_LOG_FORMAT`` (``auto``: text on a terminal)."""
    environ = os.environ if environ is None else environ
    raw = (environ.get("PODIUM_LOG_FORMAT") or "auto").strip().lower()
    if raw not in FORMATS:
        raise LogFormatError(f"PODIUM_LOG_FORMAT={raw!r} is not one of json, text, auto")
    if raw != "auto":
        return raw
    stream = sys.stderr if stream is None else stream
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries ``fields`` (None values are left out)."""
    token = _bound.set({**bound(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def bound() -> Mapping[str, Any]:
    return _bound.get() or {}


class ContextFilter(logging.Filter):
    """Adds the bound fields, ``node`` and the current span's trace ids to each record."""

    def __init__(self, node: str | None = None) -> None:
        super().__init__()
        self.node = node or socket.gethostname()

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in bound().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        record.node = self.node
        trace_id, span_id = _trace_ids()
        if trace_id:
            record.trace_id, record.span_id = trace_id, span_id
        return True


class TextFormatter(logging.Formatter):
    """The classic line, with the request's fields after the message (``key=value``)."""

    def format(self, record: logging.LogRecord) -> str:
        line = scrub.redact(super().format(record))
        extra = " ".join(f"{k}={getattr(record, k)}" for k in (*FIELDS, "trace_id")
                         if getattr(record, k, None) is not None)
        if not extra:
            return line
        head, sep, tail = line.partition("\n")  # a traceback stays below the fields
        return f"{head} [{extra}]{sep}{tail}"


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class Redacting(JsonFormatter):
        """The whole line scrubbed: the traceback, the fields given as ``extra`` too."""

        def format(self, record: logging.LogRecord) -> str:
            return scrub.redact(super().format(record))

        def formatException(self, ei) -> str:  # before JSON escapes a secret's quotes
            return scrub.redact(super().formatException(ei))

    return Redacting(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger",
                                                     "asctime": "time"},
                         datefmt="%Y-%m-%dT%H:%M:%S%z", json_ensure_ascii=False)


def make_handler(fmt: str, stream=None) -> logging.Handler:
    """A stream handler writing ``fmt`` lines with the context fields."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    handler.podium = True  # type: ignore[attr-defined]
    return handler


def configure(fmt: str, level: int = logging.INFO, stream=None, *,
              force: bool = False) -> logging.Handler | None:
    """Give the root logger one stream handler in ``fmt`` (``json`` or ``text``) that adds
    the context fields, replacing one an earlier call installed. Like ``basicConfig``, it
    leaves a root logger someone else configured (a test runner's capture) alone unless
    ``force``. Returns the handler, or None when it left the root logger alone."""
    root = logging.getLogger()
    others = [h for h in root.handlers if not getattr(h, "podium", False)]
    if others and not force:
        return None
    global _json_on
    _json_on = fmt == "json"
    handler = make_handler(fmt, stream)
    for old in list(root.handlers):
        if getattr(old, "podium", False) or force:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def announce(text: str) -> None:
    """A command's one-line start banner or refusal: as it is on stderr, or, with JSON logs,
    a record of logger ``podium`` (ERROR for a refusal, WARNING for a warning), so a log
    platform gets no line it cannot parse."""
    if not _json_on:
        print(text, file=sys.stderr, flush=True)
        return
    level = (logging.ERROR if "refusing to start" in text
             else logging.WARNING if "warning:" in text else logging.INFO)
    logging.getLogger("podium").log(level, text)


def _trace_ids() -> tuple[str | None, str | None]:
    """The current span's ids in hex while one is recording (OpenTelemetry's API is always
    installed with MLflow; a no-op span has an invalid context)."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
