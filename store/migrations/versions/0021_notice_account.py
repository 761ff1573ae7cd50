"""A notice addressed to one chat account, linked or not: an account that lost its link is told so.

Revision ID: 0021_notice_account
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_notice_account"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("account", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("account")
