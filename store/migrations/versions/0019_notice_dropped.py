"""Notices not sent on purpose (the recipient is no longer active): when, beside the reason in last_error.

Revision ID: 0019_notice_dropped
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_notice_dropped"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("dropped_at")
