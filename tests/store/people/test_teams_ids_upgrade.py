"""`db upgrade` to 0027_teams_ids_lowercase: Teams GUIDs an earlier Signpost kept in capitals are
rewritten in lowercase, where the Teams front end now looks them up; nothing else changes. Real
SQLite and PostgreSQL stores, taken back to before the revision and upgraded again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import Connection, text

from bot.app import Signpost
from handlers.vocabulary import Platform, Principal
from store.db import Database, alembic_config
from store.keys import rotation
from store.people import credentials
from tests.factories import load_standard

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TWIN = "a3f2c9e1-4b7d-4e8a-9c1f-0d2e3b4a5c6f"  # kept in both spellings
ALONE = "c0ffee00-aaaa-4bbb-8ccc-ddddeeeeffff"  # kept in capitals only
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _before_lowercase_ids(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0027_teams_ids_lowercase-1")


async def _sql(db: Database, statement: str, **values: Any) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(signpost_write=True)
        result = await conn.execute(text(statement), values)
        rows = [tuple(row) for row in result] if result.returns_rows else []
        await conn.commit()
    return rows


async def _link(db: Database, platform: str, tenant: str, user: str, practitioner: str) -> None:
    await _sql(
        db,
        "INSERT INTO chat_identities (platform, tenant, user_id, practitioner_id, linked_at) "
        "VALUES (:platform, :tenant, :user, :practitioner, :now)",
        platform=platform,
        tenant=tenant,
        user=user,
        practitioner=practitioner,
        now=NOW,
    )


async def _chat(db: Database, tenant: str, user: str, reference: str) -> None:
    await _sql(
        db,
        "INSERT INTO teams_conversations (tenant, user_id, reference, updated_at) VALUES (:tenant, :user, :ref, :now)",
        tenant=tenant,
        user=user,
        ref=reference,
        now=NOW,
    )


async def _notice(db: Database, account: str) -> None:
    await _sql(
        db,
        "INSERT INTO notices (recipient_id, kind, body, created_at, not_before, attempts, account) "
        "VALUES ('P001', 'test', '{}', :now, :now, 0, :account)",
        now=NOW,
        account=account,
    )


async def test_teams_ids_kept_in_capitals_are_lowercase_after_the_upgrade(signpost: Signpost) -> None:
    """Linked accounts, registrations, remembered chats and one-account notices: a Teams GUID in
    lowercase; a chat kept in both spellings keeps the lowercase one; a link kept in both (two
    practitioners) is left for an operator; Slack ids and ids that are no GUID are as they were."""
    await load_standard(signpost)
    db = signpost.ctx.db
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(signpost_write=True)
        await conn.run_sync(_before_lowercase_ids)
        await conn.commit()
    up_tenant, up_alone, up_twin = TENANT.upper(), ALONE.upper(), TWIN.upper()
    await _link(db, "teams", up_tenant, up_alone, "P001")
    await _link(db, "teams", up_tenant, up_twin, "P002")
    await _link(db, "teams", TENANT, TWIN, "P003")
    await _link(db, "slack", "T0ABC", "U0ABC", "P001")
    await _chat(db, up_tenant, up_twin, "upper")
    await _chat(db, TENANT, TWIN, "lower")
    await _chat(db, up_tenant, up_alone, "alone")
    await _chat(db, "Contoso", "Not-A-Guid", "other")
    await _sql(
        db,
        "INSERT INTO registration_requests (practitioner_id, platform, tenant, user_id, local_authority, state, "
        "created_at) VALUES ('P003', 'teams', :tenant, :user, 'Northshire', 'pending', :now)",
        tenant=up_tenant,
        user=up_alone,
        now=NOW,
    )
    await _notice(db, f"teams:{up_tenant}:{up_alone}")
    await _notice(db, "slack:T0ABC:U0ABC")

    await db.migrate()

    linked = await _sql(db, "SELECT platform, tenant, user_id, practitioner_id FROM chat_identities")
    assert set(linked) == {
        ("teams", TENANT, ALONE, "P001"),
        ("teams", up_tenant, up_twin, "P002"),  # two practitioners for one person: an operator's call
        ("teams", TENANT, TWIN, "P003"),
        ("slack", "T0ABC", "U0ABC", "P001"),
    }
    chats = await _sql(db, "SELECT tenant, user_id, reference FROM teams_conversations")
    assert set(chats) == {(TENANT, TWIN, "lower"), (TENANT, ALONE, "alone"), ("Contoso", "Not-A-Guid", "other")}
    asked = await _sql(db, "SELECT tenant, user_id FROM registration_requests WHERE platform = 'teams'")
    assert asked == [(TENANT, ALONE)]
    accounts = await _sql(db, "SELECT account FROM notices WHERE account IS NOT NULL")
    assert sorted(accounts) == [("slack:T0ABC:U0ABC",), (f"teams:{TENANT}:{ALONE}",)]


async def _before_upgrade(db: Database) -> None:
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(signpost_write=True)
        await conn.run_sync(_before_lowercase_ids)
        await conn.commit()


async def test_a_command_waiting_under_capitals_is_forgotten_and_keys_still_rotate(signpost: Signpost) -> None:
    """A command waiting for its code is sealed to the ids it was parked under: rewritten in
    lowercase it could never be opened (the code raised, and `keys rotate` failed while it stayed).
    It is dropped instead, and the code is answered as for any request gone; one parked under
    lowercase ids, and one under an id that is no GUID, still run."""
    await load_standard(signpost)
    db, keys, now = signpost.ctx.db, signpost.ctx.keys, signpost.ctx.clock.now()
    await _before_upgrade(db)
    upper = Principal(Platform.TEAMS, TENANT.upper(), ALONE.upper())
    lower = Principal(Platform.TEAMS, TENANT, TWIN)
    other = Principal(Platform.TEAMS, "Contoso", "29:1AbCxyz")
    parked: dict[Principal, str] = {}
    for principal in (upper, lower, other):
        async with db.write() as session:
            parked[principal] = await credentials.park(
                session, keys, principal=principal, practitioner_id="P001", spec_name="search",
                channel="direct", text="Amy Jones 03/04/2014", now=now, ttl=timedelta(minutes=10),
            )  # fmt: skip

    await db.migrate()

    await rotation.rotate(db, keys, now.date())
    async with db.write() as session:
        gone = await credentials.claim(session, keys, parked[upper], Principal(Platform.TEAMS, TENANT, ALONE), now)
        kept = [await credentials.claim(session, keys, parked[p], p, now) for p in (lower, other)]
    assert gone is None
    assert [(p.text, p.expired) for p in kept if p is not None] == [("Amy Jones 03/04/2014", False)] * 2


async def test_a_notice_account_of_another_shape_is_left_as_it_is(signpost: Signpost) -> None:
    """A notice account that is not "teams:TENANT:USER" (an earlier Signpost's, or a hand's) did not
    stop the upgrade: it is kept as it was, and the well-formed ones beside it are rewritten."""
    await load_standard(signpost)
    db = signpost.ctx.db
    await _before_upgrade(db)
    await _notice(db, "teams:x")
    await _notice(db, f"teams:{TENANT.upper()}:{ALONE.upper()}")

    await db.migrate()

    accounts = await _sql(db, "SELECT account FROM notices WHERE account IS NOT NULL")
    assert sorted(accounts) == [(f"teams:{TENANT}:{ALONE}",), ("teams:x",)]
