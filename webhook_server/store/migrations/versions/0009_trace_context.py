"""jobs.trace_context and outbox.trace_context: the W3C trace context of the span that
queued a job or a notification, so the worker's spans and the sends join the trace of the
webhook (or command) that asked for them, across processes

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "outbox"):
        op.add_column(table, sa.Column("trace_context", sa.String(length=512), nullable=True))


def downgrade() -> None:
    for table in ("jobs", "outbox"):
        with op.batch_alter_table(table) as batch:  # SQLite drops a column by copying
            batch.drop_column("trace_context")
