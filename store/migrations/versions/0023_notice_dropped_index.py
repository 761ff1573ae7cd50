"""An index on when a notice was dropped, so that retention prunes closed notices through indexes
(delivered ones through ``ix_notices_pending``, whose first column is ``delivered_at``).

Revision ID: 0023_notice_dropped_index
Revises: 0019_notice_dropped (the column; so 0019 is no longer a head of its own)
"""

from alembic import op

revision = "0023_notice_dropped_index"
down_revision = "0019_notice_dropped"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notices_dropped_at", "notices", ["dropped_at"])


def downgrade() -> None:
    op.drop_index("ix_notices_dropped_at", "notices")
