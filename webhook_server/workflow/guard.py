"""Protected aliases: the champion (and staging) alias moves only through Podium's gate.

Whoever may write the registry may set an alias in the MLflow UI (MLflow has no rule for
who may set one). Podium notices such a move from the alias webhook (intake queues a
``revert`` job) and from the reconciler (``look``), and does what the model's
``aliases.protect`` says:

- ``revert`` (the default): the move is recorded (ledger ``external``), then undone like
  any move: an intent (ledger ``reverted``, state ``intent``) before the alias is set back
  to where the ledger says it belongs, the files of that version checked against the digest
  they were promoted with, the alias read back, the intent settled; an audit row and one
  alert. A job under the model lock, fenced, resumed from its intent after a crash.
- ``alert``: the move is recorded and alerted once, and stays;
- ``off``: nothing.

A move of Podium's own (an open intent of a promotion or rollback) is never reverted: the
job waits until it settles, then finds the alias where the ledger says.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from podium_policy.policy import Policy
from webhook_server import contract
from webhook_server.jobs.queue import Job, JobQueue
from webhook_server.store import Store, audit, ledger, outbox
from webhook_server.workflow import moves
from webhook_server.workflow.deps import Deps
from webhook_server.workflow.errors import Deferred
from webhook_server.workflow.fenced import FencedRegistry

log = logging.getLogger(__name__)
ACTOR = "podium:guard"
KIND = "revert"


def managed(policy: Policy, model: str) -> tuple[str, ...]:
    aliases = policy.for_model(model).aliases
    return (aliases.champion, aliases.staging)


def enqueue(queue: JobQueue, conn: Connection, model: str, alias: str, why: str) -> bool:
    """Queue a look at ``alias`` of ``model`` (under the model lock)."""
    return queue.enqueue(conn, kind=KIND, key=f"{KIND}:{model}:{alias}:{why}"[:255],
                         payload={"model": model, "alias": alias},
                         lock_key=contract.model_lock(model))


def look(deps: Deps, model: str) -> dict[str, str | None]:
    """The reconciler's look at one model: alias -> where it points now, for each alias
    found away from the ledger (queued to be reverted, or recorded as external)."""
    found: dict[str, str | None] = {}
    for alias in managed(deps.policy, model):
        protect = deps.policy_for(model).aliases.protect
        if protect == "off":
            continue
        if protect == "alert":
            seen = moves.check_champion(deps.store, deps.registry, model, alias)
            if seen is not None:
                found[alias] = seen
            continue
        with deps.store.read() as conn:
            home = ledger.belongs(conn, model, alias)
            busy = bool(ledger.open_intents(conn, model))
            last = ledger.last_id(conn, model)
        if home is None or busy:
            continue
        seen = deps.registry.alias_version(model, alias)
        if seen != home["to_version"]:
            with deps.store.tx() as conn:
                enqueue(deps.queue, conn, model, alias, f"l{last}:{seen}")
            found[alias] = seen
    return found


def handle(deps: Deps, registry: FencedRegistry, job: Job) -> None:
    """The ``revert`` job: put ``alias`` back where the ledger says (``aliases.protect``),
    resuming an unsettled revert first."""
    model, alias = job.payload["model"], job.payload["alias"]
    protect = deps.policy_for(model).aliases.protect
    if alias not in managed(deps.policy, model) or protect == "off":
        return
    if protect == "alert":
        moves.check_champion(deps.store, registry, model, alias)
        return
    with deps.store.read() as conn:
        intents = ledger.open_intents(conn, model)
    mine = [i for i in intents if i["kind"] == ledger.REVERTED and i["alias"] == alias]
    if len(mine) < len(intents):  # a move of Podium's own is in flight: never undo it
        raise Deferred(f"model {model} has an unfinished move; looking at {alias} after it")
    intent = mine[0] if mine else _begin(deps.store, registry, model, alias)
    if intent is not None:
        _finish(deps.store, registry, intent)


def _begin(store: Store, registry: FencedRegistry, model: str, alias: str) -> dict | None:
    """Record the outside move and the intent to undo it (None: nothing to undo)."""
    seen = registry.alias_version(model, alias)
    with store.tx() as conn:
        if ledger.open_intents(conn, model):
            raise Deferred(f"model {model} has an unfinished move")
        home = ledger.belongs(conn, model, alias)
        if home is None or seen == home["to_version"]:
            return None  # Podium never moved it, or it is where it belongs
        moves.record_external(conn, model, alias, seen, alert=False)
        entry = ledger.record(conn, model=model, alias=alias, from_version=seen,
                              to_version=home["to_version"], kind=ledger.REVERTED,
                              actor=ACTOR, state=ledger.INTENT)
        return ledger.entry(conn, entry)


def _finish(store: Store, registry: FencedRegistry, intent: dict) -> None:
    """Perform the recorded revert (again, after a crash) and settle it."""
    model, alias = intent["model"], intent["alias"]
    moved_to, home = intent["from_version"], intent["to_version"]
    now = registry.alias_version(model, alias)
    if now not in (moved_to, home):  # moved again meanwhile: start over from what is seen
        with store.tx() as conn:
            ledger.settle(conn, intent["id"], ledger.ABANDONED)
        raise Deferred(f"{model}: alias {alias} moved again (to v{now}) during the revert")
    if now != home:
        with store.read() as conn:
            promoted = ledger.sha256_of(conn, model, home)
        files = registry.model_sha256(model, home)
        if promoted is not None and files != promoted:
            _refuse(store, intent, promoted, files)
            return
        registry.set_alias(model, alias, home)
        if registry.alias_version(model, alias) != home:
            raise RuntimeError(f"{model}: alias {alias} did not read back as v{home}")
    with store.tx() as conn:
        ledger.settle(conn, intent["id"], ledger.APPLIED)
        audit.record(conn, actor=ACTOR, action="revert", subject=f"model:{model}",
                     detail={"alias": alias, "moved_to": moved_to, "back_to": home,
                             "ledger": intent["id"]})
        outbox.emit(conn, key=f"ledger:{intent['id']}:reverted", kind="message",
                    payload={"what": "reverted", "model": model, "alias": alias,
                             "moved_to": moved_to, "home": home})
    log.warning("%s: alias %s moved outside Podium to v%s; reverted to v%s", model, alias,
                moved_to, home)


def _refuse(store: Store, intent: dict, promoted: str, files: str) -> None:
    """The version the alias belongs to no longer has the files it was promoted with:
    reverting would serve files nothing judged. Nothing moves; people are told."""
    model, alias, home = intent["model"], intent["alias"], intent["to_version"]
    with store.tx() as conn:
        ledger.settle(conn, intent["id"], ledger.ABANDONED)
        outbox.emit(conn, key=f"revert-refused:{model}:{alias}:{files}"[:255],
                    kind="message",
                    payload={"what": "revert_refused", "model": model, "alias": alias,
                             "moved_to": intent["from_version"], "home": home,
                             "promoted": promoted, "files": files})


def check_files(deps: Deps, model: str) -> str | None:
    """The reconciler's look at the champion's files: when they no longer have the digest
    they were promoted with (a run's owner may overwrite its artifacts), alert once per new
    digest. Returns the new digest, if changed."""
    alias = deps.policy_for(model).aliases.champion
    with deps.store.read() as conn:
        champion = ledger.current(conn, model, alias)
        promoted = ledger.sha256_of(conn, model, champion) if champion else None
    if promoted is None:
        return None
    files = deps.registry.model_sha256(model, champion)
    if files == promoted:
        return None
    key = f"files:{model}:{champion}:{files}"[:255]
    with deps.store.tx() as conn:
        if outbox.exists(conn, key):
            return files  # alerted already
        outbox.emit(conn, key=key, kind="message",
                    payload={"what": "files_changed", "model": model, "version": champion,
                             "promoted": promoted, "files": files})
        audit.record(conn, actor=ACTOR, action="files-changed", subject=f"model:{model}",
                     detail={"version": champion, "promoted": promoted, "now": files})
    log.error("%s: champion v%s files changed after promotion", model, champion)
    return files
