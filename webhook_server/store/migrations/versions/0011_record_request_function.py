"""podium_record_request (PostgreSQL only): the intake's commonest delivery, a new request
for a version with none open, stored by one call: the delivery, the request, its first
history line, its first step in the outbox and its job (with the NOTIFY that wakes the
workers). Called alone in autocommit, the statement, its commit and its answer are one
network round trip (``store/one_call.py``). SQLite needs none: it is in the process.

Each statement inside a PL/pgSQL function reads with a snapshot of its own, so the open
requests are read after the version's lock is taken and see what the lock's previous
holder committed (one statement with CTEs would share one snapshot taken before it). When
the version has an open request, or the delivery is already stored, it writes nothing and
returns no row: the caller then takes the general path, in Python.

Keys, payloads and the open states come from the caller (``{id}`` in a key or payload
stands for the new request's id), so they stay defined once, in the code.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SIGNATURE = (
    "p_source text, p_delivery_id text, p_event text, p_body text, p_at timestamptz, "
    "p_lock text, p_open text[], p_model text, p_version text, p_target text, "
    "p_raw_target text, p_origin text, p_state text, p_requested_by text, p_comment text, "
    "p_actor text, p_step_key text, p_step_payload text, p_trace text, p_job_key text, "
    "p_job_kind text, p_job_payload text, p_job_lock text, p_max_attempts integer, "
    "p_channel text")
TYPES = ", ".join(part.split()[-1] for part in SIGNATURE.split(", "))

FUNCTION = f"""
CREATE OR REPLACE FUNCTION podium_record_request({SIGNATURE})
RETURNS TABLE (new_delivery integer, new_request integer)
LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    v_delivery integer;
    v_request integer;
    v_job integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));
    IF EXISTS (SELECT 1 FROM requests r WHERE r.model = p_model AND r.version = p_version
               AND r.state = ANY (p_open)) THEN
        RETURN;
    END IF;
    INSERT INTO deliveries (source, delivery_id, event, status, detail, body, received_at,
                            duplicates)
    VALUES (p_source, p_delivery_id, p_event, 'accepted', NULL, p_body, p_at, 0)
    ON CONFLICT (source, delivery_id) DO NOTHING
    RETURNING id INTO v_delivery;
    IF v_delivery IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO requests (model, version, target, raw_target, origin, state, reason,
                          delivery_pk, requested_by, comment, created_at, updated_at)
    VALUES (p_model, p_version, p_target, p_raw_target, p_origin, p_state, NULL, v_delivery,
            p_requested_by, p_comment, p_at, p_at)
    RETURNING id INTO v_request;
    INSERT INTO request_events (request_id, at, from_state, to_state, actor, note)
    VALUES (v_request, p_at, NULL, p_state, p_actor, NULL);
    INSERT INTO outbox (key, channel, kind, request_id, payload, state, attempts, run_after,
                        created_at, trace_context)
    VALUES (replace(p_step_key, '{{id}}', v_request::text), 'slack', 'step', v_request,
            p_step_payload, 'pending', 0, p_at, p_at, p_trace)
    ON CONFLICT (key) DO NOTHING;
    INSERT INTO jobs (key, kind, payload, state, lock_key, attempts, max_attempts, run_after,
                      created_at, updated_at, trace_context)
    VALUES (replace(p_job_key, '{{id}}', v_request::text), p_job_kind,
            replace(p_job_payload, '{{id}}', v_request::text), 'queued', p_job_lock, 0,
            p_max_attempts, clock_timestamp(), clock_timestamp(), clock_timestamp(), p_trace)
    ON CONFLICT (key) DO NOTHING
    RETURNING id INTO v_job;
    IF v_job IS NOT NULL THEN
        PERFORM pg_notify(p_channel, current_schema());
    END IF;
    new_delivery := v_delivery;
    new_request := v_request;
    RETURN NEXT;
END
$body$
"""  # noqa: S608 (the signature is the constant above, not input)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS podium_record_request({TYPES})")
