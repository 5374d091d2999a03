"""The alias ledger: every move of an alias Podium manages, newest last.

A move is written as an ``intent`` before the alias is touched (in the transaction that
records the request ``promoting``), then ``applied`` with the request's final state, or
``abandoned`` when it did not happen. So the ledger's last applied move of the champion
alias is what the alias says, and an intent says "a move may be half done: look".
"""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, update

from webhook_server.store.schema import ledger, utcnow

INTENT, APPLIED, ABANDONED = "intent", "applied", "abandoned"
PROMOTE, ROLLBACK, EXTERNAL, REVERTED = "promote", "rollback", "external", "reverted"


def record(conn: Connection, *, model: str, alias: str, from_version: str | None,
           to_version: str, kind: str, actor: str, request_id: int | None = None,
           state: str = APPLIED, model_sha256: str | None = None,
           bundle_sha256: str | None = None) -> int:
    return conn.execute(insert(ledger).values(
        model=model, alias=alias, from_version=from_version, to_version=to_version,
        kind=kind, actor=actor, request_id=request_id, at=utcnow(), state=state,
        model_sha256=model_sha256, bundle_sha256=bundle_sha256)).inserted_primary_key[0]


def set_sha256(conn: Connection, entry_id: int, digest: str | None) -> None:
    """The digest of the files the move's version had when the alias moved."""
    conn.execute(update(ledger).where(ledger.c.id == entry_id).values(model_sha256=digest))


def sha256_of(conn: Connection, model: str, version: str) -> str | None:
    """The digest of ``version``'s files when Podium last moved an alias to it (None when
    no move recorded one)."""
    return conn.execute(
        select(ledger.c.model_sha256).where(
            ledger.c.model == model, ledger.c.to_version == version,
            ledger.c.state == APPLIED, ledger.c.model_sha256.is_not(None))
        .order_by(ledger.c.id.desc()).limit(1)).scalar()


def belongs(conn: Connection, model: str, alias: str) -> dict | None:
    """The last applied move Podium made of ``alias`` (not one recorded as external):
    where the alias belongs."""
    for entry in reversed(entries(conn, model, alias=alias)):
        if entry["kind"] != EXTERNAL:
            return entry
    return None


def entry(conn: Connection, entry_id: int) -> dict | None:
    row = conn.execute(select(ledger).where(ledger.c.id == entry_id)).mappings().first()
    return dict(row) if row else None


def intent_for(conn: Connection, request_id: int) -> dict | None:
    """The request's move still to be done (at most one)."""
    row = conn.execute(select(ledger).where(ledger.c.request_id == request_id,
                                            ledger.c.state == INTENT)
                       .order_by(ledger.c.id.desc())).mappings().first()
    return dict(row) if row else None


def applied_for(conn: Connection, request_id: int) -> dict | None:
    row = conn.execute(select(ledger).where(ledger.c.request_id == request_id,
                                            ledger.c.state == APPLIED)
                       .order_by(ledger.c.id.desc())).mappings().first()
    return dict(row) if row else None


def settle(conn: Connection, entry_id: int, state: str) -> None:
    """An intent becomes ``applied`` or ``abandoned`` (never the other way)."""
    conn.execute(update(ledger).where(ledger.c.id == entry_id, ledger.c.state == INTENT)
                 .values(state=state, at=utcnow()))


def open_intents(conn: Connection, model: str) -> list[dict]:
    q = (select(ledger).where(ledger.c.model == model, ledger.c.state == INTENT)
         .order_by(ledger.c.id))
    return [dict(r) for r in conn.execute(q).mappings()]


def entries(conn: Connection, model: str, *, alias: str | None = None,
            include_unapplied: bool = False) -> list[dict]:
    """Applied moves (and, on request, intents and abandoned ones), oldest first."""
    q = select(ledger).where(ledger.c.model == model).order_by(ledger.c.id)
    if alias is not None:
        q = q.where(ledger.c.alias == alias)
    if not include_unapplied:
        q = q.where(ledger.c.state == APPLIED)
    return [dict(r) for r in conn.execute(q).mappings()]


def current(conn: Connection, model: str, alias: str) -> str | None:
    """Where the ledger says ``alias`` points now (its last applied move)."""
    moves = entries(conn, model, alias=alias)
    return moves[-1]["to_version"] if moves else None


def former_champions(conn: Connection, model: str, alias: str) -> list[str]:
    """Versions that served as champion in the ledger, oldest first, no repeats: those
    Podium made champion and those its moves replaced (the champion before Podium took
    over included). A version set by hand (``external``) and replaced by hand never counts:
    it never passed Podium's gates nor did Podium compare anything against it; nor does it
    when Podium put the champion back (``reverted``: the move replaced the hand-set one)."""
    seen: list[str] = []
    for e in entries(conn, model, alias=alias):
        if e["kind"] == EXTERNAL:
            continue
        for version in ((e["to_version"],) if e["kind"] == REVERTED
                        else (e["from_version"], e["to_version"])):
            if version is not None and version not in seen:
                seen.append(version)
    return seen


def rollback_target(conn: Connection, model: str, alias: str,
                    current_version: str | None) -> str | None:
    """The version the champion had before ``current_version`` last became champion.
    Podium putting ``current_version`` back after a hand move (``reverted``) is not where it
    became champion: the version set by hand is no former champion."""
    for entry in reversed(entries(conn, model, alias=alias)):
        if entry["kind"] == REVERTED:
            continue
        if entry["to_version"] == current_version and entry["from_version"]:
            return entry["from_version"]
    return None


def note_external(conn: Connection, *, model: str, alias: str, seen: str | None,
                  actor: str = "external") -> int | None:
    """Record that ``alias`` points at ``seen`` though the ledger says otherwise (moved in
    the MLflow UI, say). The new row's id; None when they already agree."""
    last = current(conn, model, alias)
    if last == seen or seen is None:
        return None
    return record(conn, model=model, alias=alias, from_version=last, to_version=seen,
                  kind=EXTERNAL, actor=actor)


def models(conn: Connection) -> list[str]:
    """Models whose aliases Podium has moved."""
    return list(conn.execute(select(ledger.c.model).distinct().order_by(ledger.c.model))
                .scalars())


def last_id(conn: Connection, model: str) -> int | None:
    """The newest ledger row of ``model`` in any state (to notice a move made meanwhile)."""
    return conn.execute(select(func.max(ledger.c.id)).where(ledger.c.model == model)).scalar()
