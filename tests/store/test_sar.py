"""Subject access reports: every event that touched one child — when, organisation, role, purpose, outcome."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from bot.app import Signpost
from store.audit import AuditRecord, append
from store.sar import NO_PURPOSE, subject_access
from tests.factories import AMY, BEN, NO_INVOLVEMENTS, SHIELDED, load_standard, say


async def report(app: Signpost, ref: str, *, with_names: bool = False):  # type: ignore[no-untyped-def]
    return await subject_access(
        app.ctx.db, app.ctx.sealer, int(ref), app.ctx.clock.now(), with_names=with_names
    )


async def test_report_lists_everyone_who_reached_the_child_by_organisation_and_role(
    signpost: Signpost,
) -> None:
    await load_standard(signpost)
    await say(signpost, "P001", AMY)
    signpost.ctx.clock.advance(hours=2)
    await say(signpost, "P002", "Amy Jones 03/04/2014")
    await say(signpost, "P003", BEN)  # another child: not in Amy's report

    sar = await report(signpost, AMY)

    assert [(e.at, e.organisation, e.role, e.action, e.outcome, e.purpose) for e in sar.entries] == [
        (
            "2026-11-02T09:00:00+00:00",
            "Northshire Children's Services",
            "Social worker",
            "lookup",
            "answered",
            NO_PURPOSE,
        ),
        (
            "2026-11-02T11:00:00+00:00",
            "Northshire School Health",
            "School nurse",
            "search",
            "answered",
            NO_PURPOSE,
        ),
    ]
    text = sar.to_text()
    assert "999 000 0018" in text and "Social worker, Northshire Children's Services (Northshire)" in text
    assert "Sam" not in text and "Carter" not in text and "Priya" not in text  # no names unless asked
    assert all(e.practitioner is None for e in sar.entries)


async def test_names_only_when_asked(signpost: Signpost) -> None:
    await load_standard(signpost)
    await say(signpost, "P001", AMY)
    sar = await report(signpost, AMY, with_names=True)
    assert sar.entries[0].practitioner == "Sam Carter (P001)"
    assert "Sam Carter (P001) — Social worker" in sar.to_text()


async def test_ambiguous_search_that_touched_the_child_is_reported(signpost: Signpost) -> None:
    """The family sees that a search considered their child even though nothing was shown."""
    await load_standard(signpost)
    await say(signpost, "P001", "Lily Brown 20/01/2019")
    sar = await report(signpost, "9990000034")
    assert [(e.action, e.outcome) for e in sar.entries] == [("search", "ambiguous")]
    assert "nothing shown (more detail asked for)" in sar.to_text()


def request_event(at: datetime, outcome: str, sealed: bytes | None, key: str | None) -> AuditRecord:
    """An access request as the access-control command audits it (its terms: the purpose alone)."""
    return AuditRecord(
        at=at, actor_id="S001", platform="console", tenant="local", user_id="S001",
        actor_role="Health visitor", actor_org="Southvale NHS Trust", actor_la="Southvale",
        channel="button", action="request_access", outcome=outcome, subject_refs=(int(SHIELDED),),
        result_count=0, correlation_id=uuid.uuid4().hex, terms=sealed, terms_key=key,
    )  # fmt: skip


async def test_purpose_comes_from_the_practitioners_access_request(signpost: Signpost) -> None:
    """Shielded hit, request with a purpose, a repeat without one, the granted lookup: purpose carried."""
    await load_standard(signpost)
    await say(signpost, "S001", SHIELDED)
    signpost.ctx.clock.advance(minutes=3)
    at = signpost.ctx.clock.now()
    async with signpost.ctx.db.read() as session:
        sealed, key = await signpost.ctx.sealer.seal(
            session, "Joint home visit with police tomorrow", (int(SHIELDED),), at
        )
    async with signpost.ctx.db.write() as session:
        await append(session, [request_event(at, "done", sealed, key)])
    async with signpost.ctx.db.write() as session:  # "your request is already waiting": no purpose
        await append(session, [request_event(at + timedelta(minutes=1), "info", None, None)])
    signpost.ctx.clock.advance(minutes=30)
    await say(signpost, "S001", SHIELDED)

    sar = await report(signpost, SHIELDED)

    purpose = "Joint home visit with police tomorrow"
    assert [(e.action, e.purpose) for e in sar.entries] == [
        ("lookup", NO_PURPOSE),
        ("request_access", purpose),
        ("request_access", purpose),
        ("lookup", purpose),
    ]
    assert "requested access (purpose given)" in sar.to_text()


async def test_a_child_nobody_looked_up(signpost: Signpost) -> None:
    await load_standard(signpost)
    sar = await report(signpost, NO_INVOLVEMENTS)
    assert sar.entries == ()
    assert "No one has looked up this record." in sar.to_text()
    assert json.loads(sar.to_json())["entries"] == []


async def test_json_carries_the_same_entries(signpost: Signpost) -> None:
    await load_standard(signpost)
    await say(signpost, "P001", AMY)
    doc = json.loads((await report(signpost, AMY)).to_json())
    assert doc["child_ref"] == "999 000 0018" and doc["with_names"] is False
    assert [(e["organisation"], e["role"], e["outcome"]) for e in doc["entries"]] == [
        ("Northshire Children's Services", "Social worker", "answered")
    ]
