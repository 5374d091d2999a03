"""``podium demo --trace``: the demo's processes trace to a local OTLP receiver and log JSON;
at the end, the first promotion's traces as trees and its log lines."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from webhook_server.dev.otlp import OtlpReceiver, Span, trace_of, tree

LOG_LINES = 12


class DemoTrace:
    def __init__(self) -> None:
        self.receiver = OtlpReceiver().start()

    def env(self) -> dict[str, str]:
        """What the demo's Podium processes need to trace here and log JSON."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.receiver.url,
                "OTEL_SERVICE_NAME": "podium-demo", "OTEL_BSP_SCHEDULE_DELAY": "200",
                "PODIUM_LOG_FORMAT": "json"}

    def stop(self) -> None:
        self.receiver.stop()

    def show(self, request_id: int, log_path: Path, promoted_step: str = "step promoting",
             timeout: float = 15) -> None:
        """The traces holding ``request_id``'s spans (the webhook's; the approval click's),
        once its promotion step has arrived, then its first JSON log lines."""
        def has_promotion(spans: list[Span]) -> bool:
            return any(s.name == promoted_step and _rid(s) == request_id for s in spans)

        try:
            spans = self.receiver.wait_for(has_promotion, timeout)
        except TimeoutError as exc:
            click.echo(f"\ntrace: {exc}")
            spans = list(self.receiver.spans)
        traces = sorted({s.trace_id for s in spans if _rid(s) == request_id},
                        key=lambda t: min(s.start_ns for s in trace_of(spans, t)))
        click.echo(click.style(f"\nTraces of request {request_id} ({len(traces)}: the "
                               "webhook's, then the approval's)", bold=True))
        for trace_id in traces:
            click.echo(f"\ntrace {trace_id}")
            click.echo(tree(trace_of(spans, trace_id)))
        click.echo(click.style(f"\nJSON log lines of request {request_id} (first "
                               f"{LOG_LINES}; all in {log_path})", bold=True))
        for line in _lines(log_path, request_id)[:LOG_LINES]:
            click.echo(line)


def _rid(span: Span):
    return span.attributes.get("podium.request_id")


def _lines(log_path: Path, request_id: int) -> list[str]:
    out = []
    deadline = time.monotonic() + 5
    while not out and time.monotonic() < deadline:
        for text in log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("request_id") == request_id:
                out.append(text)
        if not out:
            time.sleep(0.2)
    return out
