"""The intake's commonest delivery in one round trip on PostgreSQL: a new request for a
version with none open (migration 0011's ``podium_record_request``).

The general path (``Intake._record``) writes the same rows with the same values through
``deliveries``, ``transition_requests``, ``outbox`` and the job queue, in a transaction of
its own: BEGIN, the statements in a pipeline, COMMIT. Here one statement does it, in
autocommit (``Store.call_alone``): the delivery, the request, its first history line, its
first step in the outbox and its job, whose NOTIFY wakes the workers at commit. When the
version has an open request or the delivery is already stored, the call writes nothing and
``record_request`` returns None: the caller then takes the general path, which decides
between joining, superseding and counting a duplicate.

Keys and payloads are built here from the same functions as on the general path, with
``ID`` standing for the request id the database assigns.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from webhook_server import contract
from webhook_server.core import scrub, tracing
from webhook_server.store import states
from webhook_server.store.db import Store
from webhook_server.store.schema import utcnow

ID = "{id}"  # the new request's id, in a key or a payload (a number in a payload)
ACTOR = "intake"
_PARAMS = ("p_source", "p_delivery_id", "p_event", "p_body", "p_at", "p_lock", "p_open",
           "p_model", "p_version", "p_target", "p_raw_target", "p_origin", "p_state",
           "p_requested_by", "p_comment", "p_actor", "p_step_key", "p_step_payload",
           "p_trace", "p_job_key", "p_job_kind", "p_job_payload", "p_job_lock",
           "p_max_attempts", "p_channel")
# the same for every delivery of a process: written into the statement's text
_CONSTANT = frozenset(("p_open", "p_state", "p_actor", "p_step_key", "p_step_payload",
                       "p_job_key", "p_job_kind", "p_job_payload", "p_max_attempts",
                       "p_channel"))
_VARYING = tuple(name for name in _PARAMS if name not in _CONSTANT)


@functools.cache
def _statement(constants: tuple[tuple[str, Any], ...]) -> str:
    """The call with ``constants`` as literals (quoted by psycopg) and a placeholder for
    each of ``_VARYING``: half the parameters to convert and send on every call, and one
    prepared statement for them all."""
    from psycopg import sql

    given = dict(constants)
    assert given.keys() == _CONSTANT, "every constant, and only those, written in"
    args = [sql.Literal(list(given[name]) if isinstance(given[name], tuple) else given[name])
            .as_string(None).replace("%", "%%") if name in given else "%s"
            for name in _PARAMS]
    # the literals are psycopg's quoting of the code's constants, never a delivery's text
    return f"SELECT new_delivery, new_request FROM podium_record_request({', '.join(args)})"  # noqa: S608


def template(payload: dict[str, Any]) -> str:
    """``payload`` as the JSON text the general path stores, ``ID`` left to the database
    (as a number: ``{"request_id": {id}}``)."""
    return json.dumps(payload, sort_keys=True, default=str).replace(json.dumps(ID), ID)


_STEP_PAYLOAD = template({"to": states.QUEUED, "actor": ACTOR, "reason": None})


def record_request(store: Store, *, source: str, delivery_id: str, event: str, body: str,
                   model: str, version: str, target: str, raw_target: str, origin: str,
                   requested_by: str | None, comment: str | None,
                   job: dict[str, Any]) -> tuple[int, int] | None:
    """(delivery id, request id) of the new request, queued with its job; None when the
    call wrote nothing (the version has an open request, or the delivery was stored
    before). ``job``: the job's kind, key, payload and lock key (``ID`` for the request
    id), its max attempts and the channel that wakes the workers (``SqlJobQueue``)."""
    constants = (
        ("p_open", states.OPEN), ("p_state", states.QUEUED), ("p_actor", ACTOR),
        ("p_step_key", contract.request_created_note(ID)),  # type: ignore[arg-type]
        ("p_step_payload", _STEP_PAYLOAD), ("p_job_key", job["key"]),
        ("p_job_kind", job["kind"]), ("p_job_payload", template(job["payload"])),
        ("p_max_attempts", job["max_attempts"]), ("p_channel", job["channel"]))
    varying = {
        "p_source": source, "p_delivery_id": delivery_id, "p_event": event, "p_body": body,
        "p_at": utcnow(), "p_lock": contract.version_lock(model, version), "p_model": model,
        "p_version": version, "p_target": target, "p_raw_target": raw_target,
        "p_origin": origin, "p_requested_by": requested_by,
        "p_comment": scrub.maybe(comment), "p_trace": tracing.carrier(),
        "p_job_lock": job["lock_key"]}
    rows = store.call_alone(_statement(constants), tuple(varying[n] for n in _VARYING))
    return (rows[0][0], rows[0][1]) if rows else None
