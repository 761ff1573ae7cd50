"""``holders``: the one answer to "who holds role R for authority A" that every notice uses."""

from __future__ import annotations

from collections.abc import Collection

from bot.app import Signpost
from handlers.vocabulary import Role
from store.people import practitioners
from store.people.practitioners import Holders, holders
from store.register.feeds import Feed, import_feeds
from store.tables.people import Practitioner
from tests.factories import PRACTITIONERS_HEADER, load_standard

# Northshire gets a second duty manager (listed before DM01 in the feed, after it by id) and a
# second admin; Eastmoor gets only a practitioner, so it has no duty manager at all.
_NORTHSHIRE_DM = "Duty manager,Northshire Children's Services,Northshire"
EXTRA = f"""{PRACTITIONERS_HEADER}
DM09,Kit,Vale,{_NORTHSHIRE_DM},0161 496 0109,kit.vale@northshire.example,practitioner;duty_manager
AD02,Rae,Fox,Service admin,Signpost Operations,Southvale,0113 496 0202,rae.fox@signpost.example,admin;duty_manager
E001,Ola,Dean,Teacher,Moor School,Eastmoor,01632 960001,ola.dean@moor.example,practitioner
"""


async def _load(app: Signpost) -> None:
    await load_standard(app)
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("practitioners.csv", EXTRA)], app.ctx.clock.now())


async def _holders(
    app: Signpost,
    role: Role,
    authority: str | None = None,
    *,
    fallback_to_admins: bool = True,
    excluding: Collection[str] = (),
) -> Holders:
    async with app.ctx.db.read() as session:
        return await holders(session, role, authority, fallback_to_admins=fallback_to_admins, excluding=excluding)


async def test_duty_managers_of_an_authority_are_its_active_holders_in_id_order(signpost: Signpost) -> None:
    """Only the authority's duty managers, sorted by id whatever the feed order; admins are everywhere."""
    await _load(signpost)
    assert await _holders(signpost, Role.DUTY_MANAGER, "Northshire") == Holders(("DM01", "DM09"), Role.DUTY_MANAGER)
    assert await _holders(signpost, Role.DUTY_MANAGER, "Southvale") == Holders(("AD02",), Role.DUTY_MANAGER)
    assert await _holders(signpost, Role.ADMIN) == Holders(("AD01", "AD02"), Role.ADMIN)


async def test_roles_match_exactly_never_as_a_substring(signpost: Signpost) -> None:
    """A role name inside another word (or a LIKE wildcard lookalike) is not the role."""
    await _load(signpost)
    now = signpost.ctx.clock.now()
    lookalikes = {"X001": "practitioner;former_duty_manager", "X002": "sysadmin", "X003": "dutyXmanager"}
    async with signpost.ctx.db.write() as session:
        for pid, roles in lookalikes.items():
            session.add(
                Practitioner(
                    id=pid,
                    given_name="Test",
                    family_name="Person",
                    role="Tester",
                    organisation="Test Org",
                    local_authority="Northshire",
                    phone="",
                    email="",
                    roles=roles,
                    status="active",
                    updated_at=now,
                )
            )
    assert (await _holders(signpost, Role.DUTY_MANAGER, "Northshire")).ids == ("DM01", "DM09")
    assert (await _holders(signpost, Role.ADMIN)).ids == ("AD01", "AD02")


async def test_inactive_practitioners_are_never_holders(signpost: Signpost) -> None:
    """A duty manager or admin who is no longer active is not told anything."""
    await _load(signpost)
    async with signpost.ctx.db.write() as session:
        await practitioners.set_status(session, "DM01", "inactive")
        await practitioners.set_status(session, "AD01", "inactive")
    assert (await _holders(signpost, Role.DUTY_MANAGER, "Northshire")).ids == ("DM09",)
    assert (await _holders(signpost, Role.ADMIN)).ids == ("AD02",)


async def test_an_authority_without_a_duty_manager_falls_back_to_every_admin(signpost: Signpost) -> None:
    """Eastmoor has no duty manager: its notices go to every active admin, and the answer says so."""
    await _load(signpost)
    assert await _holders(signpost, Role.DUTY_MANAGER, "Eastmoor") == Holders(("AD01", "AD02"), Role.ADMIN)
    no_fallback = await _holders(signpost, Role.DUTY_MANAGER, "Eastmoor", fallback_to_admins=False)
    assert no_fallback == Holders((), None) and not no_fallback


async def test_the_person_concerned_is_excluded_before_the_fallback(signpost: Signpost) -> None:
    """A sole duty manager about themself is not told; the admins are (never the person either)."""
    await _load(signpost)
    assert await _holders(signpost, Role.DUTY_MANAGER, "Southvale", excluding=("AD02",)) == Holders(
        ("AD01",), Role.ADMIN
    )
    assert (await _holders(signpost, Role.DUTY_MANAGER, "Northshire", excluding=["DM09"])).ids == ("DM01",)


async def test_nobody_is_an_answer_when_no_admin_is_active(signpost: Signpost) -> None:
    """With no duty manager and no active admin the answer is empty and names no role."""
    await _load(signpost)
    async with signpost.ctx.db.write() as session:
        for pid in ("AD01", "AD02"):
            await practitioners.set_status(session, pid, "inactive")
    assert await _holders(signpost, Role.DUTY_MANAGER, "Eastmoor") == Holders((), None)
