"""When a good step-up code was last typed in each chat account: a code covers the account it was
typed in (and a console code the accounts linked before it), not every account of its practitioner,
so that a second account taken over cannot ride a code typed in the first. Existing rows have none:
each chat account gives a code of its own after the upgrade, unless a console code covers it.

Revision ID: 0030_account_stepped_up
Revises: 0027_teams_ids_lowercase (chat_identities as it stands; so 0027 is no longer a head of its own)
"""

import sqlalchemy as sa
from alembic import op

revision = "0030_account_stepped_up"
down_revision = "0027_teams_ids_lowercase"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_identities") as batch:
        batch.add_column(sa.Column("stepped_up_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_identities") as batch:
        batch.drop_column("stepped_up_at")
