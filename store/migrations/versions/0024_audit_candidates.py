"""Possible matches filed by tag (``audit_candidates``), so that a subject access report or an export
about one child finds the searches that had it as a possible match through an index, not a scan of
every ambiguous search's detail; filled in from the events already written. Append-only, as the
audit is (the triggers and the function of 0005_audit_chain).

Revision ID: 0024_audit_candidates
Revises: 0005_audit_chain
"""

import sqlalchemy as sa
from alembic import op

from store.audit import candidates

revision = "0024_audit_candidates"
down_revision = "0005_audit_chain"
branch_labels = None
depends_on = None

TABLE = "audit_candidates"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("tag", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("tag", "seq", name="pk_audit_candidates"),
        sqlite_with_rowid=False,
    )
    candidates.backfill(op.get_bind())
    if op.get_bind().dialect.name == "postgresql":
        name = f"{TABLE}_append_only"
        op.execute(
            f"CREATE TRIGGER {name} BEFORE UPDATE OR DELETE OR TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION signpost_audit_append_only()"
        )
        op.execute(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER {name}")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, 'the Signpost audit is append-only: {verb} on {TABLE} refused'); "
                "END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{verb}")
    op.drop_table(TABLE)
