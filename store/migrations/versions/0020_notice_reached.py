"""A notice every linked account must see: the platforms that took it so far, so a retry goes to the rest.

Revision ID: 0020_notice_reached
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_notice_reached"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("reached", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("reached")
