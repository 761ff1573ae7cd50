"""Audit you can trust: hash chain, chain head, signed checkpoints, misuse alerts; append-only triggers.

Events already in the log are chained in sequence order, so an existing store becomes verifiable.
The audit tables refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL) from then on; on PostgreSQL the
triggers are ENABLE ALWAYS, so ``session_replication_role = replica`` does not switch them off.

Revision ID: 0005_audit_chain
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

from store.audit import chain as audit_chain
from store.tables.audit import AuditChainEntry, AuditChainHead, AuditEvent

revision = "0005_audit_chain"
down_revision = "0001_core"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)

APPEND_ONLY = ("audit_events", "audit_subjects", "audit_chain", "audit_checkpoints")

PG_FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION signpost_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the Signpost audit is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION signpost_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' OR NEW.id <> OLD.id OR NEW.size < OLD.size OR NEW.last_seq < OLD.last_seq THEN
            RAISE EXCEPTION 'the Signpost audit chain head only moves forward: % on % refused',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$
    """,
)


def _postgres_triggers() -> None:
    for sql in PG_FUNCTIONS:
        op.execute(sql)
    for table in APPEND_ONLY:
        name = f"{table}_append_only"
        op.execute(
            f"CREATE TRIGGER {name} BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION signpost_audit_append_only()"
        )
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")
    op.execute(
        "CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE OR DELETE ON audit_chain_head "
        "FOR EACH ROW EXECUTE FUNCTION signpost_audit_head_forward()"
    )
    op.execute(
        "CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION signpost_audit_append_only()"
    )
    for name in ("audit_chain_head_forward", "audit_chain_head_no_truncate"):
        op.execute(f"ALTER TABLE audit_chain_head ENABLE ALWAYS TRIGGER {name}")


def _sqlite_triggers() -> None:
    for table in APPEND_ONLY:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the Signpost audit is append-only: {verb} on {table} refused'); "
                "END"
            )
    op.execute(
        "CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE ON audit_chain_head "
        "WHEN NEW.id <> OLD.id OR NEW.size < OLD.size OR NEW.last_seq < OLD.last_seq "
        "BEGIN SELECT RAISE(ABORT, 'the Signpost audit chain head only moves forward'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head "
        "BEGIN SELECT RAISE(ABORT, 'the Signpost audit chain head cannot be deleted'); END"
    )


def _chain_existing_events() -> None:
    """Chain the events written before this revision, in sequence order."""
    bind = op.get_bind()
    events = AuditEvent.__table__  # typed columns: times come back as datetimes on SQLite too
    columns = [events.c[name] for name in audit_chain.CANONICAL_FIELDS]
    rows = bind.execute(sa.select(*columns).order_by(events.c.seq)).mappings()
    size, prev_seq, head = 0, 0, audit_chain.EMPTY_HEAD
    entries = []
    for row in rows:
        leaf = audit_chain.leaf_hash(row)
        head = audit_chain.link(head, leaf)
        entries.append({"seq": row["seq"], "prev_seq": prev_seq, "leaf_hash": leaf, "head_hash": head})
        size, prev_seq = size + 1, row["seq"]
    if entries:
        op.bulk_insert(AuditChainEntry.__table__, entries)  # type: ignore[arg-type]
    op.bulk_insert(
        AuditChainHead.__table__,  # type: ignore[arg-type]
        [{"id": audit_chain.HEAD_ID, "size": size, "last_seq": prev_seq, "head_hash": head}],
    )


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("prev_seq", sa.BigInteger(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_chain"),
    )
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain_head"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
    )
    op.create_index("ix_audit_checkpoints_size", "audit_checkpoints", ["size"])
    op.create_table(
        "misuse_alerts",
        sa.Column("dedupe_key", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("dedupe_key", name="pk_misuse_alerts"),
    )
    op.create_index("ix_misuse_alerts_actor_id", "misuse_alerts", ["actor_id"])
    _chain_existing_events()
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_chain_head")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head")
        op.execute("DROP FUNCTION IF EXISTS signpost_audit_append_only()")
        op.execute("DROP FUNCTION IF EXISTS signpost_audit_head_forward()")
    else:
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_forward")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_delete")
    for table in ("misuse_alerts", "audit_checkpoints", "audit_chain_head", "audit_chain"):
        op.drop_table(table)
