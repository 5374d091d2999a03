"""Rollbacks in unit tests: ask through the workflow, then be the worker.

``podium rollback`` asks (the request enters through the intake) and waits while a worker
runs the job; here the test runs the job itself, with a ``Worker`` like any other, under
the model lock, with a lease and a heartbeat."""

from __future__ import annotations

import time

from webhook_server import contract
from webhook_server.jobs.queue import job_state
from webhook_server.jobs.worker import Worker
from webhook_server.store import states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request
from webhook_server.workflow import RollbackRefused, Workflow


def see_through(workflow: Workflow, request_id: int, timeout_s: float = 10,
                poll_s: float = 0.01) -> Request:
    """Run the request's job until the request ended and its job is done (its tags
    written) or dead, or ``timeout_s`` passed; the request as it is then."""
    worker = Worker(workflow.queue, {"request": workflow.handle}, poll_s=poll_s)
    key = contract.request_job(request_id)
    deadline = time.monotonic() + timeout_s
    while True:
        with workflow.store.read() as conn:
            req = reqs.get(conn, request_id)
            job = job_state(conn, key)
        if (req.state in states.TERMINAL and job in ("done", "dead")
                or time.monotonic() >= deadline):
            return req
        if worker.run_once(key=key) is None:
            time.sleep(poll_s)


def roll_back(workflow: Workflow, model: str, actor: str, to: str | None = None, *,
              timeout_s: float = 10) -> dict:
    """Ask for a rollback and run its job: what ``podium rollback --json`` prints (raises
    RollbackRefused when the job refused it)."""
    asked = workflow.request_rollback(model, actor, to)
    if asked["state"] == states.AWAITING_APPROVAL:
        return asked
    req = see_through(workflow, asked["request"], timeout_s)
    if req.state == states.REJECTED:
        raise RollbackRefused(req.reason or "rollback refused", 409)
    return {**asked, "state": req.state, "reason": req.reason}
