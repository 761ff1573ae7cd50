"""A practitioner who leaves, as the admin records it at the terminal and as everyone else then sees
it: their commands refused, their signposts without their phone and email, a lagging feed that still
lists them not bringing them back, and a return that needs a new authenticator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from handlers.vocabulary import Platform, Principal
from store.db import Database
from store.keys.crypto import KeyRing
from store.people import access, credentials, practitioners
from store.tables.audit import AuditEvent
from store.tables.people import AccessRequest
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_main import enrol, write_feeds
from tests.factories import SHIELDED
from tests.spread import either_store

SAM_PHONE, SAM_EMAIL = "0161 496 0001", "sam.carter@northshire.example"  # P001, Amy's lead professional
PRIYA_PHONE = "0161 496 0002"  # P002, who searches
NOT_ACTIVE = "Your Signpost access is not active"
LEFT = "No longer in this post: contact the organisation"


async def search_as_priya(cli: Cli, code: str = "") -> str:
    """Priya's search for Amy (``code``: her first one, before her step-up is fresh)."""
    run = await cli.run("console", "--as", "P002", stdin=f"999 000 0018\n{code}\n" if code else "999 000 0018\n")
    assert run.code == 0, run.err
    assert "Signposts for 999 000 0018: 3 involvements." in run.out
    return run.out


async def details(db: Database, action: str) -> list[tuple[str, str]]:
    async with db.read() as session:
        found = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [(outcome, detail) for outcome, detail in found]


async def test_a_leaver_is_refused_and_shown_as_no_longer_in_post_until_they_return(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    feeds = write_feeds(tmp_path)
    assert (await cli.run("import", *feeds)).code == 0
    await asyncio.to_thread(enrol, cli, "P001")
    before = await search_as_priya(cli, await asyncio.to_thread(enrol, cli, "P002"))
    assert SAM_PHONE in before and SAM_EMAIL in before and LEFT not in before

    left = await cli.run("practitioner", "leave", " p001 ")
    assert left.code == 0, left.err
    assert left.out.strip() == (
        "P001 has left: their commands are refused, their signposts say they are no longer in post, "
        "and their authenticator is removed. To undo: signpost practitioner return P001"
    )
    async with db.write() as session:  # their Slack account stays linked: it is answered "not active"
        await practitioners.link_identity(session, Principal(Platform.SLACK, "T1", "U1"), "P001", datetime.now(UTC))
    listed = await cli.run("practitioner", "list")
    assert listed.out.splitlines() == ["P001\tNorthshire\tpractitioner\tslack\tleft"]
    refused = await cli.run("console", "--as", "P001", stdin="999 000 0018\n")
    assert NOT_ACTIVE in refused.out and "Signposts for" not in refused.out

    after = await search_as_priya(cli)
    assert "Sam Carter — Social worker, Northshire Children's Services  ★ lead professional" in after
    assert LEFT in after and SAM_PHONE not in after and SAM_EMAIL not in after
    assert PRIYA_PHONE in after  # the others' signposts are as they were

    # A feed that still lists them (feeds lag) changes nothing about their standing.
    reimported = await cli.run("import", *feeds)
    assert reimported.code == 0, reimported.err
    assert "practitioners: 6 rows read, 0 new or changed" in reimported.out
    assert NOT_ACTIVE in (await cli.run("console", "--as", "P001", stdin="999 000 0018\n")).out

    again = await cli.run("practitioner", "leave", "P001")
    assert (again.code, again.out.strip()) == (0, "P001 had already left: nothing changed.")

    back = await cli.run("practitioner", "return", "P001")
    assert back.code == 0, back.err
    assert back.out.strip() == (
        "P001 is active again. Before they see results, enrol an authenticator: signpost totp enrol P001"
    )
    returned = await cli.run("console", "--as", "P001", stdin="999 000 0018\n")
    assert NOT_ACTIVE not in returned.out and "enrol" in returned.out  # no authenticator until enrolled
    restored = await search_as_priya(cli)
    assert SAM_PHONE in restored and SAM_EMAIL in restored and LEFT not in restored
    assert (await cli.run("practitioner", "list")).out.splitlines() == ["P001\tNorthshire\tpractitioner\tslack"]
    same = await cli.run("practitioner", "return", "P001")
    assert (same.code, same.out.strip()) == (0, "P001 is active already: nothing changed.")

    assert await details(db, "practitioner_leave") == [
        ("done", "P001 left; authenticator removed"),
        ("done", "P001 had already left"),
    ]
    assert await details(db, "practitioner_return") == [
        ("done", "P001 active again"),
        ("done", "P001 was already active"),
    ]


@either_store  # a refusal in words: one store shows it (tests/spread.py)
async def test_leaving_someone_not_in_the_register_changes_nothing(cli: Cli, db: Database, tmp_path: Path) -> None:
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    for command in ("leave", "return"):
        run = await cli.run("practitioner", command, "NOPE")
        assert run.code != 0 and "no practitioner with that id in the register" in run.said
    assert [outcome for outcome, _ in await details(db, "practitioner_leave")] == ["refused"]
    assert [outcome for outcome, _ in await details(db, "practitioner_return")] == ["refused"]


async def test_a_leavers_access_to_a_shielded_record_ends_with_their_standing(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """Sam (P001) holds a grant for Mia's shielded record and has another request waiting. Leaving
    ends the grant and closes the request undecided, in the same transaction: back within the
    grant's days, Sam is told the record is shielded, not shown it, and an Approve changes nothing."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    now = datetime.now(UTC)
    async with db.write() as session:
        mia = access.NewRequest("P001", int(SHIELDED), "Southvale", None, None)
        granted = await access.open_request(session, mia, now, timedelta(hours=1), None)
        assert await access.decide_request(session, granted, access.APPROVED, "AD01", now)
        request = (await session.execute(select(AccessRequest).where(AccessRequest.id == granted))).scalar_one()
        await access.create_grant(session, request, "AD01", now, now + timedelta(days=7))
        waiting = await access.open_request(session, mia, now, timedelta(hours=1), None)
    code = await asyncio.to_thread(enrol, cli, "P001")
    shown = await cli.run("console", "--as", "P001", stdin=f"999 000 0050\n{code}\n")
    assert "Signposts for 999 000 0050" in shown.out  # the grant in force

    assert (await cli.run("practitioner", "leave", "P001")).code == 0
    assert (await cli.run("practitioner", "return", "P001")).code == 0
    code = await asyncio.to_thread(enrol, cli, "P001")
    back = await cli.run("console", "--as", "P001", stdin=f"999 000 0050\n{code}\n")
    assert "A record exists and is shielded" in back.out and "Signposts for" not in back.out
    async with db.write() as session:
        assert not await access.decide_request(session, waiting, access.APPROVED, "AD01", now)
    assert await details(db, "practitioner_leave") == [
        ("done", "P001 left; authenticator removed; 1 access request(s) closed undecided; 1 grant(s) ended")
    ]


async def test_a_leaver_is_given_no_authenticator_and_one_left_from_before_goes_on_their_return(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """`totp enrol` for someone who has left is refused, saying to record their return first: an
    authenticator issued while they were away was waiting for them, and worked, on their return (a
    hostile tester). One a store holds from before that rule is removed by their return, so a
    returner's authenticator is always a new one."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    assert (await cli.run("practitioner", "leave", "P001")).code == 0
    secret = tmp_path / "away.secret"
    refused = await cli.run("totp", "enrol", "P001", "--secret-file", str(secret))
    assert refused.code == 2 and "P001 has left" in refused.said and "practitioner return P001" in refused.said
    assert not secret.exists()
    assert await details(db, "totp_enrol") == [("refused", "for P001; practitioner not active")]
    async with db.write() as session:  # as a store from before this rule may hold
        await credentials.enrol(session, keys, "P001", b"0" * 20, datetime.now(UTC))
    assert (await cli.run("practitioner", "return", "P001")).code == 0
    async with db.read() as session:
        assert await credentials.get(session, "P001") is None
    assert await details(db, "practitioner_return") == [
        ("done", "P001 active again; an authenticator left from before was removed")
    ]
