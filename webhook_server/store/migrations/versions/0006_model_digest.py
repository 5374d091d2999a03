"""model digests and requesters: the files judged (requests) and promoted (ledger); who the
registry says asked (requests.requesters)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("model_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("requesters", sa.Text(), nullable=True))
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("model_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("model_sha256")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("requesters")
        batch.drop_column("model_sha256")
