"""Whether a request asked in the registry still stands when its job starts.

A person asks in MLflow by setting the ``transition_request`` tag on a version (origin
``tag``) or the challenger alias on it (origin ``alias``), and withdraws by deleting the tag
or removing the alias; intake cancels the open request on the withdrawal's webhook. But
MLflow delivers webhooks from a thread pool and retries failed ones, so a set-then-withdraw
can arrive withdrawal first (nothing open to cancel) and set second (a request), and a
reconciler scan can read the tag just before it is deleted. So the request job's ``queued``
step asks the registry once more before any check: an ask no longer standing ends the
request ``cancelled`` (``withdrawn`` says why). Requests made through Podium (the CLI and
the release job record theirs before they set the tag or alias; the API, Databricks,
rollbacks) are not asked in the registry: they are not looked at here.
"""

from __future__ import annotations

from podium_policy.targets import normalise_target
from webhook_server.contract import TRANSITION_REQUEST_TAG
from webhook_server.store import states
from webhook_server.store.records import Request
from webhook_server.workflow.fenced import FencedRegistry

ORIGINS = ("tag", "alias")  # asked in the registry
ASKERS = (None, "reconciler")  # an MLflow webhook names no one; the reconciler's scan


def in_registry(req: Request) -> bool:
    """A request a person asked for in the registry (a webhook, or the reconciler's scan),
    not one recorded by Podium's CLI, which names its authenticated asker."""
    return req.origin in ORIGINS and req.requested_by in ASKERS


def withdrawn(registry: FencedRegistry, req: Request, challenger_alias: str) -> str | None:
    """Why the registry no longer asks for ``req`` (None: it still does, or ``req`` was not
    asked there). Reads MLflow: an error raises (the job retries), never cancels."""
    if not in_registry(req):
        return None
    v = f"v{req.version}"
    if req.origin == "tag":
        value = registry.version_tags(req.model, req.version).get(TRANSITION_REQUEST_TAG)
        if value is None:
            return (f"the {TRANSITION_REQUEST_TAG} tag was removed from {v} before the "
                    "request started")
        if normalise_target(value) != req.target:  # case-insensitive, as intake reads it
            return (f"the {TRANSITION_REQUEST_TAG} tag on {v} asks for {value[:100]!r}, not "
                    f"{req.target}, since this request was made")
        return None
    seen = registry.alias_version(req.model, challenger_alias)
    if seen == req.version:
        return None
    return (f"the {challenger_alias} alias no longer points at {v} ("
            + (f"it points at v{seen}" if seen else "it is not set")
            + ") before the request started")


def not_standing(registry: FencedRegistry, req: Request,
                 challenger_alias: str) -> tuple[str, str, str] | None:
    """(state, actor, reason) that ends ``req`` before its checks: the version is not in
    the registry (``failed``), or its ask there was withdrawn (``cancelled``); else None."""
    if not registry.version_exists(req.model, req.version):
        return (states.FAILED, "worker", f"model {req.model!r} version {req.version} does "
                "not exist in the registry")
    why = withdrawn(registry, req, challenger_alias)
    return (states.CANCELLED, "worker", why) if why else None
