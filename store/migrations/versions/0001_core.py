"""Core tables: children with encrypted identity and blind index, practitioners, involvements, audit.

Revision ID: 0001_core
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "local_authorities",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_local_authorities"),
    )
    op.create_table(
        "children",
        sa.Column("ref", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("local_authority", sa.String(64), nullable=False),
        sa.Column("shielded", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("identity", sa.LargeBinary(), nullable=True),
        sa.Column("row_mac", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["local_authority"], ["local_authorities.name"], name="fk_children_local_authority_local_authorities"
        ),
        sa.PrimaryKeyConstraint("ref", name="pk_children"),
    )
    op.create_index("ix_children_local_authority", "children", ["local_authority"])
    op.create_table(
        "child_keys",
        sa.Column("child_ref", sa.BigInteger(), nullable=False),
        sa.Column("kek_id", sa.String(16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_ref"], ["children.ref"], name="fk_child_keys_child_ref_children", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("child_ref", name="pk_child_keys"),
    )
    op.create_table(
        "child_terms",
        sa.Column("term", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("child_ref", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("term", "child_ref", name="pk_child_terms"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "practitioners",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("given_name", sa.String(200), nullable=False),
        sa.Column("family_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(200), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("local_authority", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("roles", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["local_authority"],
            ["local_authorities.name"],
            name="fk_practitioners_local_authority_local_authorities",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_practitioners"),
    )
    op.create_index("ix_practitioners_local_authority", "practitioners", ["local_authority"])
    op.create_table(
        "chat_identities",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("linked_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name="fk_chat_identities_practitioner_id_practitioners",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("platform", "tenant", "user_id", name="pk_chat_identities"),
        sa.UniqueConstraint("practitioner_id", "platform", name="uq_chat_identities_practitioner_id_platform"),
    )
    op.create_table(
        "involvements",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("child_ref", sa.BigInteger(), nullable=False),
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("started", sa.Date(), nullable=False),
        sa.Column("ended", sa.Date(), nullable=True),
        sa.Column("lead_professional", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_ref"], ["children.ref"], name="fk_involvements_child_ref_children", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name="fk_involvements_practitioner_id_practitioners",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_involvements"),
        sa.UniqueConstraint(
            "child_ref",
            "practitioner_id",
            "service",
            "started",
            name="uq_involvements_child_ref_practitioner_id_service_started",
        ),
    )
    op.create_index("ix_involvements_practitioner_id", "involvements", ["practitioner_id"])
    op.create_table(
        "audit_events",
        sa.Column("seq", BigId, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(200), nullable=True),
        sa.Column("actor_org", sa.String(200), nullable=True),
        sa.Column("actor_la", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("subject_refs", sa.Text(), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("terms", sa.LargeBinary(), nullable=True),
        sa.Column("terms_key", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_correlation_id", "audit_events", ["correlation_id"])
    op.create_index("ix_audit_events_actor_id_at", "audit_events", ["actor_id", "at"])
    op.create_table(
        "audit_subjects",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("child_ref", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("seq", "child_ref", name="pk_audit_subjects"),
    )
    op.create_index("ix_audit_subjects_child_ref", "audit_subjects", ["child_ref"])
    op.create_table(
        "audit_term_keys",
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("kek_id", sa.String(16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("period", name="pk_audit_term_keys"),
    )
    op.create_table(
        "notices",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("recipient_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
        sa.UniqueConstraint("dedupe_key", name="uq_notices_dedupe_key"),
    )
    op.create_index("ix_notices_recipient_id", "notices", ["recipient_id"])
    op.create_index("ix_notices_pending", "notices", ["delivered_at", "not_before"])


def downgrade() -> None:
    for table in (
        "notices",
        "audit_term_keys",
        "audit_subjects",
        "audit_events",
        "involvements",
        "chat_identities",
        "practitioners",
        "child_terms",
        "child_keys",
        "children",
        "local_authorities",
        "meta",
    ):
        op.drop_table(table)
