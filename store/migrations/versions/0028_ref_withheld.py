"""Whether the requester of an access request (and the holder of its grant, and the sender of a
relayed message) found the shielded record by name and date of birth, and so was never shown its
reference: what they are told afterwards names the record without it. Existing rows are false:
before this release every such button carried the reference, which its holder has seen already.

Revision ID: 0028_ref_withheld
Revises: 0018_relay (relay_messages; access_requests and access_grants are 0004_access's)
"""

import sqlalchemy as sa
from alembic import op

revision = "0028_ref_withheld"
down_revision = "0018_relay"
branch_labels = None
depends_on = "0004_access"

TABLES = ("access_requests", "access_grants", "relay_messages")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("ref_withheld", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("ref_withheld")
