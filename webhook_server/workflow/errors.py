"""What the workflow tells its callers (the CLI, the API, the Slack job)."""

from __future__ import annotations

from webhook_server.jobs.worker import DeferJob


class DecisionConflict(Exception):
    """The request is not waiting for a decision (HTTP 409)."""


class StaleEvidence(DecisionConflict):
    """The approver saw evidence that is no longer the request's (HTTP 409): nothing is
    counted; the message says what changed."""


class DecisionRefused(Exception):
    """The decision is incomplete (a rejection without a reason: HTTP 422)."""


class NotAllowed(Exception):
    """The actor may not decide this request (HTTP 403)."""


class RollbackRefused(Exception):
    """A rollback that may not happen: ``status`` is the HTTP answer (404 unknown model,
    409 nothing to roll back to or already there, 422 not a former champion)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class Deferred(DeferJob):
    """Another request of the same model holds the decision: try again later."""
