"""Indexes on when an access request was opened and a grant made, by state, so that the expiry
jobs find those stamped by a clock ahead of the host's (set years on, then put right: ``store.skew``)
through an index range, as they find those past their end, and close them.

Revision ID: 0031_stamped_ahead_indexes
Revises: 0029_relay_child_index (the head 0028_ref_withheld's access tables hang from; 0004_access made them)
"""

from alembic import op

revision = "0031_stamped_ahead_indexes"
down_revision = "0029_relay_child_index"
branch_labels = None
depends_on = "0004_access"


def upgrade() -> None:
    op.create_index("ix_access_requests_state_created_at", "access_requests", ["state", "created_at"])
    op.create_index("ix_access_grants_state_granted_at", "access_grants", ["state", "granted_at"])


def downgrade() -> None:
    op.drop_index("ix_access_grants_state_granted_at", "access_grants")
    op.drop_index("ix_access_requests_state_created_at", "access_requests")
