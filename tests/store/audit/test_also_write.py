"""What a command also writes with its audit event (``store.audit.log.write_also``, issue 15):
every notice of an audit batch stored in one statement, each write told which of its own were
new, and a dedupe key two writes share counted new for the first only, as if one after the other."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from handlers.vocabulary import Action, Notice, Origin
from store.audit.log import AuditRecord, origin_event, write_also
from store.db import Database
from store.delivery.notices import NoticeStore, pending
from store.keys.crypto import KeyRing
from store.tables.people import Practitioner
from store.tables.register import LocalAuthority
from tests.statements import statements_sent

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@dataclass(frozen=True)
class Told:
    notices: Sequence[tuple[Notice, datetime]]
    name: str

    def events(self, new: Collection[str]) -> Sequence[AuditRecord]:
        detail = f"{self.name}: {','.join(sorted(new))}"
        return [origin_event(Origin.SCHEDULER, Action.LEAD_PROFESSIONAL_INFORMED, WHEN, detail=detail)] if new else []


def told(name: str, *keys: str) -> Told:
    return Told([(Notice("P001", "lead_informed", f"told {key}", dedupe_key=key), WHEN) for key in keys], name)


async def _people(db: Database) -> None:
    async with db.write() as session:
        session.add(LocalAuthority(name="Northshire", first_seen=WHEN))
        await session.flush()
        session.add(
            Practitioner(id="P001", given_name="Ann", family_name="Lee", role="Nurse", organisation="NHS",
                         local_authority="Northshire", phone="0", email="a@example.org", roles="practitioner",
                         status="active", updated_at=WHEN)
        )  # fmt: skip


async def test_a_batchs_notices_are_one_statement_and_each_write_hears_of_its_own(db: Database, keys: KeyRing) -> None:
    await _people(db)
    async with db.write() as session:
        await NoticeStore().enqueue(session, [told("earlier", "k0").notices[0][0]], WHEN)  # told already
    with statements_sent(db) as sent:
        async with db.write() as session:
            events = await write_also(
                session, NoticeStore(), [told("a", "k1", "k0"), None, told("b", "k2"), told("c", "k1"), told("d", "k0")]
            )
    inserts = [statement.sql for statement in sent if statement.sql.lstrip().upper().startswith("INSERT INTO NOTICES")]
    assert len(inserts) == 1, inserts
    assert [[e.detail for e in found] for found in events] == [["a: k1"], [], ["b: k2"], [], []]
    async with db.read() as session:
        stored = sorted(n.dedupe_key or "" for _, n in await pending(session, keys, WHEN))
    assert stored == ["k0", "k1", "k2"]


async def test_nothing_to_write_is_no_statement(db: Database) -> None:
    async with db.write() as session:
        assert await write_also(session, NoticeStore(), [None, None]) == [(), ()]
