"""A destroyed child leaves nothing in the store, nor in a backup taken after, that says who it was,
who worked with it or what was asked about it (forensic review, "destroyed means unreadable").

Its row keeps the reference and the state "destroyed" only; the audit keeps its events (pseudonymous
ids, sealed terms). Found by the review: notices carrying the child's reference (who looked it up and
who its lead professional was, who asked to see a shielded record and why it was refused, who a
relayed message went to) stayed for good; the row said it had been shielded; and the row was dated
by the run that archived or destroyed it, which a daily run does on the 18th and 24th birthdays.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select, text

from bot.app import Signpost
from store.keys.backup import backup
from store.lifecycle.retention import DESTROYED_AT
from store.register.feeds import Feed, import_feeds
from store.tables.base import Base
from store.tables.delivery import Notice
from store.tables.register import Child
from tests.access_helpers import decide, fresh_say, load_access, request_access, search_as
from tests.factories import AMY, CHILDREN_HEADER, SHIELDED
from tests.store.lifecycle.lifecycle_data import TURNS_18, TURNS_24, load, retention_on

DENIAL = "please ask the health visitor first"
FORMATTED = {AMY: "999 000 0018", SHIELDED: "999 000 0050"}
# The same children with a corrected date of birth 26 years ago: ``--destroy-redated`` destroys them.
REDATED = Feed(
    "children.csv",
    f"{CHILDREN_HEADER}\n"
    f"{SHIELDED},Mia,Stone,,2000-06-30,F,S1 4ZZ,Southvale,true\n"
    f"{AMY},Amy,Jones,Amelia Jones;Amy Smith,2000-04-03,F,M1 2AB,Northshire,false\n",
)


async def rows_naming(app: Signpost, refs: list[str]) -> list[str]:
    """Every row of every table but the audit's and the children's own whose values name one of ``refs``."""
    kept = {"audit_events", "audit_subjects", "children"}
    needles = [*refs, *(FORMATTED[r] for r in refs), DENIAL]
    found = []
    async with app.ctx.db.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in kept:
                continue
            for row in (await session.execute(select(table))).all():
                if any(n in repr(tuple(row)) for n in needles):
                    found.append(f"{table.name}: {tuple(row)!r:.120}")
    return found


async def test_notices_naming_a_destroyed_child_go_with_it(signpost: Signpost, tmp_path: Path) -> None:
    """A lookup tells the lead professional, an access request to a shielded record is denied with a
    reason, a message is relayed to its lead professional: each notice carries the child's reference.
    Once the children are destroyed (``--destroy-redated``, through retention's ``destroy``), no row
    outside the audit names them, and a backup taken then holds neither reference nor the reason."""
    await load_access(signpost)
    assert (await search_as(signpost, "P002", AMY)).outcome.value == "answered"
    await request_access(signpost, "P001", SHIELDED, "section 47 enquiry")
    await decide(signpost, "DM02", "deny", 1, DENIAL)
    await fresh_say(signpost, "P001", f"message {SHIELDED} worried, please call 0161 496 0001")
    async with signpost.ctx.db.read() as session:
        named = dict(
            (await session.execute(select(Notice.kind, Notice.child_ref).where(Notice.child_ref.is_not(None)))).all()
        )
    assert named == {
        "lead_informed": int(AMY),
        "access_request": int(SHIELDED),
        "access_denied": int(SHIELDED),
        "relay_message": int(SHIELDED),
    }
    assert len(await rows_naming(signpost, [AMY, SHIELDED])) > 4  # the check finds what it looks for

    report = await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, [REDATED], signpost.ctx.clock.now(), destroy_redated=True
    )
    assert report.past_retention == 2
    assert await rows_naming(signpost, [AMY, SHIELDED]) == []
    after = tmp_path / "after.backup"
    await backup(signpost.ctx.db, after)
    files = [after]
    if signpost.ctx.db.dialect == "sqlite":  # the live database, its WAL and shared memory too
        live = Path(str(signpost.ctx.db.engine.url.database))
        files += [p for p in (live, Path(f"{live}-wal"), Path(f"{live}-shm")) if p.exists()]
    for taken in files:
        data = taken.read_bytes()
        assert [n for n in (*FORMATTED.values(), DENIAL) if n.encode() in data] == [], taken.name


async def test_a_destroyed_or_archived_childs_row_does_not_date_its_birthday(signpost: Signpost) -> None:
    """A daily run archives a child on its 18th birthday and destroys it on its 24th: the row is not
    dated by that run (its date of birth in clear, with its reference, in every backup); a destroyed
    row keeps no shielded flag either."""
    await load(signpost)
    await retention_on(signpost, date(2026, 11, 2))
    async with signpost.ctx.db.read() as session:
        imported = (await session.execute(select(Child.updated_at).where(Child.ref == int(TURNS_18)))).scalar_one()
    report = await retention_on(signpost, date(2026, 11, 3))  # TURNS_18 turns 18, TURNS_24 turns 24
    assert (report.archived, report.destroyed) == (1, 1)
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [REDATED], signpost.ctx.clock.now(), destroy_redated=True)
    async with signpost.ctx.db.read() as session:
        rows = {
            ref: (state, shielded, updated_at)
            for ref, state, shielded, updated_at in (
                await session.execute(
                    select(Child.ref, Child.state, Child.shielded, Child.updated_at).where(
                        Child.ref.in_([int(TURNS_18), int(TURNS_24), int(SHIELDED)])
                    )
                )
            ).all()
        }
    assert rows[int(TURNS_18)] == ("archived", False, imported)
    assert rows[int(TURNS_24)] == ("destroyed", False, DESTROYED_AT)
    assert rows[int(SHIELDED)] == ("destroyed", False, DESTROYED_AT)  # it was shielded


# Tables whose rows keep a destroyed child's reference by design (its row marked "destroyed", the audit).
KEEP_THE_REFERENCE = {"children", "audit_events", "audit_subjects"}


async def statistics_naming(app: Signpost, ref: str) -> list[str]:
    """The planner's statistics that still hold ``ref`` outside the tables that keep it: PostgreSQL's
    ``pg_stats`` (readable by any role that may read the table) samples each column's values, and
    SQLite's ``sqlite_stat4`` would, were it ever made (Signpost runs no ANALYZE there)."""
    async with app.ctx.db.read() as session:
        if app.ctx.db.dialect == "sqlite":
            made = (await session.execute(text("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat4'"))).all()
            if not made:
                return []
            rows = await session.execute(text("SELECT tbl, sample FROM sqlite_stat4"))
            return [str(tbl) for tbl, sample in rows if ref.encode() in bytes(sample)]
        rows = await session.execute(
            text(
                "SELECT tablename, attname FROM pg_stats WHERE schemaname = current_schema()"
                " AND (coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '')) LIKE :ref"
            ),
            {"ref": f"%{ref}%"},
        )
        return [f"{table}.{column}" for table, column in rows if table not in KEEP_THE_REFERENCE]


async def test_a_destroyed_childs_reference_is_gone_from_the_planners_statistics(signpost: Signpost) -> None:
    """The import analyses the register (PostgreSQL's planner statistics); after retention destroyed a
    child and vacuumed, `SELECT * FROM pg_stats` still listed its reference among involvements',
    child keys' and index rows' sampled values (and its involvements' service texts): a query, no
    raw file, showed who had been held and worked with. Compaction analyses what it vacuumed."""
    await load(signpost)
    await retention_on(signpost, date(2026, 11, 2))
    if signpost.ctx.db.dialect == "postgresql":  # what the import (and autovacuum) leave: the check finds it
        assert await statistics_naming(signpost, TURNS_24) != []
    report = await retention_on(signpost, date(2026, 11, 3))
    assert report.destroyed == 1
    assert await statistics_naming(signpost, TURNS_24) == []
