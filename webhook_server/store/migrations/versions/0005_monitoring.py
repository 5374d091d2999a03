"""monitoring: inference batch summaries, labels joined to predictions

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inference_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("mean_score", sa.Float(), nullable=True),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("deciles", sa.Text(), nullable=True),
        sa.Column("histogram", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_batches")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_inference_batches_batch_id")),
    )
    op.create_index(op.f("ix_inference_batches_model_scored_at"), "inference_batches",
                    ["model", "scored_at"], unique=False)
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("churn", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("batch_id", "customer_id",
                            name=op.f("uq_labels_batch_id_customer_id")),
        sa.UniqueConstraint("model", "customer_id", "outcome",
                            name=op.f("uq_labels_model_customer_id_outcome")),
    )
    op.create_index(op.f("ix_labels_model_version_scored_at"), "labels",
                    ["model", "version", "scored_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_labels_model_version_scored_at"), table_name="labels")
    op.drop_table("labels")
    op.drop_index(op.f("ix_inference_batches_model_scored_at"), table_name="inference_batches")
    op.drop_table("inference_batches")
