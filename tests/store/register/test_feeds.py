"""Feed import: validation of every kind of bad row, all-or-nothing, idempotent re-import."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Signpost
from store.register import children
from store.register.feeds import NOT_SHOWN, Feed, FeedRejected, ImportReport, import_feeds
from store.register.terms import Identity
from store.tables.audit import AuditEvent
from store.tables.people import Practitioner
from store.tables.register import Child, ChildTerm, Involvement, LocalAuthority
from tests import misaligned
from tests.factories import (
    AMY,
    BEN,
    CHILDREN,
    CHILDREN_HEADER,
    INVOLVEMENTS,
    INVOLVEMENTS_HEADER,
    PRACTITIONERS,
    PRACTITIONERS_HEADER,
    TWIN_A,
    TWIN_B,
    load_standard,
    standard_feeds,
)


async def counts(app: Signpost) -> dict[str, int]:
    async with app.ctx.db.read() as session:
        return {
            model.__tablename__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (Practitioner, Child, ChildTerm, Involvement)
        }


async def run(app: Signpost, *feeds: Feed) -> None:
    await import_feeds(app.ctx.db, app.ctx.keys, list(feeds), app.ctx.clock.now())


async def test_standard_feeds_import_every_row(signpost: Signpost) -> None:
    """A clean import reports rows read and written per kind, in any file order."""
    feeds = list(reversed(standard_feeds()))  # involvements first on the command line still works
    report = await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now())
    assert report.rows == {"practitioners": 6, "children": 6, "involvements": 5}
    assert report.changed == report.rows
    assert (await counts(signpost))["involvements"] == 5


async def test_reimporting_the_same_rows_changes_nothing(signpost: Signpost) -> None:
    """Upsert by natural keys: a second identical import writes nothing and keeps every row."""
    await load_standard(signpost)
    before = await counts(signpost)
    report = await load_standard(signpost)
    assert report.changed == {"practitioners": 0, "children": 0, "involvements": 0}
    assert await counts(signpost) == before


async def test_changed_rows_are_updated_in_place(signpost: Signpost) -> None:
    """A changed surname re-indexes the child: the new name finds it, the old one does not."""
    await load_standard(signpost)
    changed = CHILDREN.replace(f"{AMY},Amy,Jones,Amelia Jones;Amy Smith,", f"{AMY},Amy,Whitfield,,")
    await run(signpost, Feed("children.csv", changed))
    assert (await counts(signpost))["children"] == 6
    from tests.stepup_helpers import say_fresh

    assert (await say_fresh(signpost, "P001", "Amy Whitfield 03/04/2014")).child_ref == "999 000 0018"
    old = Identity("Amy", "Jones", ("Amelia Jones", "Amy Smith"), date(2014, 4, 3), "F", "M1 2AB")
    new = Identity("Amy", "Whitfield", (), date(2014, 4, 3), "F", "M1 2AB")
    gone = children.terms_for(signpost.ctx.keys, old) - children.terms_for(signpost.ctx.keys, new)
    async with signpost.ctx.db.read() as session:
        held = set((await session.execute(select(ChildTerm.term).where(ChildTerm.child_ref == int(AMY)))).scalars())
    assert gone and not (gone & held)
    assert held == children.terms_for(signpost.ctx.keys, new)


async def test_an_import_into_a_register_that_holds_children_indexes_old_and_new_alike(signpost: Signpost) -> None:
    """New children's blind terms are staged and merged into child_terms in index order at the end
    of the import (SQLite): merged into an index that already holds a register, every child, old
    and new, holds exactly its own terms and is found by search."""
    await load_standard(signpost)
    before = await counts(signpost)
    zara = Identity("Zara", "Quinn", ("Zee Quinn",), date(2017, 5, 6), "F", "M2 3EF")
    added = CHILDREN + "9990000107,Zara,Quinn,Zee Quinn,2017-05-06,F,M2 3EF,Northshire,false\n"
    now = signpost.ctx.clock.now()
    report = await import_feeds(signpost.ctx.db, signpost.ctx.keys, [Feed("children.csv", added)], now)
    assert report.changed == {"children": 1}
    zara_terms = children.terms_for(signpost.ctx.keys, zara)
    assert await counts(signpost) == {**before, "children": 7, "child_terms": before["child_terms"] + len(zara_terms)}
    from tests.stepup_helpers import say_fresh

    assert (await say_fresh(signpost, "P001", "Zara Quinn 06/05/2017")).child_ref == "999 000 0107"
    assert (await say_fresh(signpost, "P001", "Amy Jones 03/04/2014")).child_ref == "999 000 0018"
    amy = Identity("Amy", "Jones", ("Amelia Jones", "Amy Smith"), date(2014, 4, 3), "F", "M1 2AB")
    async with signpost.ctx.db.read() as session:
        for ref, identity in ((9990000107, zara), (int(AMY), amy)):
            held = set((await session.execute(select(ChildTerm.term).where(ChildTerm.child_ref == ref))).scalars())
            assert held == children.terms_for(signpost.ctx.keys, identity)


@pytest.mark.sqlite_only
async def test_staged_terms_are_merged_and_dropped_before_the_commit_and_roll_back_with_a_failure(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terms stage is a TEMP table of the importing connection (never in the store file): by
    the time the import commits it is merged and gone, and an import that fails leaves neither
    staged rows nor terms behind."""
    temp_tables: list[list[str]] = []
    staged: list[int] = []
    merge = children.merge_staged_terms

    async def counting_merge(session: AsyncSession) -> int:
        staged.append((await session.execute(sql("SELECT count(*) FROM import_terms"))).scalar_one())
        return await merge(session)

    monkeypatch.setattr(children, "merge_staged_terms", counting_merge)

    async def before_commit(session: AsyncSession, _report: object) -> None:
        names = await session.execute(sql("SELECT name FROM sqlite_temp_master WHERE type = 'table'"))
        temp_tables.append(list(names.scalars()))

    await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, standard_feeds(), signpost.ctx.clock.now(), before_commit=before_commit
    )
    assert temp_tables == [[]]
    assert staged == [(await counts(signpost))["child_terms"]] and staged[0] > 0  # every term went through the stage

    # One connection, seen before and after its rollback.
    async with signpost.ctx.db.engine.connect() as conn, AsyncSession(bind=conn) as session:
        await children.stage_terms(session)
        await children.copy_rows(session, children.TERMS_STAGE, ("term", "child_ref"), [(1, int(AMY))])
        assert (await session.execute(sql("SELECT count(*) FROM import_terms"))).scalar_one() == 1
        await session.rollback()
        names = await session.execute(sql("SELECT name FROM sqlite_temp_master WHERE type = 'table'"))
        assert list(names.scalars()) == []


BAD_CHILDREN = f"""{CHILDREN_HEADER}
9990000018,Amy,Jones,,2014-04-03,F,M1 2AB,Northshire,false
9990000019,Bad,Check,,2014-04-03,F,,Northshire,false
9990000026,,,,2016-09-12,M,,Northshire,false
9990000034,Lily,Brown,,2019-02-30,F,,Northshire,false
9990000042,Lily,Brown,,2099-01-01,F,,Northshire,false
9990000050,Mia,Stone,,2015-06-30,Q,NOT A POSTCODE,Southvale,maybe
9990000018,Amy,Again,,2014-04-03,F,,Northshire,false
9990000069,Noah,Wells,,2020-02-29,M,,Southvale
"""


async def test_every_bad_child_row_is_reported_and_nothing_is_written(signpost: Signpost) -> None:
    """One import with many kinds of bad row: each is reported with file, line and field; no row lands."""
    with pytest.raises(FeedRejected) as caught:
        await run(signpost, Feed("children.csv", BAD_CHILDREN))
    problems = {(p.line, p.field) for p in caught.value.report.problems}
    assert problems == {
        (3, "child_ref"),  # check digit
        (4, "family_name"),  # empty, and so is given_names
        (5, "date_of_birth"),  # 30 February
        (6, "date_of_birth"),  # in the future
        (7, "sex"),
        (7, "postcode"),
        (7, "shielded"),
        (8, "child_ref"),  # repeats line 2
        (9, "row"),  # wrong number of fields
    }
    assert all(p.file == "children.csv" for p in caught.value.report.problems)
    assert (await counts(signpost))["children"] == 0


async def test_a_bad_row_in_one_file_rolls_back_the_other_files(signpost: Signpost) -> None:
    """All-or-nothing across files: a bad involvement leaves practitioners and children unwritten too."""
    bad_involvements = INVOLVEMENTS + f"{AMY},NOPE,Education,2024-01-01,,false\n9990000077,P001,X,2024-01-01,,false\n"
    with pytest.raises(FeedRejected) as caught:
        await run(
            signpost,
            Feed("practitioners.csv", PRACTITIONERS),
            Feed("children.csv", CHILDREN),
            Feed("involvements.csv", bad_involvements),
        )
    report = caught.value.report
    assert [(p.line, p.field, p.problem) for p in report.problems] == [
        (7, "practitioner_id", "no practitioner with this id"),
        (8, "child_ref", "no child with this reference"),
    ]
    assert await counts(signpost) == {"practitioners": 0, "children": 0, "child_terms": 0, "involvements": 0}


async def test_bad_practitioner_and_involvement_fields_are_reported(signpost: Signpost) -> None:
    """Roles, phone, email, dates and booleans are each checked."""
    practitioners = f"{PRACTITIONERS_HEADER}\nX1,A,B,R,O,LA,not-a-phone,nobody,wizard\n"
    involvements = f"{INVOLVEMENTS_HEADER}\n{AMY},X1,S,2024-05-01,2024-04-01,maybe\n"
    with pytest.raises(FeedRejected) as caught:
        await run(signpost, Feed("p.csv", practitioners), Feed("i.csv", involvements))
    fields = [(p.file, p.field) for p in caught.value.report.problems]
    assert ("p.csv", "roles") in fields and ("p.csv", "phone") in fields and ("p.csv", "email") in fields
    assert ("i.csv", "ended") in fields and ("i.csv", "lead_professional") in fields


async def test_unknown_header_is_rejected_with_the_expected_headers(signpost: Signpost) -> None:
    """A file whose header matches no feed is named, with what was expected."""
    with pytest.raises(FeedRejected) as caught:
        await run(signpost, Feed("mystery.csv", "a,b,c\n1,2,3\n"))
    (problem,) = caught.value.report.problems
    assert (problem.file, problem.line, problem.field) == ("mystery.csv", 1, "header")
    assert "child_ref,given_names" in problem.problem


async def test_import_writes_no_audit_event(signpost: Signpost) -> None:
    """Imports are admin terminal work: they do not pose as chat commands in the audit."""
    await load_standard(signpost)
    async with signpost.ctx.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one() == 0


async def test_local_authorities_named_in_feeds_are_recorded_once(signpost: Signpost) -> None:
    """Every authority a feed names becomes one row, however many rows and imports name it."""
    await load_standard(signpost)
    await load_standard(signpost)
    async with signpost.ctx.db.read() as session:
        names = (await session.execute(select(LocalAuthority.name).order_by(LocalAuthority.name))).scalars().all()
    assert names == ["Northshire", "Southvale"]


async def test_an_authority_spelt_otherwise_is_the_one_registered_not_a_new_one(signpost: Signpost) -> None:
    """ "northshire" and "NORTH-SHIRE" in a later feed are Northshire: a new spelling became a new
    authority, whose children had no duty manager, lead-notice setting or grants of the one meant.
    The operator is told which spelling was taken for which."""
    await load_standard(signpost)
    new_child = "9990000204"
    report = await import_feeds(
        signpost.ctx.db,
        signpost.ctx.keys,
        [
            Feed("children.csv", f"{CHILDREN_HEADER}\n{new_child},Zoe,Hart,,2015-05-05,F,M2 3CD,northshire,false\n"),
            Feed(
                "practitioners.csv",
                f"{PRACTITIONERS_HEADER}\nP009,Kim,Lowe,Teacher,Hill Primary School,NORTH-SHIRE,0161 496 0009,"
                "kim.lowe@hill.example,practitioner\n",
            ),
        ],
        signpost.ctx.clock.now(),
    )
    assert report.ok and report.changed == {"children": 1, "practitioners": 1}
    assert report.respelt == {"northshire": "Northshire", "NORTH-SHIRE": "Northshire"}
    assert any("'northshire' taken as 'Northshire'" in note for note in report.notes())
    async with signpost.ctx.db.read() as session:
        names = (await session.execute(select(LocalAuthority.name).order_by(LocalAuthority.name))).scalars().all()
        held = await children.find(session, signpost.ctx.keys, int(new_child))
        kim = await session.scalar(select(Practitioner.local_authority).where(Practitioner.id == "P009"))
    assert names == ["Northshire", "Southvale"]
    assert held is not None and held.local_authority == "Northshire" and kim == "Northshire"


async def test_a_child_24_or_over_is_never_stored_and_a_held_one_is_destroyed(signpost: Signpost) -> None:
    """A row for a child already 24 on the import date is skipped (with its involvements), the
    import still succeeds and says how many, naming nobody; a child already held whose corrected
    date of birth makes them 24 is destroyed by that import."""
    await load_standard(signpost)
    old = "9990000077"  # a valid reference, born 25 years before the (fake) clock's 2026
    feeds = [
        Feed("children.csv", f"{CHILDREN_HEADER}\n{old},Zoe,Oldfield,,2001-01-01,F,M1 1AA,Northshire,false\n"),
        Feed("involvements.csv", f"{INVOLVEMENTS_HEADER}\n{old},P001,Children's social care,2010-01-01,,true\n"),
    ]
    report = await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now())
    assert (report.past_retention, report.past_retention_involvements) == (1, 1)
    assert report.changed == {"children": 0, "involvements": 0}
    assert report.notes() and not any(word in " ".join(report.notes()) for word in ("Zoe", "Oldfield", "2001", old))
    assert report.notes()[0].startswith("1 child row not stored: 24 or over") and report.notes()[0].endswith(
        "(0 records already held destroyed by this import); 1 involvement row for them skipped."
    )
    async with signpost.ctx.db.read() as session:
        assert await children.find(session, signpost.ctx.keys, int(old)) is None
    corrected = CHILDREN.replace("2014-04-03", "2000-04-03")  # Amy's date of birth corrected: now 26
    report = await import_feeds(
        signpost.ctx.db,
        signpost.ctx.keys,
        [Feed("children.csv", corrected)],
        signpost.ctx.clock.now(),
        destroy_redated=True,  # as `signpost import --destroy-redated`: the operator checked the date
    )
    assert report.past_retention == 1
    assert "(1 record already held destroyed by this import)" in report.notes()[0]  # said plainly
    async with signpost.ctx.db.read() as session:
        amy = await children.find(session, signpost.ctx.keys, int(AMY))
        assert amy is not None and amy.state == "destroyed"
        assert await children.load_identities(session, signpost.ctx.keys, [int(AMY)]) == {}
    # The feed as it was before: a destroyed record is not brought back, nor said to have changed,
    # and none of her involvements is stored again.
    amy_involvements = sum(1 for line in INVOLVEMENTS.splitlines() if line.startswith(AMY))
    report = await import_feeds(
        signpost.ctx.db,
        signpost.ctx.keys,
        [Feed("children.csv", CHILDREN), Feed("involvements.csv", INVOLVEMENTS)],
        signpost.ctx.clock.now(),
    )
    assert report.changed == {"children": 0, "involvements": 0}
    assert (report.destroyed, report.destroyed_involvements) == (1, amy_involvements) and amy_involvements
    assert report.notes() == [
        f"1 child row and {amy_involvements} involvement row{'s' if amy_involvements > 1 else ''} name children "
        "whose records were destroyed: not stored (a destroyed record is never brought back)."
    ]
    async with signpost.ctx.db.read() as session:
        amy = await children.find(session, signpost.ctx.keys, int(AMY))
        assert amy is not None and amy.state == "destroyed"
        held = select(func.count()).select_from(Involvement).where(Involvement.child_ref == int(AMY))
        assert (await session.execute(held)).scalar_one() == 0


async def test_a_slip_that_would_make_a_held_child_24_destroys_nothing_and_is_a_problem(signpost: Signpost) -> None:
    """One mistyped year (2014 → 1990) must not destroy a safeguarding record for good: the row is
    reported with its file, line and field, naming nobody, and nothing of the import is applied —
    the other rows' changes neither; Amy is still found, with her involvements and her own date."""
    await load_standard(signpost)
    before = await counts(signpost)
    lines = CHILDREN.splitlines()
    amy_line = next(n for n, line in enumerate(lines, start=1) if line.startswith(AMY))
    slipped = CHILDREN.replace("2014-04-03", "1990-04-03").replace("Okafor", "Okafor-Reid")  # and another change
    with pytest.raises(FeedRejected) as rejected:
        await import_feeds(
            signpost.ctx.db, signpost.ctx.keys, [Feed("children.csv", slipped)], signpost.ctx.clock.now()
        )
    [problem] = rejected.value.report.problems
    assert (problem.file, problem.line, problem.field) == ("children.csv", amy_line, "date_of_birth")
    assert "would destroy their record for good" in str(problem)
    assert not any(word in str(problem) for word in ("Amy", "Jones", "1990", "2014", AMY))
    async with signpost.ctx.db.read() as session:
        amy = await children.find(session, signpost.ctx.keys, int(AMY))
        assert amy is not None and amy.state != "destroyed"
        held = await children.load_identities(session, signpost.ctx.keys, [int(AMY)])
        assert held[int(AMY)].date_of_birth == date(2014, 4, 3)
        assert (await session.execute(select(func.count()).where(Child.identity.is_(None)))).scalar_one() == 0
    assert await counts(signpost) == before  # her involvements and index terms are all still there


async def test_a_feed_larger_than_a_chunk_streams_and_a_bad_last_row_still_rolls_everything_back(
    signpost: Signpost, tmp_path: Path
) -> None:
    """Files read from disk in chunks of two rows: the chunks before the bad last row were written
    in the transaction, progress was heard after each, and the bad row undoes them all."""
    for name, text in (("practitioners.csv", PRACTITIONERS), ("involvements.csv", INVOLVEMENTS)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "children.csv").write_text(CHILDREN + "9990000077,Zed,Last,,2015-01-01,F,,Northshire,maybe\n")
    heard: list[int] = []
    feeds = [Feed.from_path(tmp_path / name) for name in ("practitioners.csv", "children.csv", "involvements.csv")]
    with pytest.raises(FeedRejected) as caught:
        await import_feeds(
            signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now(), on_progress=heard.append, chunk=2
        )
    assert [str(p) for p in caught.value.report.problems] == [
        "children.csv:8: shielded: must be true or false (or yes/no, 1/0)"
    ]
    assert heard == [2, 2, 2]  # two more after each chunk; the last chunk (the bad row) wrote nothing
    assert await counts(signpost) == {"practitioners": 0, "children": 0, "child_terms": 0, "involvements": 0}
    (tmp_path / "children.csv").write_text(CHILDREN)
    report = await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now(), chunk=2)
    assert report.changed == {"practitioners": 6, "children": 6, "involvements": 5}
    again = await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now(), chunk=2)
    assert again.changed == {"practitioners": 0, "children": 0, "involvements": 0}


async def test_repeats_in_different_chunks_name_the_first_line(signpost: Signpost) -> None:
    """A repeated child or involvement is found however far apart the rows are (not only within a chunk)."""
    repeated_children = CHILDREN + f"{AMY},Amy,Jones,,2014-04-03,F,M1 2AB,Northshire,false\n"
    repeated_involvements = INVOLVEMENTS + f"{AMY},P001,Children's social care,2025-01-10,2025-06-01,false\n"
    with pytest.raises(FeedRejected) as caught:
        await import_feeds(
            signpost.ctx.db,
            signpost.ctx.keys,
            [
                Feed("practitioners.csv", PRACTITIONERS),
                Feed("children.csv", repeated_children),
                Feed("involvements.csv", repeated_involvements),
            ],
            signpost.ctx.clock.now(),
            chunk=2,
        )
    assert [str(p) for p in caught.value.report.problems] == [
        "children.csv:8: child_ref: repeats the row on line 2",
        "involvements.csv:7: child_ref: repeats the row on line 2",
    ]
    assert (await counts(signpost))["children"] == 0


async def test_references_with_digits_that_are_not_ascii_are_reported_not_raised(signpost: Signpost) -> None:
    """ "²".isdigit() is true and int("²") fails: such a reference in any feed is a reported row
    (children, involvements), never an error in the middle of the import."""
    superscript = "99900000\u00b28"  # SUPERSCRIPT TWO
    arabic_indic = AMY.translate({ord(d): 0x0660 + int(d) for d in "0123456789"})  # Amy's, in other digits
    children_feed = f"{CHILDREN_HEADER}\n{superscript},Amy,Jones,,2014-04-03,F,M1 2AB,Northshire,false\n"
    involvements = f"{INVOLVEMENTS_HEADER}\n{arabic_indic},P001,School nursing,2024-09-01,,false\n"
    with pytest.raises(FeedRejected) as caught:
        await run(
            signpost,
            Feed("practitioners.csv", PRACTITIONERS),
            Feed("children.csv", children_feed),
            Feed("involvements.csv", involvements),
        )
    problems = [(p.file, p.line, p.field) for p in caught.value.report.problems]
    assert ("children.csv", 2, "child_ref") in problems
    assert ("involvements.csv", 2, "child_ref") in problems
    assert await counts(signpost) == {"practitioners": 0, "children": 0, "child_terms": 0, "involvements": 0}


@pytest.mark.sqlite_only
async def test_a_first_load_builds_the_practitioner_index_after_its_rows_and_a_failure_keeps_it(
    signpost: Signpost,
) -> None:
    """Into an empty involvements table (SQLite) the by-practitioner index is dropped and built
    again after the rows, in the import's transaction: a failure after the drop rolls it back
    with everything else, and a good import leaves it exactly as the migration made it."""

    async def index_sql() -> list[str]:
        async with signpost.ctx.db.read() as session:
            found = await session.execute(
                sql("SELECT sql FROM sqlite_master WHERE name = 'ix_involvements_practitioner_id'")
            )
            return list(found.scalars())

    made = await index_sql()
    assert made == ["CREATE INDEX ix_involvements_practitioner_id ON involvements (practitioner_id)"]

    async def fail(_session: AsyncSession, _report: object) -> None:
        raise RuntimeError("stopped after the involvements were applied")

    with pytest.raises(RuntimeError):
        await import_feeds(
            signpost.ctx.db, signpost.ctx.keys, standard_feeds(), signpost.ctx.clock.now(), before_commit=fail
        )
    assert await index_sql() == made
    assert await counts(signpost) == {"practitioners": 0, "children": 0, "child_terms": 0, "involvements": 0}
    await load_standard(signpost)
    assert await index_sql() == made
    assert (await counts(signpost))["involvements"] == 5
    async with signpost.ctx.db.read() as session:
        plan = await session.execute(
            sql("EXPLAIN QUERY PLAN SELECT child_ref FROM involvements WHERE practitioner_id = 'P001'")
        )
        assert "ix_involvements_practitioner_id" in " ".join(str(row[-1]) for row in plan)


async def refused(app: Signpost, *feeds: Feed) -> list[str]:
    """The problem lines an import gives; it must have imported nothing (every table as it was)."""
    before = await counts(app)
    with pytest.raises(FeedRejected) as caught:
        await run(app, *feeds)
    assert await counts(app) == before
    return [str(problem) for problem in caught.value.report.problems]


async def test_an_over_long_practitioner_id_in_an_involvement_is_a_row_problem(signpost: Signpost) -> None:
    """A bad involvement row is staged for its references: a practitioner id past 64 characters
    went whole into the staging table's 64-character column, and PostgreSQL raised mid-import."""
    await load_standard(signpost)  # Amy is held, not named by this import: her row is staged to be checked
    link = f"{AMY},{'P' * 65},Care,2024-01-01,,false"
    said = await refused(signpost, Feed("involvements.csv", f"{INVOLVEMENTS_HEADER}\n{link}\n"))
    assert said == ["involvements.csv:2: practitioner_id: is longer than 64 characters"]


async def test_over_long_fields_of_every_feed_are_row_problems_never_database_errors(signpost: Signpost) -> None:
    """Each column at its limit plus one: a problem naming the field, on both databases."""
    long = "x" * 201
    people = f"{PRACTITIONERS_HEADER}\n{'P' * 65},A,B,{long},O,{'L' * 65},0161 496 0001,a@b.example,practitioner\n"
    kids = f"{CHILDREN_HEADER}\n{AMY},{long},Jones,,2014-04-03,F,,{'L' * 65},false\n"
    links = f"{INVOLVEMENTS_HEADER}\n{AMY},P001,{long},2024-01-01,,false\n"
    said = await refused(signpost, Feed("p.csv", people), Feed("c.csv", kids), Feed("i.csv", links))
    assert said == [
        "p.csv:2: practitioner_id: is longer than 64 characters",
        "p.csv:2: role: is longer than 200 characters",
        "p.csv:2: local_authority: is longer than 64 characters",
        "c.csv:2: given_names: is longer than 200 characters",
        "c.csv:2: local_authority: is longer than 64 characters",
        "i.csv:2: service: is longer than 200 characters",
        "i.csv:2: practitioner_id: no practitioner with this id",
    ]


async def test_a_file_name_of_any_length_is_imported_and_named_readably(signpost: Signpost) -> None:
    """The staging table held each feed's name in 200 characters: a longer file name raised on
    PostgreSQL. Any name imports; a problem line shows a long name shortened, its end kept."""
    name = "involvements-" + "x" * 300 + ".csv"
    report = await run_report(signpost, *standard_feeds()[:2], Feed(name, INVOLVEMENTS))
    assert report.changed["involvements"] == 5
    bad = Feed(name, INVOLVEMENTS + f"{AMY},NOPE,Care,2024-01-01,,false\n")
    [said] = await refused(signpost, bad)
    assert said.endswith("x.csv:7: practitioner_id: no practitioner with this id")
    assert len(said) < 160 and said.startswith("involvements-xxx")


async def run_report(app: Signpost, *feeds: Feed) -> ImportReport:
    return await import_feeds(app.ctx.db, app.ctx.keys, list(feeds), app.ctx.clock.now())


SWAPPED = PRACTITIONERS_HEADER.replace("given_name", "@").replace(",roles", ",given_name").replace("@", "roles")


async def test_a_header_in_another_order_than_its_rows_names_columns_never_values(signpost: Signpost) -> None:
    """A practitioners header with given_name and roles swapped (the rows in the documented order):
    the problem quoted each given name as a bad role ("roles: 'Sam' is not one of …"). Now the
    header is named as the likely cause, by its column names, and no row's value is shown."""
    said = await refused(signpost, Feed("p.csv", SWAPPED + PRACTITIONERS[PRACTITIONERS.index("\n") :]))
    assert said[0] == (
        "p.csv:1: header: the rows' roles values are under given_name: is the header in the order of the rows' columns?"
    )
    everything = "\n".join(said)
    for given in ("Sam", "Priya", "Tom", "Dana", "Alex", "Lee"):
        assert given not in everything


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (
            PRACTITIONERS_HEADER.replace("roles", "role_list"),
            "unknown role_list: remove or rename it; missing roles: add it",
        ),
        (CHILDREN_HEADER.replace(",shielded", ""), "missing shielded: add it"),
        (INVOLVEMENTS_HEADER + ",notes,status", "unknown notes, status: remove or rename them"),
        (
            INVOLVEMENTS_HEADER.replace("started", "Start Date"),
            "unknown (a column whose name is not a column name): remove or rename it; missing started: add it",
        ),
        # An unclosed quote pulls the first data row into the last column's name: never quoted.
        (
            CHILDREN_HEADER.replace(",shielded", ',"shielded'),
            "unknown (a column whose name is not a column name): remove or rename it; missing shielded: add it",
        ),
    ],
)
async def test_a_header_close_to_a_feed_names_the_unknown_and_missing_columns(
    signpost: Signpost, header: str, why: str
) -> None:
    """A header one or two columns off a feed says which columns, not the whole list of feeds, and
    what to do with them: an extra column is refused, never ignored (a header run into its first
    row is the feed's header with the row's fields as columns after it)."""
    [said] = await refused(signpost, Feed("f.csv", f"{header}\n1,2,3\n"))
    assert said == f"f.csv:1: header: not a known feed: {why}"


@pytest.mark.parametrize(
    ("first_line", "why"),
    [
        # The header's line break lost (a header file without one, then the rows: `cat head.csv rows.csv`):
        # its last column runs into the first row's child reference, and the row's fields follow it.
        (
            CHILDREN_HEADER + CHILDREN.splitlines()[1],
            "the header runs into the first row after shielded: is its line break missing?",
        ),
        (
            CHILDREN_HEADER.replace(",shielded", ",notes,shielded") + CHILDREN.splitlines()[1].lower(),
            "unknown notes: remove or rename it; "
            "the header runs into the first row after shielded: is its line break missing?",
        ),
        (
            INVOLVEMENTS_HEADER + INVOLVEMENTS.splitlines()[1],
            "the header runs into the first row after lead_professional: is its line break missing?",
        ),
        (  # the row's first field quoted, its other fields in lower case
            CHILDREN_HEADER + '"' + CHILDREN.splitlines()[1].lower().replace(",", '",', 1),
            "the header runs into the first row after shielded: is its line break missing?",
        ),
        # The row's first field empty: the header is whole, and the row's fields follow it as cells.
        (
            CHILDREN_HEADER + "," + CHILDREN.splitlines()[1].lower().split(",", 1)[1],
            "the header runs into the first row after shielded: is its line break missing?",
        ),
        # A header written with a trailing comma (as spreadsheets do), then the row straight after it.
        (
            CHILDREN_HEADER + "," + CHILDREN.splitlines()[1].lower(),
            "the header runs into the first row after shielded: is its line break missing?",
        ),
        (
            INVOLVEMENTS_HEADER + "," + INVOLVEMENTS.splitlines()[1].lower(),
            "the header runs into the first row after lead_professional: is its line break missing?",
        ),
        # Column names in capitals are read, but a capitalised unknown one may be a name: never quoted.
        (CHILDREN_HEADER.upper() + ",Amy", "unknown (a column whose name is not a column name): remove or rename it"),
    ],
)
async def test_a_header_that_holds_a_row_quotes_none_of_it(signpost: Signpost, first_line: str, why: str) -> None:
    """A header that ran into its first row (no line break after it) was close enough to the
    children feed's for its unknown columns to be named: the child's given and family names, sex,
    authority and shielded flag were quoted back ("unknown shielded9990000018, amy, jones, …"). Now
    the break is named as the likely cause and nothing of the row is shown."""
    said = await refused(signpost, Feed("c.csv", f"{first_line}\n{CHILDREN.splitlines()[2]}\n"))
    assert said == [f"c.csv:1: header: not a known feed: {why}"]
    for value in ("amy", "jones", "amelia", "northshire", "false", AMY):
        assert value not in said[0].lower(), value


async def test_a_role_that_is_not_one_is_never_quoted(signpost: Signpost) -> None:
    people = f"{PRACTITIONERS_HEADER}\nX1,A,B,R,O,LA,0161 496 0001,a@b.example,practitioner;Wizardly Name\n"
    said = await refused(signpost, Feed("p.csv", people))
    assert said == ["p.csv:2: roles: holds a role that is not one of practitioner, duty_manager, admin"]


async def test_repeats_across_files_are_refused_with_the_first_file_and_line(signpost: Signpost) -> None:
    """The same child, practitioner or involvement in two files of one import: refused as a
    repeat naming where it first was, as within one file (PostgreSQL raised on involvements)."""
    more_people = f"{PRACTITIONERS_HEADER}\n" + PRACTITIONERS.splitlines()[3] + "\n"  # P003, line 4 of the first
    more_kids = f"{CHILDREN_HEADER}\n" + CHILDREN.splitlines()[2] + "\n"  # Ben, line 3 of the first
    more_links = f"{INVOLVEMENTS_HEADER}\n" + INVOLVEMENTS.splitlines()[4] + "\n"  # line 5 of the first
    said = await refused(
        signpost,
        *standard_feeds(),
        Feed("p2.csv", more_people),
        Feed("c2.csv", more_kids),
        Feed("i2.csv", more_links),
    )
    assert said == [
        "p2.csv:2: practitioner_id: repeats the row at practitioners.csv:4",
        "c2.csv:2: child_ref: repeats the row at children.csv:3",
        "i2.csv:2: child_ref: repeats the row at involvements.csv:5",
    ]


async def test_a_date_that_does_not_exist_is_not_a_real_date(signpost: Signpost) -> None:
    kids = f"{CHILDREN_HEADER}\n{AMY},Amy,Jones,,2019-02-30,F,,Northshire,false\n"
    links = f"{INVOLVEMENTS_HEADER}\n{AMY},P001,Care,2024-13-01,,false\n"
    said = await refused(signpost, Feed("practitioners.csv", PRACTITIONERS), Feed("c.csv", kids), Feed("i.csv", links))
    assert said == [
        "c.csv:2: date_of_birth: is not a real date",
        "i.csv:2: started: is not a real date",
    ]


async def test_an_involvement_starting_after_today_is_a_problem(signpost: Signpost) -> None:
    """Today is the service clock's: an involvement cannot have started tomorrow (ended may be planned)."""
    today = signpost.ctx.clock.now().date()
    tomorrow = today.fromordinal(today.toordinal() + 1)
    links = f"{INVOLVEMENTS_HEADER}\n{AMY},P001,Care,{tomorrow},,false\n{AMY},P002,Care,{today},{tomorrow},false\n"
    said = await refused(signpost, *standard_feeds()[:2], Feed("i.csv", links))
    assert said == ["i.csv:2: started: is in the future"]


async def test_problems_past_ten_thousand_are_counted_not_held(signpost: Signpost) -> None:
    """A feed bad in every row (a systematic fault): the first 10,000 problems are kept, the rest
    counted, so a national feed's eleven million bad rows do not take gigabytes to report."""
    rows = "".join(f"{AMY},P001,Care {n},2024-01-01,,maybe\n" for n in range(10_050))
    await load_standard(signpost)
    with pytest.raises(FeedRejected) as caught:
        await run(signpost, Feed("i.csv", INVOLVEMENTS_HEADER + "\n" + rows))
    problems = caught.value.report.problems
    assert (len(problems), problems.total) == (10_000, 10_050)
    assert str(problems[-1]) == "i.csv:10001: lead_professional: must be true or false (or yes/no, 1/0)"
    assert str(caught.value) == "10,050 problems; nothing was imported"


def swapped(header: str, one: str, other: str) -> str:
    columns = header.split(",")
    i, j = columns.index(one), columns.index(other)
    columns[i], columns[j] = columns[j], columns[i]
    return ",".join(columns)


@pytest.mark.parametrize(
    ("feeds", "hint"),
    [
        (
            [
                Feed(
                    "c.csv", swapped(CHILDREN_HEADER, "given_names", "date_of_birth") + CHILDREN[CHILDREN.index("\n") :]
                )
            ],
            "c.csv:1: header: the rows' date_of_birth values are under given_names: "
            "is the header in the order of the rows' columns?",
        ),
        (
            [
                Feed("p.csv", PRACTITIONERS),
                Feed(
                    "i.csv",
                    swapped(INVOLVEMENTS_HEADER, "service", "started") + INVOLVEMENTS[INVOLVEMENTS.index("\n") :],
                ),
            ],
            "i.csv:1: header: the rows' started values are under service: "
            "is the header in the order of the rows' columns?",
        ),
    ],
    ids=["children", "involvements"],
)
async def test_children_and_involvements_in_another_order_than_their_header_are_told_so(
    signpost: Signpost, feeds: list[Feed], hint: str
) -> None:
    """The header hint, once a file, for the other feeds; never a date of birth or a name."""
    said = await refused(signpost, *feeds)
    assert said[0] == hint and sum("header" in line for line in said) == 1
    assert not any(value in "\n".join(said) for value in ("Amy", "Jones", "2014-04-03", "Education"))


async def test_children_naming_an_authority_no_practitioner_belongs_to_are_imported_and_counted(
    signpost: Signpost,
) -> None:
    """A children row out of line puts a child's name under local_authority. It is imported (a feed
    may come before the practitioners feed naming its authority), and the summary counts the
    register's children of such authorities, naming none, on every import until it is corrected."""
    await load_standard(signpost)
    assert (await load_standard(signpost)).notes() == []  # every standard child's authority has practitioners
    report = await misaligned.import_misaligned(signpost)
    assert report.ok and report.changed == {"children": 1, "involvements": 1}
    assert report.children_in_unknown_authorities == 1
    notes = report.notes()
    assert notes == [
        "1 child in the register names a local authority no practitioner belongs to: such an authority is not "
        "shown in the transparency report or in chat until a practitioner of it is imported. With the "
        "practitioners feed imported, check the children feed's local_authority column (a row out of line puts "
        "other text there)."
    ]
    assert misaligned.shown_parts(" ".join(notes)) == []
    async with signpost.ctx.db.read() as session:
        held = await children.find(session, signpost.ctx.keys, int(misaligned.REF))
    assert held is not None and held.local_authority == misaligned.NAME_AS_AUTHORITY

    # Still there on the next import, of another feed; gone once the row is corrected.
    later = await run_report(signpost, Feed("practitioners.csv", PRACTITIONERS))
    assert later.children_in_unknown_authorities == 1 and later.notes()[0].startswith("1 child in the register names")
    corrected = misaligned.CHILD_ROW.replace(misaligned.NAME_AS_AUTHORITY, "Southvale")
    fixed = await run_report(signpost, Feed("children.csv", f"{CHILDREN_HEADER}\n{corrected}"))
    assert fixed.changed == {"children": 1} and fixed.children_in_unknown_authorities == 0 and fixed.notes() == []


async def test_children_imported_before_the_practitioners_feed_are_all_counted(signpost: Signpost) -> None:
    """Children first: every one names an authority no practitioner belongs to yet (said as a count,
    plural); the practitioners feed after them leaves none."""
    first = await run_report(signpost, Feed("children.csv", CHILDREN))
    assert first.ok and first.children_in_unknown_authorities == 6
    assert first.notes()[0].startswith("6 children in the register name a local authority no practitioner belongs to:")
    then = await run_report(signpost, Feed("practitioners.csv", PRACTITIONERS))
    assert then.children_in_unknown_authorities == 0 and then.notes() == []


async def test_names_with_a_character_of_no_agreed_shape_or_a_joiner_that_joins_nothing_are_refused(
    signpost: Signpost,
) -> None:
    """One definition (store.characters) for feed text: a private-use character (its glyph is a
    font's choice), an unassigned one, and a joiner between ASCII letters or at a name's end (it
    shows nothing, and a search for "John" never found "Jo\\u200dhn") are each a problem; before,
    all four were imported."""
    rows = [
        f"{AMY},Amy\ue000,Jones,,2014-04-03,F,,Northshire,false",
        f"{BEN},Ben,Jones\u0378,,2014-04-03,M,,Northshire,false",
        f"{TWIN_A},Jo\u200dhn,Jones,,2014-04-03,M,,Northshire,false",
        f"{TWIN_B},Amy,Jones\u200c,,2014-04-03,F,,Northshire,false",
    ]
    said = await refused(signpost, Feed("c.csv", CHILDREN_HEADER + "\n" + "\n".join(rows) + "\n"))
    assert said == [
        f"c.csv:{line}: {field}: {NOT_SHOWN}"
        for line, field in ((2, "given_names"), (3, "family_name"), (4, "given_names"), (5, "family_name"))
    ]


async def test_names_whose_script_needs_a_joiner_are_imported(signpost: Signpost) -> None:
    """The non-joiner of a Persian name and the joiner of a Devanagari half form join letters:
    they show as themselves, and the child is imported under that name."""
    persian, devanagari = "\u0645\u0647\u0631\u200c\u0646\u0627\u0632", "\u0915\u094d\u200d\u0937\u093e"
    kids = f"{CHILDREN_HEADER}\n{AMY},{persian},{devanagari},,2014-04-03,F,,Northshire,false\n"
    report = await run_report(signpost, *standard_feeds()[:1], Feed("c.csv", kids))
    assert report.changed["children"] == 1


async def test_feeds_given_as_bytes_refuse_utf16_and_empty_files_in_one_line_each(signpost: Signpost) -> None:
    """Files given as their bytes (``import_files``) are read as files on disk are: a UTF-16 file is
    one problem (it was "not UTF-8" and a header no feed has), an empty one is told it is empty."""
    utf16 = ("\ufeff" + CHILDREN).encode("utf-16-le")
    said = await refused(signpost, Feed.from_bytes("c.csv", utf16), Feed.from_bytes("e.csv", b""))
    assert said == [
        'c.csv:1: file: is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8: '
        'save it as "CSV UTF-8 (Comma delimited)" and import it again',
        "e.csv:1: file: is empty: a feed is its header row, then its rows (export it again)",
    ]


@pytest.mark.parametrize(
    "written", [f"'{AMY}", f'"=""{AMY}"""', f"{AMY[:5]}\u00a0{AMY[5:]}"], ids=["apostrophe", "formula", "nbsp"]
)
async def test_a_child_row_with_its_reference_kept_as_text_names_the_child_for_its_involvements(
    signpost: Signpost, written: str
) -> None:
    """A children row refused for another field, its reference written as a spreadsheet keeps it
    as text: its involvements are not told there is no such child (the row's own problem is the one)."""
    children_feed = f"{CHILDREN_HEADER}\n{written},Amy,Jones,,2014-04-03,Q,M1 2AB,Northshire,false\n"
    involvements = f"{INVOLVEMENTS_HEADER}\n{AMY},P001,Children's social care,2025-01-10,,true\n"
    with pytest.raises(FeedRejected) as caught:
        await run(
            signpost,
            Feed("practitioners.csv", PRACTITIONERS),
            Feed("children.csv", children_feed),
            Feed("involvements.csv", involvements),
        )
    assert [(p.file, p.line, p.field) for p in caught.value.report.problems] == [("children.csv", 2, "sex")]


@pytest.mark.postgres_only
async def test_an_import_that_wrote_rows_leaves_postgresql_statistics_of_the_register(signpost: Signpost) -> None:
    """PostgreSQL plans every read from its statistics, and a freshly loaded register has none until
    autovacuum gets round to it: until then retention's queries took 85-200 ms each on a 40 k store.
    An import that wrote rows analyses the tables after its commit."""

    async def analysed() -> set[str]:
        async with signpost.ctx.db.read() as session:
            rows = await session.execute(sql("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"))
            return set(rows.scalars())

    async def catalogs_analysed() -> set[tuple[str, object]]:
        async with signpost.ctx.db.read() as session:
            rows = await session.execute(sql("SELECT relname, last_analyze FROM pg_stat_sys_tables"))
            return {(str(name), at) for name, at in rows}

    assert not {"children", "child_keys", "child_terms", "involvements", "practitioners"} & await analysed()
    catalogs = await catalogs_analysed()
    await load_standard(signpost)
    assert {"children", "child_keys", "child_terms", "involvements", "practitioners"} <= await analysed()
    # Only what it wrote: a bare ANALYZE went through the system catalogs too, most of a small import's time.
    assert await catalogs_analysed() == catalogs
