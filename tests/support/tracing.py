"""Tracing in tests: Podium's spans into the SDK's in-memory exporter, and what they say."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from webhook_server.core import tracing


@contextlib.contextmanager
def in_memory_spans() -> Iterator:
    """Tracing on, into an ``InMemorySpanExporter`` (yielded); off again after."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.configure({}, exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def by_name(spans) -> dict:
    """The spans by name (the last one of each name)."""
    return {s.name: s for s in spans}


def parent_of(span) -> int | None:
    return span.parent.span_id if span.parent is not None else None
