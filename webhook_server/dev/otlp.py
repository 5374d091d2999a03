"""A small OTLP/HTTP trace receiver for the demo and the tests: it decodes what exporters
POST to ``/v1/traces`` (protobuf, opentelemetry-proto) into plain ``Span`` records, and
draws a trace as an indented tree.

Not a collector: it keeps spans in memory, answers every export with 200, and drops
nothing but what it cannot decode (answered 400).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from webhook_server.dev.fakes.serving import FakeServer

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer",
         5: "consumer"}


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    service: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(v) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def decode(body: bytes) -> list[Span]:
    """The spans in one ``ExportTraceServiceRequest``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out: list[Span] = []
    for rs in request.resource_spans:
        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(Span(
                    s.name, s.trace_id.hex(), s.span_id.hex(),
                    s.parent_span_id.hex() or None, KINDS.get(s.kind, str(s.kind)),
                    str(resource.get("service.name", "")), s.start_time_unix_nano,
                    s.end_time_unix_nano, s.status.code == 2,
                    {a.key: _value(a.value) for a in s.attributes}))
    return out


class OtlpReceiver(FakeServer):
    """``POST /v1/traces``; ``spans`` holds what arrived, ``wait_for`` waits on it."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.exports = 0
        self._cond = threading.Condition()

    def app(self):
        from flask import Flask, request

        app = Flask("otlp-receiver")

        @app.post("/v1/traces")
        def traces():
            if request.mimetype != "application/x-protobuf":
                return "expected application/x-protobuf", 415
            try:
                spans = decode(request.get_data())
            except Exception as exc:  # a body that is not an export request
                return f"cannot decode: {exc}", 400
            with self._cond:
                self.spans.extend(spans)
                self.exports += 1
                self._cond.notify_all()
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceResponse,
            )

            return (ExportTraceServiceResponse().SerializeToString(), 200,
                    {"Content-Type": "application/x-protobuf"})

        return app

    def wait_for(self, predicate, timeout: float = 30) -> list[Span]:
        """The spans received once ``predicate(spans)`` holds; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.spans):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"after {timeout} s the receiver has "
                                       f"{len(self.spans)} span(s): "
                                       f"{sorted({s.name for s in self.spans})}")
                self._cond.wait(left)
            return list(self.spans)


def trace_of(spans: Iterable[Span], trace_id: str) -> list[Span]:
    return [s for s in spans if s.trace_id == trace_id]


def tree(spans: Iterable[Span], keys: tuple[str, ...] = ("podium.request_id",
                                                         "podium.model", "podium.version",
                                                         "podium.alias")) -> str:
    """One trace as an indented tree: name, service, milliseconds and Podium's ids."""
    spans = sorted(spans, key=lambda s: s.start_ns)
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for s in spans:
        children.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in children.get(parent, []):
            shown = " ".join(f"{k.split('.')[-1]}={s.attributes[k]}" for k in keys
                             if k in s.attributes)
            lines.append(f"{'  ' * depth}{s.name}  [{s.kind}, {s.ms:.1f} ms"
                         f"{', ERROR' if s.error else ''}]{'  ' + shown if shown else ''}")
            walk(s.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)
