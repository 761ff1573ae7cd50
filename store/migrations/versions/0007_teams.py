"""Teams: each person's 1:1 conversation reference, for private answers and proactive notices.

Revision ID: 0007_teams
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_teams"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams_conversations",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "user_id", name="pk_teams_conversations"),
    )


def downgrade() -> None:
    op.drop_table("teams_conversations")
