"""Children per name (blind-indexed), for term-frequency match weights.

Revision ID: 0008_name_counts
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_name_counts"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "name_counts",
        sa.Column("term", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("children", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name="pk_name_counts"),
        sqlite_with_rowid=False,
    )
    # Term 0 marks the counts as complete. Only a store with no children yet can start counting;
    # an older store scores with the average name weights until its counts are rebuilt
    # (store.register.name_counts.rebuild), since partial counts would overstate rare names.
    op.execute("INSERT INTO name_counts (term, children) SELECT 0, 1 WHERE NOT EXISTS (SELECT 1 FROM children)")


def downgrade() -> None:
    op.drop_table("name_counts")
