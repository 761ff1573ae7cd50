"""Access control: registration requests, access requests, grants, notice claims, scheduled tasks.

Revision ID: 0004_access
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_access"
down_revision = "0001_core"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _practitioner_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["practitioners.id"], name=f"fk_{table}_{column}_practitioners", ondelete="CASCADE"
    )


def _child_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["child_ref"], ["children.ref"], name=f"fk_{table}_child_ref_children", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "registration_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("local_authority", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        _practitioner_fk("registration_requests", "practitioner_id"),
        sa.PrimaryKeyConstraint("id", name="pk_registration_requests"),
    )
    op.create_index("ix_registration_requests_practitioner_id", "registration_requests", ["practitioner_id"])
    op.create_index(
        "ix_registration_requests_identity",
        "registration_requests",
        ["platform", "tenant", "user_id", "state"],
    )
    op.create_table(
        "access_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("requester_id", sa.String(64), nullable=False),
        sa.Column("child_ref", sa.BigInteger(), nullable=False),
        sa.Column("local_authority", sa.String(64), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=True),
        sa.Column("reason_key", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalate_at", TS, nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        _practitioner_fk("access_requests", "requester_id"),
        _child_fk("access_requests"),
        sa.PrimaryKeyConstraint("id", name="pk_access_requests"),
    )
    op.create_index("ix_access_requests_la_state", "access_requests", ["local_authority", "state"])
    op.create_index("ix_access_requests_state_escalate_at", "access_requests", ["state", "escalate_at"])
    op.create_index("ix_access_requests_state_expires_at", "access_requests", ["state", "expires_at"])
    op.create_index("ix_access_requests_requester_child", "access_requests", ["requester_id", "child_ref"])
    op.create_table(
        "access_grants",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("child_ref", sa.BigInteger(), nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("granted_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name="fk_access_grants_request_id_access_requests",
            ondelete="CASCADE",
        ),
        _practitioner_fk("access_grants", "practitioner_id"),
        _child_fk("access_grants"),
        sa.PrimaryKeyConstraint("id", name="pk_access_grants"),
        sa.UniqueConstraint("request_id", name="uq_access_grants_request_id"),
    )
    op.create_index("ix_access_grants_holder", "access_grants", ["practitioner_id", "child_ref"])
    op.create_index("ix_access_grants_state_expires_at", "access_grants", ["state", "expires_at"])
    op.create_table(
        "notice_claims",
        sa.Column("notice_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.Column("claimed_until", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name="fk_notice_claims_notice_id_notices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("notice_id", name="pk_notice_claims"),
    )
    op.create_table(
        "scheduled_tasks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("next_run_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_scheduled_tasks"),
    )


def downgrade() -> None:
    for table in (
        "scheduled_tasks",
        "notice_claims",
        "access_grants",
        "access_requests",
        "registration_requests",
    ):
        op.drop_table(table)
