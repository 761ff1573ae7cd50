"""Teams ids kept in lowercase: an AAD object id and a tenant id are GUIDs, which are not
case-sensitive, and the Teams front end now reads them in lowercase; one kept as sent in capitals
before this release would no longer be found. Linked accounts, registrations, remembered 1:1
chats and one-account notices are rewritten in lowercase (GUIDs only; any other id as it is). A
command waiting for its code under a GUID in capitals is dropped instead: its text is sealed to the
ids it was parked under (store/people/credentials._parked_aad), so rewritten it could never be
opened (the code raised, and `signpost keys rotate` failed while it stayed). It waits ten minutes
at most; the code is then answered "Code accepted … please send it again", as for any request gone.
A remembered chat kept in both spellings keeps the lowercase one (either reaches the person). A
linked account kept in both spellings, for two practitioners, is left as it is: which practitioner
the person is is for an operator (`signpost practitioner list`, `unlink`), and the
lowercase link is the one that answers. The audit is never rewritten.

Revision ID: 0027_teams_ids_lowercase
Revises: 0007_teams (its table). The other tables are rewritten where this store has them: a
branch that has not made one yet has no row in it to rewrite (and a dependency on those branches
would keep their revisions out of the store's heads).
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0027_teams_ids_lowercase"
down_revision = "0007_teams"
branch_labels = None
depends_on = None

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TEAMS = "teams"


def _canonical(given: str) -> str:
    return given.lower() if GUID.fullmatch(given) else given


def _rekey(table: str, teams_only: bool, twin: str) -> None:
    """Every row of ``table`` whose tenant or user id is a GUID with a capital in it, in lowercase;
    where the lowercase row exists already, ``twin`` says what becomes of this one ("drop" or "keep";
    "update": rewritten all the same; "forget": every such row is dropped, lowercase twin or not)."""
    bind = op.get_bind()
    only = " AND platform = :platform" if teams_only else ""
    found = bind.execute(
        sa.text(
            f"SELECT DISTINCT tenant, user_id FROM {table} "
            f"WHERE (tenant <> lower(tenant) OR user_id <> lower(user_id)){only}"
        ),
        {"platform": TEAMS},
    ).all()
    for tenant, user_id in found:
        key = {"tenant": tenant, "user_id": user_id, "platform": TEAMS}
        lower = {**key, "lower_tenant": _canonical(tenant), "lower_user": _canonical(user_id)}
        if (lower["lower_tenant"], lower["lower_user"]) == (tenant, user_id):
            continue  # not a GUID: kept as it was sent
        if twin == "forget":
            bind.execute(sa.text(f"DELETE FROM {table} WHERE tenant = :tenant AND user_id = :user_id{only}"), key)
            continue
        if twin != "update":
            exists = bind.execute(
                sa.text(f"SELECT 1 FROM {table} WHERE tenant = :lower_tenant AND user_id = :lower_user{only}"), lower
            ).first()
            if exists is not None:
                if twin == "drop":
                    bind.execute(
                        sa.text(f"DELETE FROM {table} WHERE tenant = :tenant AND user_id = :user_id{only}"), key
                    )
                continue
        bind.execute(
            sa.text(
                f"UPDATE {table} SET tenant = :lower_tenant, user_id = :lower_user "
                f"WHERE tenant = :tenant AND user_id = :user_id{only}"
            ),
            lower,
        )


def _notice_accounts() -> None:
    """A notice for one Teams account ("teams:TENANT:USER") names it in lowercase; an account of
    any other shape (never written so, but not this revision's to judge) is left as it is."""
    bind = op.get_bind()
    found = bind.execute(sa.text("SELECT id, account FROM notices WHERE account LIKE 'teams:%'")).all()
    for notice_id, account in found:
        parts = account.split(":", 2)
        if len(parts) != 3:
            continue
        _, tenant, user_id = parts
        canonical = f"{TEAMS}:{_canonical(tenant)}:{_canonical(user_id)}"
        if canonical != account:
            bind.execute(
                sa.text("UPDATE notices SET account = :account WHERE id = :id"), {"account": canonical, "id": notice_id}
            )


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    _rekey("teams_conversations", teams_only=False, twin="drop")
    _rekey("chat_identities", teams_only=True, twin="keep")
    if "registration_requests" in tables:
        _rekey("registration_requests", teams_only=True, twin="update")
    if "parked_commands" in tables:
        _rekey("parked_commands", teams_only=True, twin="forget")
    if "notices" in tables and "account" in {column["name"] for column in inspector.get_columns("notices")}:
        _notice_accounts()


def downgrade() -> None:
    """Nothing to undo: the lowercase spelling names the same people to any Signpost."""
