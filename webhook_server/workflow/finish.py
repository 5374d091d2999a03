"""The end of a request: its report, its predecessor archived, its version off the shadow
alias, and its tags with ``podium.status`` last. Run again by every retry of a terminal
request's job (each effect is setting a value, so repeating it is harmless)."""

from __future__ import annotations

from podium_policy.schema import ModelPolicy
from webhook_server.contract import TAG_DECIDED_BY, TAG_REASON, TAG_REQUEST_ID, TAG_STATUS
from webhook_server.store import Store, ledger, states
from webhook_server.store.records import Request
from webhook_server.workflow import report
from webhook_server.workflow.fenced import FencedRegistry

REPORTED = (states.PROMOTED, states.STAGED, states.REJECTED, states.INCONCLUSIVE)


def finish(store: Store, registry: FencedRegistry, req: Request, cfg: ModelPolicy) -> None:
    """Tags of a terminal request (again, after a crash), the predecessor archived."""
    with store.read() as conn:
        move = ledger.applied_for(conn, req.id)
        champion_now = (ledger.current(conn, req.model, move["alias"])
                        if move else None)
    evidence = req.evidence_json()
    if evidence and req.state in REPORTED:
        report.save(registry, req, {"request": req.id, **evidence,
                                    "state": req.state, "reason": req.reason})
    on_champion = bool(move) and move["alias"] == cfg.aliases.champion
    if (on_champion and move["from_version"] and move["from_version"] != champion_now):
        registry.set_tags(req.model, move["from_version"], {TAG_STATUS: states.ARCHIVED})
    tags = {TAG_REQUEST_ID: str(req.id)}
    if req.reason:
        tags[TAG_REASON] = req.reason[:500]
    if req.decided_by:
        tags[TAG_DECIDED_BY] = req.decided_by
    tags[TAG_STATUS] = req.state
    leave_shadow(registry, req)
    if on_champion and req.state == states.PROMOTED and champion_now != req.version:
        # a retry that ran after a later move replaced this version: the tag says what
        # the version is now (its successor's job archived it already)
        tags[TAG_STATUS] = states.ARCHIVED
    registry.set_tags(req.model, req.version, tags)


def leave_shadow(registry: FencedRegistry, req: Request) -> None:
    """A request that waited for live evidence has ended: its version leaves the shadow
    alias (unless the alias names another version by now)."""
    alias = (req.evidence_json().get("live") or {}).get("alias")
    if alias and registry.alias_version(req.model, alias) == req.version:
        registry.delete_alias(req.model, alias)
