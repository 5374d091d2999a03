"""Tables of Podium's store (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# Every verified delivery, whatever it meant. UNIQUE(source, delivery_id) is the
# idempotency key: a repeated delivery bumps `duplicates` and changes nothing else.
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(32), nullable=False),
    Column("delivery_id", String(255), nullable=False),
    Column("event", String(100), nullable=False),
    # accepted | ignored | test | invalid
    Column("status", String(16), nullable=False),
    Column("detail", Text),
    Column("body", Text, nullable=False),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "delivery_id"),
)

# Transition requests and their current state (history in request_events).
requests = Table(
    "requests", metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(255), nullable=False),
    Column("version", String(32), nullable=False),
    Column("target", String(16)),  # NULL when the asked-for target is invalid
    Column("raw_target", String(255), nullable=False),
    Column("origin", String(16), nullable=False),  # tag | alias | databricks | api
    Column("state", String(24), nullable=False),
    Column("reason", Text),
    Column("delivery_pk", Integer, ForeignKey("deliveries.id"), index=True),
    Column("requested_by", String(255)),
    Column("comment", Text),
    Column("decided_by", String(255)),
    Column("checks", String(64)),  # "21/22 passed", for messages
    Column("comparison", Text),  # the comparison's one-line summary
    Column("compared_with", String(32)),  # the champion version of that comparison
    Column("evidence", Text),  # JSON: check results and comparison, kept for resumes/report
    Column("model_sha256", String(64)),  # the digest of the model files that were judged
    # JSON list: every identity the registry names for a request made there (tag, alias);
    # NULL when Podium authenticated the requester (requested_by)
    Column("requesters", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # the evidence bundle the decision was computed from: where it is, and its digest
    Column("bundle_uri", Text),
    Column("bundle_sha256", String(64)),
    Index(None, "model", "version"),
    Index(None, "model", "state"),
)

request_events = Table(
    "request_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("requests.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("from_state", String(24)),
    Column("to_state", String(24), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("note", Text),
)

# Leased job queue. `key` makes enqueueing idempotent; the partial unique index on
# lock_key lets at most one job per lock (one decision per registered model) run at once.
jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(12), nullable=False),  # queued | running | done | dead
    Column("lock_key", String(255)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", UTCDateTime, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # W3C trace context (JSON) of the span that queued the job: the worker's spans join it
    Column("trace_context", String(512)),
    Index(None, "state", "run_after"),
    Index("uq_jobs_running_lock", "lock_key", unique=True,
          sqlite_where=text("state = 'running'"), postgresql_where=text("state = 'running'")),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("detail", Text),
)

# Monotonic counters that must survive restarts and be shared by every worker process
# (e.g. rejected signatures by source and reason), exported on /metrics.
counters = Table(
    "counters", metadata,
    Column("name", String(64), primary_key=True),
    Column("labels", String(255), primary_key=True),
    Column("value", Integer, nullable=False),
)

# Every move of an alias Podium manages (champion, staging), newest last. A row is written
# as an ``intent`` in the transaction that records the request as ``promoting``, before the
# alias moves; it becomes ``applied`` with the request's final state, or ``abandoned`` when
# the move did not happen. ``external`` rows record moves made outside Podium.
ledger = Table(
    "ledger", metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(255), nullable=False, index=True),
    Column("alias", String(64), nullable=False),
    Column("from_version", String(32)),
    Column("to_version", String(32), nullable=False),
    Column("request_id", Integer, ForeignKey("requests.id")),
    Column("kind", String(16), nullable=False),  # promote | rollback | external
    Column("actor", String(255), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("state", String(12), nullable=False, server_default="applied"),
    Column("model_sha256", String(64)),  # the digest of the files the alias moved to
    Column("bundle_sha256", String(64)),  # the evidence bundle the move was decided on
)

# Notifications (Slack, GitLab), written in the transaction of the change that causes them
# and sent afterwards by one sender at a time. ``key`` makes each one unique; a row whose
# ``attempted_at`` is set may already have been delivered, so the sender looks before
# sending it again.
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),  # slack | gitlab
    Column("kind", String(24), nullable=False),  # step | message | ephemeral | mr_note | ...
    Column("request_id", Integer, ForeignKey("requests.id")),
    Column("payload", Text, nullable=False),
    Column("state", String(12), nullable=False),  # pending | sent | dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("run_after", UTCDateTime, nullable=False),
    Column("attempted_at", UTCDateTime),
    Column("last_error", Text),
    Column("result", Text),  # where it went (Slack ts, note id)
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("trace_context", String(512)),  # of the span that wrote the row (tracing)
    Index(None, "state", "id"),
)

# The Slack parent message of each request (updated in place; steps reply in its thread).
slack_threads = Table(
    "slack_threads", metadata,
    Column("request_id", Integer, ForeignKey("requests.id"), primary_key=True),
    Column("channel", String(64), nullable=False),
    Column("ts", String(32), nullable=False),
)

# Named leases: exactly one process holds e.g. the outbox sender at a time.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Monitoring (webhook_server/monitoring): one summary row per batch `podium score` logged (the
# predictions themselves are Parquet files, training/inference_log.py), and the outcomes
# joined to the prediction they judge: one label per logged prediction and per version that
# predicted it, so loading the same outcomes again inserts nothing.
inference_batches = Table(
    "inference_batches", metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", String(64), nullable=False, unique=True),
    Column("model", String(255), nullable=False),
    Column("version", String(32), nullable=False),
    Column("run_id", String(64)),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("rows", Integer, nullable=False),  # rows scored (and logged)
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("mean_score", Float),  # the predicted churn rate
    Column("flagged", Integer, nullable=False),  # rows scored at or above threshold
    Column("threshold", Float, nullable=False),
    Column("deciles", Text),  # JSON: min, p10 ... p90, max
    Column("histogram", Text),  # JSON: counts in 10 equal-width score bins
    Column("source", Text),  # the input file
    Column("log_path", Text),  # the batch's Parquet file
    # champion: its scores were the output; shadow: scored beside it, only logged
    Column("role", String(16), nullable=False, server_default="champion"),
    Index(None, "model", "scored_at"),
)

labels = Table(
    "labels", metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(255), nullable=False),
    Column("version", String(32), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("churn", Integer, nullable=False),  # the outcome: 1 churned, 0 stayed
    Column("score", Float, nullable=False),  # the prediction it judges
    Column("scored_at", UTCDateTime, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
    # which outcome: its observed_at as given, "" for an undated one (one per customer)
    Column("outcome", String(40), nullable=False),
    UniqueConstraint("batch_id", "customer_id"),
    # one row per outcome and version (migration 0010): the champion's prediction and each
    # shadow's are judged by the same outcome, each on its own row
    UniqueConstraint("model", "version", "customer_id", "outcome"),
    Index(None, "model", "version", "scored_at"),
)

# --- web page sessions (issue 25) ---------------------------------------------------------
# A token login on /ui/: the cookie carries a random session id, this table its SHA-256
# (never the id), so logout, expiry and `podium sessions revoke` end it on every node.
ui_sessions = Table(
    "ui_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("name", String(200), nullable=False),  # the API token's name: acts as ui:<name>
    Column("token_digest", String(64), nullable=False),  # HMAC of the token (key: the UI's)
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index(None, "name"),
    Index(None, "expires_at"),
)
