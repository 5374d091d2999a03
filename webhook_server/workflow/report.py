"""The request's report: JSON and Markdown, logged as artifacts of the version's run."""

from __future__ import annotations

import logging

from webhook_server.store.records import Request
from webhook_server.workflow.fenced import FencedRegistry

log = logging.getLogger(__name__)


def markdown(req: Request, report: dict) -> str:
    lines = [f"# Podium request {req.id}: {req.model} v{req.version} -> "
             f"{req.target}", ""]
    if report.get("state"):
        lines += [f"**{report['state']}**" + (f": {report['reason']}"
                                               if report.get("reason") else ""), ""]
    lines += ["| check | category | result | value | threshold | reason |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {c['name']} | {c['category']} | {'pass' if c['passed'] else 'FAIL'} | "
              f"{c['value']} | {c['threshold']} | {c['reason']} |"
              for c in report.get("checks", [])]
    if "comparison" in report:
        c = report["comparison"]
        if c.get("delta") is None or c.get("ci_low") is None:  # could not be computed
            lines += ["", f"Comparison on {c['rows']} holdout rows: {c['metric']} not "
                          f"computed: {'; '.join(c.get('reasons') or [])}"]
        else:
            lines += ["", f"Comparison on {c['rows']} holdout rows: {c['metric']} "
                          f"{c['challenger']['metric']:.4f} vs {c['champion']['metric']:.4f}"
                          f", delta {c['delta']:+.4f} [{c['ci_low']:+.4f}, "
                          f"{c['ci_high']:+.4f}]"]
    return "\n".join(lines) + "\n"


def save(registry: FencedRegistry, req: Request, report: dict) -> None:
    """A courtesy: a failure to log the report never loses or repeats the decision."""
    try:
        registry.log_report(req.model, req.version, f"request-{req.id}", report,
                            markdown(req, report))
    except Exception:
        log.exception("could not log the report of request %s", req.id)
