"""evidence bundles: where each judged request's bundle is (requests) and which bundle a
move of an alias was decided on (ledger)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("bundle_uri", sa.Text(), nullable=True))
        batch.add_column(sa.Column("bundle_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("bundle_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("bundle_sha256")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("bundle_sha256")
        batch.drop_column("bundle_uri")
