"""An index on a relayed message's child and when it was sent, so that ``relays`` finds the
relay traffic of the children an authority has now (joined through the register, a child who
moved counted where it is) through indexes, not a scan of every relay.

Revision ID: 0029_relay_child_index
Revises: 0028_ref_withheld (relay_messages as it stands; so 0028 is no longer a head of its own)
"""

from alembic import op

revision = "0029_relay_child_index"
down_revision = "0028_ref_withheld"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_relay_messages_child_created_at", "relay_messages", ["child_ref", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_relay_messages_child_created_at", "relay_messages")
