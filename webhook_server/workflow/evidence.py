"""The evidence bundle of a decision, kept where an operator expects it: the judge writes
the files (scores, digests, the policy section; ``model_tests/bundle.py``), the registry
logs them as artifacts of the version's run under ``podium/evidence/request-<id>/<digest>/``
(a request compared again keeps both), and
the request records their URI and digest (the ledger row of its move and the approval
evidence then carry the digest)."""

from __future__ import annotations

import tempfile
from typing import Any

from podium_policy.verdict import Verdict
from webhook_server.store.records import Request
from webhook_server.workflow.fenced import FencedRegistry
from webhook_server.workflow.gates import Gates


def keep(gates: Gates, registry: FencedRegistry, req: Request, *, champion: str | None,
         checks: list[dict[str, Any]], comparison: dict[str, Any] | None,
         verdict: Verdict) -> dict[str, Any] | None:
    """Write and log the bundle; ``{"uri", "sha256", "files"}`` for the request's evidence,
    or None when this judge keeps none or the version has no run to keep it in. A failure
    raises: the job retries, so no decision is recorded without its bundle."""
    if gates.bundle is None:
        return None
    with tempfile.TemporaryDirectory(prefix="podium-evidence-") as directory:
        sha256, files = gates.bundle(directory, request_id=req.id, model=req.model,
                                     version=req.version, target=req.target,
                                     champion=champion, checks=checks,
                                     comparison=comparison, verdict=verdict.as_json())
        uri = registry.log_evidence(req.model, req.version, req.id, directory, sha256)
    if uri is None:
        return None
    return {"uri": uri, "sha256": sha256, "files": files}
