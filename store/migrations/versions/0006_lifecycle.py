"""Data lifecycle: retention progress, decommissioning schedules, child keys by KEK id.

Revision ID: 0006_lifecycle
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_lifecycle"
down_revision = "0001_core"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retention_state",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_retention_state"),
    )
    op.create_table(
        "decommissions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("live", sa.String(8), nullable=True),
        sa.Column("switch_off", sa.Date(), nullable=False),
        sa.Column("destroy_by", sa.Date(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("scheduled_at", TS, nullable=False),
        sa.Column("scheduled_by", sa.String(64), nullable=False),
        sa.Column("cancelled_at", TS, nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("steps_done", sa.String(200), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("certificate", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_decommissions"),
        sa.UniqueConstraint("live", name="uq_decommissions_live"),
    )
    op.create_index("ix_child_keys_kek_id", "child_keys", ["kek_id"])


def downgrade() -> None:
    op.drop_index("ix_child_keys_kek_id", table_name="child_keys")
    op.drop_table("decommissions")
    op.drop_table("retention_state")
