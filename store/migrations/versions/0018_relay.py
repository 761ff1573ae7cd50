"""Blind relay messages about shielded children (issue 18).

Revision ID: 0018_relay
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_relay"
down_revision = "0001_core"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "relay_messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("child_ref", sa.BigInteger(), nullable=False),
        sa.Column("local_authority", sa.String(64), nullable=False),
        sa.Column("sender_id", sa.String(64), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("recipient_role", sa.String(16), nullable=False),
        sa.Column("text", sa.LargeBinary(), nullable=False),
        sa.Column("reply", sa.LargeBinary(), nullable=True),
        sa.Column("replied_by", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("replied_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["child_ref"], ["children.ref"], name="fk_relay_messages_child_ref_children", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["practitioners.id"], name="fk_relay_messages_sender_id_practitioners", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_relay_messages"),
    )
    op.create_index(
        "ix_relay_messages_sender_child", "relay_messages", ["sender_id", "child_ref", "created_at"], unique=False
    )
    op.create_index(
        "ix_relay_messages_la_created_at", "relay_messages", ["local_authority", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_relay_messages_la_created_at", table_name="relay_messages")
    op.drop_index("ix_relay_messages_sender_child", table_name="relay_messages")
    op.drop_table("relay_messages")
