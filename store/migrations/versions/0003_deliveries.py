"""Processed delivery and click ids (idempotent retries and double clicks).

Revision ID: 0003_deliveries
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_deliveries"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_seen_at", "deliveries", ["seen_at"])


def downgrade() -> None:
    op.drop_table("deliveries")
