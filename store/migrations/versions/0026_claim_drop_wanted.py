"""A drop's reason kept on the claim of a notice a worker is sending (``notice_claims.drop_wanted``),
so that a notice dropped mid-send is closed with it if the send fails, not put back in the queue.
Nothing is filled in: a claim lasts minutes.

Revision ID: 0026_claim_drop_wanted
Revises: 0004_access (the table; a branch of its own beside 0025_registration_expiry)
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_claim_drop_wanted"
down_revision = "0004_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notice_claims") as batch:
        batch.add_column(sa.Column("drop_wanted", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice_claims") as batch:
        batch.drop_column("drop_wanted")
