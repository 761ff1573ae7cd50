"""Name counts for term-frequency weights: kept by blind index, moved by re-imports, and used only
when complete."""

from __future__ import annotations

from sqlalchemy import delete, select

from bot.app import Signpost
from store.register import children, name_counts
from store.register.feeds import Feed, import_feeds
from store.tables.lifecycle import Meta
from store.tables.register import NameCount
from tests.factories import BEN, CHILDREN, load_standard

KEYS = ["g:LILY", "f:BROWN", "g:AMY", "f:JONES", "g:BEN", "f:OKAFOR", "g:ZEBEDEE"]


async def counts(app: Signpost) -> dict[str, int]:
    async with app.ctx.db.read() as session:
        return dict(await name_counts.lookup(session, app.ctx.keys, KEYS))


async def test_import_counts_children_per_name_without_storing_any_name(signpost: Signpost) -> None:
    """Twins share a first and family name (2 each); names nobody bears are absent; no plain name is stored."""
    await load_standard(signpost)
    assert await counts(signpost) == {"g:LILY": 2, "f:BROWN": 2, "g:AMY": 1, "f:JONES": 1, "g:BEN": 1, "f:OKAFOR": 1}
    async with signpost.ctx.db.read() as session:
        terms = set((await session.execute(select(NameCount.term))).scalars())
    held = signpost.ctx.keys.term_keys  # the twins were born in 2019: counted under that year's key
    assert held.blind(held.for_year(2019), "f:BROWN") in terms and all(isinstance(t, int) for t in terms)


async def test_a_changed_name_moves_its_count(signpost: Signpost) -> None:
    """Re-importing Ben under another name takes him out of OKAFOR and into the new name's count."""
    await load_standard(signpost)
    renamed = CHILDREN.replace(f"{BEN},Ben,Okafor,", f"{BEN},Ben,Jones,")
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [Feed("children.csv", renamed)], signpost.ctx.clock.now())
    found = await counts(signpost)
    assert "f:OKAFOR" not in found and found["f:JONES"] == 2 and found["g:BEN"] == 1


async def test_incomplete_counts_are_not_used_until_rebuilt(signpost: Signpost) -> None:
    """A store that held children before counting began scores with average weights; rebuild restores."""
    await load_standard(signpost)
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(NameCount))
    assert await counts(signpost) == {}
    async with signpost.ctx.db.write() as session:
        counted = await name_counts.rebuild(session, signpost.ctx.keys)
    assert counted == 6
    assert (await counts(signpost))["f:BROWN"] == 2


async def test_counts_under_the_index_key_are_recounted_when_a_process_starts(signpost: Signpost) -> None:
    """A store counted by an older version (under the index key, no record of how it is keyed): the
    first process to start recounts it under birth-year keys; no index-keyed count is left."""
    await load_standard(signpost)
    keys = signpost.ctx.keys
    legacy = {keys.blind(key): n for key, n in {"g:LILY": 2, "f:BROWN": 2, "g:AMY": 1, "f:JONES": 1}.items()}
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(NameCount).where(NameCount.term != name_counts.COMPLETE))
        await name_counts.add(session, legacy)
        await session.execute(delete(Meta).where(Meta.key == name_counts.KEYED_META))
    assert await counts(signpost) == {}  # read under the birth-year keys: nothing found
    await children.bring_terms_up_to_date(signpost.ctx.db, keys, signpost.ctx.clock.now().date())
    assert (await counts(signpost))["f:BROWN"] == 2
    async with signpost.ctx.db.read() as session:
        terms = set((await session.execute(select(NameCount.term))).scalars())
    assert not terms & set(legacy)


async def test_counts_kept_as_an_older_index_version_spelt_names_are_recounted_with_the_index(
    signpost: Signpost,
) -> None:
    """Counts are kept by name as ``normalise_name`` spells it, as the index terms are. A store
    indexed by version 3 counted Paweł Łęcki under ŁECKI; version 4 reads his name as LECKI. The
    rebuild that a new terms version brings counts the names again too: kept as they were, his name
    would read as one no registered child bears, and each later import would move counts it never
    held."""
    keys = signpost.ctx.keys
    feed = "child_ref,given_names,family_name,aliases,date_of_birth,sex,postcode,local_authority,shielded\n"
    feed += "9993000000,Paweł,Łęcki,,2014-04-06,M,M1 1AE,Northshire,false\n"
    report = await import_feeds(signpost.ctx.db, keys, [Feed("children.csv", feed)], signpost.ctx.clock.now())
    assert report.ok
    held = keys.term_keys
    as_version_3 = {held.blind(held.for_year(2014), key): 1 for key in ("g:PAWEŁ", "f:ŁECKI")}
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(NameCount).where(NameCount.term != name_counts.COMPLETE))
        await name_counts.add(session, as_version_3)
        await session.merge(Meta(key=children.TERMS_META, value="3"))
    await children.bring_terms_up_to_date(signpost.ctx.db, keys, signpost.ctx.clock.now().date())
    async with signpost.ctx.db.read() as session:
        assert await name_counts.lookup(session, keys, ["g:PAWEL", "f:LECKI"]) == {"g:PAWEL": 1, "f:LECKI": 1}
        terms = set((await session.execute(select(NameCount.term))).scalars())
    assert not terms & set(as_version_3)
