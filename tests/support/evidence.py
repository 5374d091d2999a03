"""Decisions made in this process with the real judge (model code in sandboxes), for the
evidence-bundle tests: a request recorded through the intake and its job run to the end."""

from __future__ import annotations

import itertools

from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import Job
from webhook_server.store import transition_requests as reqs

_ids = itertools.count(1)


def decide(svc, model: str, version: str, target: str = "Production"):
    """Record a request for ``version`` and run its job with the service's own gates; the
    request as it ended."""
    n = next(_ids)
    result = svc.intake.record(Delivery("api", f"evidence-{model}-{version}-{n}",
                                        "api.request", "{}",
                                        TransitionRequested(model, version, target, "api")))
    svc.workflow.handle(Job(n, f"request:{result.request_id}", "request",
                            {"request_id": result.request_id}, 1, 6, "test"))
    with svc.store.read() as conn:
        return reqs.get(conn, result.request_id)


def policy_file(path, text: str) -> str:
    path.write_text(text)
    return str(path)
