"""A server span around every HTTP request when tracing is on (``core/tracing.py``).

The span continues the caller's trace when the request carries a W3C ``traceparent``
header, is named by the route (``POST /webhooks/mlflow``) and carries the answer's status.
It does what opentelemetry-instrumentation-flask does for Podium's needs: that package
pins ``opentelemetry-semantic-conventions`` one beta behind the SDK MLflow pins, so the two
cannot be installed together (see docs/operations.md). Off, no hook is registered.
"""

from __future__ import annotations

import contextlib

from flask import Flask, Response, g, request

from webhook_server.core import tracing


def init_app(app: Flask) -> None:
    if not tracing.enabled():
        return
    app.before_request(_start)
    app.after_request(_status)
    app.teardown_request(_end)


def _start() -> None:
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    parent = tracing.extract({k.lower(): v for k, v in request.headers.items()})
    stack = contextlib.ExitStack()
    g.podium_span = stack, stack.enter_context(tracing.span(
        f"{request.method} {rule}", kind="server", parent=parent,
        attributes={"http.request.method": request.method, "http.route": rule,
                    "url.path": request.path}))


def _status(response: Response) -> Response:
    held = g.get("podium_span")
    if held is not None:
        tracing.set_attributes(held[1], {"http.response.status_code": response.status_code})
        if response.status_code >= 500:
            from opentelemetry.trace import Status, StatusCode

            held[1].set_status(Status(StatusCode.ERROR))
    return response


def _end(exc: BaseException | None) -> None:
    held = g.pop("podium_span", None)
    if held is not None:
        held[0].close()


def annotate(**values) -> None:
    """Add Podium's attributes (``tracing.attrs`` names) to the request's span."""
    held = g.get("podium_span") if tracing.enabled() else None
    if held is not None:
        tracing.set_attributes(held[1], tracing.attrs(**values))
