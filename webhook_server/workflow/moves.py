"""Alias moves (promotion, staging, rollback): intent in the store, then the effect.

``begin`` runs inside the caller's transaction: the request becomes ``promoting`` and the
ledger gets an ``intent`` row naming the alias, the version it is expected to point at and
the version it will point at. Only then does ``apply`` touch MLflow, with effects that can
be repeated (set an alias to a value, set tags). A retry after a crash at any point reads
the intent and the registry and finishes the move, or abandons it when the alias is no
longer where the intent expected (someone moved it outside Podium): a promotion then
compares again, a rollback is refused. The alias is read back after it is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from webhook_server.intake import tell
from webhook_server.intake.events import ROLLBACK_ORIGIN
from webhook_server.store import Store, ledger, outbox, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request
from webhook_server.workflow.fenced import RegistryCalls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What ``apply`` did: ``done`` (moved, request ended) or ``moved_away`` (abandoned:
    the alias pointed elsewhere; ``seen`` is where)."""

    done: bool
    seen: str | None = None


def begin(conn: Connection, req: Request, *, expect: tuple[str, ...], alias: str,
          from_version: str | None, kind: str, actor: str) -> int | None:
    """Record the intent to point ``alias`` at the request's version; returns the intent's
    ledger id (which names the job that performs it), or None when the request was no
    longer in one of ``expect`` (cancelled meanwhile)."""
    if not tell.transition(conn, req.id, expect=expect, to=states.PROMOTING, actor=actor,
                           reason=_intent_line(alias, from_version, req.version)):
        return None
    reqs.set_decided_by(conn, req.id, actor)
    return ledger.record(conn, model=req.model, alias=alias, from_version=from_version,
                         to_version=req.version, kind=kind, actor=actor,
                         request_id=req.id, state=ledger.INTENT,
                         bundle_sha256=reqs.bundle_sha256(conn, req.id))


def _intent_line(alias: str, old: str | None, new: str) -> str:
    return f"moving {alias} from v{old} to v{new}" if old else f"moving {alias} to v{new}"


def apply(store: Store, registry: RegistryCalls, req: Request, *, strict_from: bool, stages: bool,
          moved_away: Callable[[Connection, str | None], None],
          judged_sha256: str | None = None) -> Outcome:
    """Perform the request's recorded intent and end the request. ``strict_from``: the alias
    must still point at the intent's ``from_version`` (champion: compare-and-set); staging
    moves need not. When it points elsewhere, the intent is abandoned and
    ``moved_away(conn, seen)`` moves the request on, in the same transaction.

    Right before the alias moves, the version's files are downloaded again and their digest
    compared with ``judged_sha256`` (the files that were checked and approved): files
    overwritten since fail the request with the reason and an alert, and nothing moves."""
    with store.read() as conn:
        intent = ledger.intent_for(conn, req.id)
    if intent is None:
        raise RuntimeError(f"request {req.id} is promoting without a recorded intent")
    model, alias = req.model, intent["alias"]
    old, new = intent["from_version"], intent["to_version"]
    current = registry.alias_version(model, alias)
    seen, files = new, judged_sha256  # alias already moved (a retry): verified before the set
    if current != new:
        if strict_from and current != old:
            with store.tx() as conn:
                ledger.settle(conn, intent["id"], ledger.ABANDONED)
                others = [i for i in ledger.open_intents(conn, model)
                          if i["request_id"] != req.id]
                if not others:
                    record_external(conn, model, alias, current)
                moved_away(conn, current)
            return Outcome(done=False, seen=current)
        files = registry.model_sha256(model, new)
        if judged_sha256 is not None and files != judged_sha256:
            with store.tx() as conn:
                _swapped(conn, req, intent, judged_sha256, files)
            return Outcome(done=True, seen=current)
        registry.set_alias(model, alias, new)
        seen = registry.alias_version(model, alias)  # read back: did anything else move it?
    elif files is None:  # a retry after the set, with nothing judged: the files as they are
        files = registry.model_sha256(model, new)
    if stages:
        registry.transition_stage(model, new, "Production" if strict_from else "Staging")
        if old and old != new and strict_from:
            registry.transition_stage(model, old, "Archived")
    to = states.PROMOTED if strict_from else states.STAGED
    with store.tx() as conn:
        ledger.set_sha256(conn, intent["id"], files)  # with the settle: a crash loses neither
        ledger.settle(conn, intent["id"], ledger.APPLIED)
        tell.transition(conn, req.id, expect=(states.PROMOTING,), to=to,
                        actor=intent["actor"], reason=_done_line(intent))
        if seen != new:
            record_external(conn, model, alias, seen)
    return Outcome(done=True, seen=seen)


def _swapped(conn: Connection, req: Request, intent: dict, judged: str, now: str) -> None:
    """The files behind the version changed after they were judged: nothing moves."""
    why = (f"the files of {req.model} v{req.version} changed after they were checked "
           f"(judged sha256 {judged[:12]}, now {now[:12]}): the {intent['alias']} alias was "
           "not moved; request a new check of the new files")
    ledger.settle(conn, intent["id"], ledger.ABANDONED)
    if tell.transition(conn, req.id, expect=(states.PROMOTING,), to=states.FAILED,
                       actor="policy", reason=why):
        reqs.set_decided_by(conn, req.id, "policy")
    log.error("%s", why)
    outbox.emit(conn, key=f"ledger:{intent['id']}:swapped", kind="message",
                payload={"what": "files_swapped", "model": req.model, "version": req.version,
                         "alias": intent["alias"], "judged": judged, "now": now})


def _done_line(intent: dict) -> str:
    old, new, alias = intent["from_version"], intent["to_version"], intent["alias"]
    if intent["kind"] == ledger.ROLLBACK:
        return f"{alias} rolled back from v{old} to v{new}"
    return f"{alias} v{old} -> v{new}" if old else f"first {alias}"


def record_external(conn: Connection, model: str, alias: str, seen: str | None, *,
                    alert: bool = True) -> bool:
    """A move made outside Podium: a ledger row and (``alert``) a Slack alert keyed by the
    row, or nothing when the ledger already says ``seen``."""
    entry = ledger.note_external(conn, model=model, alias=alias, seen=seen)
    if entry is None:
        return False
    log.warning("%s: alias %s points at v%s, moved outside Podium", model, alias, seen)
    if not alert:
        return True
    outbox.emit(conn, key=f"ledger:{entry}:external", kind="message",
                payload={"what": "external", "model": model, "alias": alias, "seen": seen})
    return True


def check_champion(store: Store, registry: RegistryCalls, model: str,
                   alias: str) -> str | None:
    """The reconciler's look at one model: if the alias points elsewhere than the ledger's
    last applied move and no move of Podium's is in flight, record it as ``external``.
    Returns the version recorded, if any."""
    with store.read() as conn:  # the ledger first: a move settled after this read shows
        before = ledger.last_id(conn, model)  # up as a newer row below
    seen = registry.alias_version(model, alias)
    with store.tx() as conn:
        if ledger.open_intents(conn, model) or ledger.last_id(conn, model) != before:
            return None  # a move is in flight, or settled meanwhile: look next time
        if not ledger.entries(conn, model, alias=alias):
            return None  # Podium never moved this alias: nothing to disagree with
        if record_external(conn, model, alias, seen):
            return seen
    return None


def moved_away(conn: Connection, req: Request, seen: str | None) -> None:
    """The champion is no longer where the move expected it (moved by hand): a
    rollback is refused, a promotion compares again; never on a stale comparison."""
    if req.origin == ROLLBACK_ORIGIN:
        tell.transition(conn, req.id, expect=(states.PROMOTING,), to=states.REJECTED,
                        actor=req.decided_by or "worker",
                        reason=f"the champion moved to v{seen} outside Podium before the "
                               "rollback ran; nothing changed")
        return
    if tell.transition(conn, req.id, expect=(states.PROMOTING,), to=states.COMPARING,
                       actor="worker",
                       reason=f"champion moved to v{seen} outside Podium: comparing again"):
        reqs.clear_decided_by(conn, req.id)  # an approval covered the old comparison
