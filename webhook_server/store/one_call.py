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
SQL = ("SELECT new_delivery, new_request FROM podium_record_request("  # noqa: S608
       + ", ".join(f"%({name})s" for name in _PARAMS) + ")")  # names, not input


def template(payload: dict[str, Any]) -> str:
    """``payload`` as the JSON text the general path stores, ``ID`` left to the database
    (as a number: ``{"request_id": {id}}``)."""
    return json.dumps(payload, sort_keys=True, default=str).replace(json.dumps(ID), ID)


def record_request(store: Store, *, source: str, delivery_id: str, event: str, body: str,
                   model: str, version: str, target: str, raw_target: str, origin: str,
                   requested_by: str | None, comment: str | None,
                   job: dict[str, Any]) -> tuple[int, int] | None:
    """(delivery id, request id) of the new request, queued with its job; None when the
    call wrote nothing (the version has an open request, or the delivery was stored
    before). ``job``: the job's kind, key, payload and lock key (``ID`` for the request
    id), its max attempts and the channel that wakes the workers (``SqlJobQueue``)."""
    rows = store.call_alone(SQL, {
        "p_source": source, "p_delivery_id": delivery_id, "p_event": event, "p_body": body,
        "p_at": utcnow(), "p_lock": contract.version_lock(model, version),
        "p_open": list(states.OPEN), "p_model": model, "p_version": version,
        "p_target": target, "p_raw_target": raw_target, "p_origin": origin,
        "p_state": states.QUEUED, "p_requested_by": requested_by,
        "p_comment": scrub.maybe(comment), "p_actor": ACTOR,
        "p_step_key": contract.request_created_note(ID),  # type: ignore[arg-type]
        "p_step_payload": template({"to": states.QUEUED, "actor": ACTOR, "reason": None}),
        "p_trace": tracing.carrier(), "p_job_key": job["key"], "p_job_kind": job["kind"],
        "p_job_payload": template(job["payload"]), "p_job_lock": job["lock_key"],
        "p_max_attempts": job["max_attempts"], "p_channel": job["channel"]})
    return (rows[0][0], rows[0][1]) if rows else None
