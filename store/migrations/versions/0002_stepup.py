"""Step-up: encrypted TOTP credentials, one-time enrolment tokens, commands parked for a code.

Revision ID: 0002_stepup
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_stepup"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "totp_credentials",
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kek_id", sa.String(16), nullable=False),
        sa.Column("seed", sa.LargeBinary(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("stepped_up_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("confirmed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name="fk_totp_credentials_practitioner_id_practitioners",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practitioner_id", name="pk_totp_credentials"),
    )
    op.create_table(
        "enrolment_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name="fk_enrolment_tokens_practitioner_id_practitioners",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_enrolment_tokens"),
    )
    op.create_index("ix_enrolment_tokens_practitioner_id", "enrolment_tokens", ["practitioner_id"])
    op.create_table(
        "parked_commands",
        sa.Column("challenge_id", sa.String(64), nullable=False),
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("spec_name", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("kek_id", sa.String(16), nullable=True),
        sa.Column("text", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name="fk_parked_commands_practitioner_id_practitioners",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge_id", name="pk_parked_commands"),
    )
    op.create_index("ix_parked_commands_practitioner_id", "parked_commands", ["practitioner_id"])
    op.create_index("ix_parked_commands_expires_at", "parked_commands", ["expires_at"])


def downgrade() -> None:
    for table in ("parked_commands", "enrolment_tokens", "totp_credentials"):
        op.drop_table(table)
