"""OpenTelemetry traces, configured only by the standard ``OTEL_*`` variables, off unless
they ask for an exporter.

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set,
or ``OTEL_TRACES_EXPORTER`` is ``otlp`` or ``console``; off when ``OTEL_SDK_DISABLED=true``
or ``OTEL_TRACES_EXPORTER=none``. The SDK reads the rest itself: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (resource), ``OTEL_TRACES_SAMPLER[_ARG]`` (sampling),
``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout), ``OTEL_BSP_*`` (batching). Off, the
SDK and the exporter are never imported and ``span`` is a context manager that does nothing.

Podium keeps its own ``TracerProvider`` (not the global one, which MLflow's own tracing may
claim). A trace crosses processes in the ``jobs.trace_context`` column: ``carrier()`` is
the W3C ``traceparent`` of the current span, written with the job; the worker starts the
job's span under ``extract(carrier)``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

SERVICE = "podium"
TRACER = "podium"
_ON_EXPORTERS = ("otlp", "console")
_provider: Any = None
_tracer: Any = None


def wanted(environ: Mapping[str, str] | None = None) -> str | None:
    """The exporter the environment asks for (``otlp``, ``console``), or None: off."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    named = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named == "none":
        return None
    if named in _ON_EXPORTERS:
        return named
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return None


def configure(environ: Mapping[str, str] | None = None, *, exporter: Any = None) -> bool:
    """Start tracing when the environment asks for it, or to ``exporter`` (a span exporter
    of the SDK, e.g. the in-memory one in tests: spans are exported as they end). Returns
    whether tracing is on. Calling it again replaces the previous provider."""
    kind = wanted(environ) if exporter is None else "given"
    if kind is None:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    env = os.environ if environ is None else environ
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or SERVICE})
    provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _use(provider)
    return True


def _use(provider: Any) -> None:
    global _provider, _tracer
    previous, _provider = _provider, provider
    _tracer = provider.get_tracer(TRACER) if provider is not None else None
    if previous is not None:
        previous.shutdown()


def shutdown() -> None:
    """Export what is buffered and stop tracing (also done at exit by the SDK)."""
    _use(None)


def flush() -> None:
    if _provider is not None:
        _provider.force_flush()


def enabled() -> bool:
    return _tracer is not None


def attrs(*, request_id: int | None = None, model: str | None = None,
          version: str | None = None, **more: Any) -> dict[str, Any]:
    """Span attributes in Podium's names (``podium.request_id``, ``podium.model``...)."""
    fields = {"request_id": request_id, "model": model, "version": version, **more}
    return {f"podium.{k}": (v if isinstance(v, (bool, int, float)) else str(v))
            for k, v in fields.items() if v is not None}


@contextlib.contextmanager
def span(name: str, *, kind: str = "internal", parent: Any = None,
         attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A span named ``name`` around the block (the current span's child, or ``parent``'s,
    a context from ``extract``); an exception is recorded and sets the error status. Yields
    the span, or None when tracing is off."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(name, context=parent, kind=SpanKind[kind.upper()],
                                      attributes=dict(attributes or {})) as current:
        yield current


def set_attributes(current: Any, values: Mapping[str, Any]) -> None:
    """Add attributes to a span ``span`` yielded (nothing when tracing is off)."""
    if current is not None:
        current.set_attributes(dict(values))


def carrier() -> str | None:
    """The current span's context as text (W3C trace context) for a job row; None when no
    span is recording."""
    if _tracer is None:
        return None
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return json.dumps(headers, sort_keys=True) if headers else None


def extract(text: str | Mapping[str, str] | None) -> Any:
    """The context ``carrier`` wrote (or a mapping of HTTP headers); None when tracing is off
    or there is none (a bad value is no parent, never an error)."""
    if _tracer is None or not text:
        return None
    from opentelemetry import propagate

    if isinstance(text, str):
        try:
            headers = json.loads(text)
        except ValueError:
            return None
        if not isinstance(headers, dict):
            return None
    else:
        headers = text
    return propagate.extract(headers)
