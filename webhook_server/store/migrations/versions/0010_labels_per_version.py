"""labels per version: an outcome is stored once per version that predicted it (the unique
key (model, customer_id, outcome) becomes (model, version, customer_id, outcome)), so a shadow
version's prediction gets its own outcome row; inference_batches.role says whether a batch was
the champion's (written out) or a shadow's. Existing labels stay as they are: each already
judges one version's prediction; existing batches are the champion's.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("labels") as batch:  # SQLite changes a key by copying
        batch.drop_constraint("uq_labels_model_customer_id_outcome", type_="unique")
        batch.create_unique_constraint(
            "uq_labels_model_version_customer_id_outcome",
            ["model", "version", "customer_id", "outcome"])
    with op.batch_alter_table("inference_batches") as batch:
        batch.add_column(sa.Column("role", sa.String(length=16), nullable=False,
                                   server_default="champion"))


def downgrade() -> None:
    """Back to one label per outcome: of each outcome's labels, the champion's (the oldest
    row, which the join before 0010 would have stored) is kept."""
    with op.batch_alter_table("inference_batches") as batch:
        batch.drop_column("role")
    op.execute(
        "DELETE FROM labels WHERE id NOT IN (SELECT min(id) FROM labels "
        "GROUP BY model, customer_id, outcome)")
    with op.batch_alter_table("labels") as batch:
        batch.drop_constraint("uq_labels_model_version_customer_id_outcome", type_="unique")
        batch.create_unique_constraint("uq_labels_model_customer_id_outcome",
                                       ["model", "customer_id", "outcome"])
