"""The child a notice names (a lookup, an access request, a grant, a relayed message), so that
destroying the child deletes it; filled in for the notices already stored, from their dedupe keys.

Revision ID: 0022_notice_child
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_notice_child"
down_revision = "0001_core"
branch_labels = None
depends_on = None

# The dedupe keys of notices naming a child (store.delivery.notices.children_named): a lookup's
# ``lead:<day>:<ref>:<32 hex>`` names it itself; ``access:<id>:…``, ``grant:<id>:…`` and
# ``relay:<id>:…`` name the row that does.
FAMILIES = {"access": "access_requests", "grant": "access_grants", "relay": "relay_messages"}


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("child_ref", sa.BigInteger(), nullable=True))
    op.create_index("ix_notices_child_ref", "notices", ["child_ref"])
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    # "lead:" + a 10-character day + ":" is 16 characters; ":" + 32 hex digits end the key.
    op.execute(
        "UPDATE notices SET child_ref = CAST(substr(dedupe_key, 17, length(dedupe_key) - 49) AS BIGINT) "
        "WHERE dedupe_key LIKE 'lead:%' AND length(dedupe_key) > 49"
    )
    for family, table in FAMILIES.items():
        if not sa.inspect(bind).has_table(table):
            continue  # a new store: its branch creates the table later, and there is no notice yet
        start = len(family) + 2
        rest = f"substr(dedupe_key, {start}) || ':'"
        row_id = f"substr({rest}, 1, instr({rest}, ':') - 1)" if sqlite else "split_part(dedupe_key, ':', 2)"
        op.execute(
            f"UPDATE notices SET child_ref = (SELECT t.child_ref FROM {table} AS t "
            f"WHERE CAST(t.id AS TEXT) = {row_id}) WHERE dedupe_key LIKE '{family}:%'"
        )


def downgrade() -> None:
    op.drop_index("ix_notices_child_ref", "notices")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("child_ref")
