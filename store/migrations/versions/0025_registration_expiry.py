"""An index on registrations by state and when they were opened, so that the expiry job finds the
pending ones past their lifetime (``handlers.access.policy``) without reading every registration.
Nothing is filled in: a registration's lifetime runs from ``created_at``, which every row has, so
one left waiting for months before this release is closed by the job's first run after it.

Revision ID: 0025_registration_expiry
Revises: 0004_access (the table; so 0004 is no longer a head of its own)
"""

from alembic import op

revision = "0025_registration_expiry"
down_revision = "0004_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_registration_requests_state_created_at", "registration_requests", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_registration_requests_state_created_at", "registration_requests")
