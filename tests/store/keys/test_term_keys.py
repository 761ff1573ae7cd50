"""Blind-index term keys: which key each term is under, how they die with the day chain, and who holds them."""

from __future__ import annotations

import pickle
from datetime import date, timedelta
from pathlib import Path

from bot.app import Signpost, build
from handlers.matching.terms import Query, query_terms
from handlers.vocabulary import Outcome
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.keys.keychain import Chain
from store.keys.rotation import rotate
from store.register import children
from store.register.children import retention_term
from store.register.terms import FULL_DATE_KINDS, Identity, index_terms, keyed_by, term_kind
from tests.factories import ready, say
from tests.fuzzy_register import AMELIA, load_fuzzy

TODAY = date(2026, 11, 2)
AMELIA_TYPED = "Amelia Thornton 03/04/2014 M1"


def ring_on_disk(tmp_path: Path) -> KeyRing:
    ring = KeyRing.generate(tmp_path / "k.key")
    ring.save()
    keychain.ensure_chains(ring, TODAY)
    return ring


def test_full_date_terms_are_keyed_by_the_day_and_the_others_by_the_year() -> None:
    """Every kind a child is indexed under says which key it takes: its date of birth for the
    full-date kinds, its birth year or no year at all (then the child's own year) for the rest."""
    born = date(2014, 4, 3)
    child = Identity("Amelia Grace", "Thornton", ("Amy Hargreaves",), born, "F", "M1 2AB")
    for term in {*index_terms(child), retention_term(born)}:
        if term_kind(term) in FULL_DATE_KINDS:
            assert keyed_by(term) == born, term
        else:
            assert keyed_by(term) in (born.year, None), term
    asked = query_terms(Query("Amelia", "Thornton", born, "M1 2AB"))
    assert {type(keyed_by(t)) for t in asked} == {date, int, type(None)}


def test_a_puncture_destroys_day_term_keys_with_their_cohorts_and_year_keys_with_the_last_day(
    tmp_path: Path,
) -> None:
    """Through 2 March 2003: no term key of a day before it, and none of 2002; 2003's year key stays
    (its last day is kept), and every surviving key is the same in a process loading the file anew."""
    ring = ring_on_disk(tmp_path)
    assert date(2002, 12, 31) in ring.term_keys.days and 2002 in ring.term_keys.years
    before = dict(ring.term_keys.days)
    keychain.puncture(ring, Chain.DAY, keychain.day_slot(date(2003, 3, 2)), TODAY)
    fresh = KeyRing.load(tmp_path / "k.key")
    keychain.install(fresh, TODAY)
    for held in (ring, fresh):
        assert min(held.term_keys.days) == date(2003, 3, 2)
        assert 2002 not in held.term_keys.years and 2003 in held.term_keys.years
        assert all(before[day] == key for day, key in held.term_keys.days.items())
    assert fresh.term_keys.years == ring.term_keys.years


def test_term_keys_never_outlive_the_day_chain_even_when_the_term_chain_lags(tmp_path: Path) -> None:
    """A key file whose term chain is behind its day chain (punctured by an older version) derives no
    term key below the day chain's cutoff."""
    ring = ring_on_disk(tmp_path)
    cutoff = keychain.day_slot(date(2003, 6, 1))
    with keychain.editing(ring) as fresh:
        for state in keychain.states(fresh):
            if state.chain is Chain.DAY:
                del fresh.keks[state.entry_id]
                moved = keychain.advance(state, cutoff)
                fresh.keks[moved.entry_id] = moved.state
    keychain.install(ring, TODAY)
    assert min(ring.term_keys.days) == date(2003, 6, 1)


def test_sealing_workers_are_given_term_keys_and_never_a_key_encryption_key_or_chain(tmp_path: Path) -> None:
    """What a sealing worker process receives holds none of the key file's KEKs or chain states."""
    ring = ring_on_disk(tmp_path)
    given = pickle.dumps(children.sealer_keys(ring))
    assert [name for name, value in ring.keks.items() if value in given] == []
    children.start_sealer(*children.sealer_keys(ring))
    worker = children._SEALER[0]
    assert worker.keks == {} and worker.current_kek_id == ""
    child = Identity("Amelia", "Thornton", (), date(2014, 4, 3), "F", "M1 2AB")
    assert children.terms_for(worker, child) == children.terms_for(ring, child)


def test_a_search_probes_terms_without_a_year_under_each_searchable_year(tmp_path: Path) -> None:
    """A no-date query probes each of its terms under every birth year of a child under 18 (with a
    year's slack) up to the horizon, and never under a destroyed year; a dated query probes its
    full-date terms under their own day only."""
    ring = ring_on_disk(tmp_path)
    years = ring.term_keys.search_years(keychain.ARCHIVE_AT_AGE)
    horizon = (TODAY + timedelta(days=keychain.HORIZON_DAYS)).year
    assert years == list(range(TODAY.year - 19, horizon + 1))
    undated = query_terms(Query("Amelia", "Thornton", None, "M1 2AB"))
    assert len(children.probes(ring, undated)) == len(undated) * len(years)
    own = ring.term_keys.days[date(2014, 4, 3)]
    assert children.probes(ring, ["dob:2014-04-03"]) == [ring.term_keys.blind(own, "dob:2014-04-03")]
    assert children.probes(ring, ["dob:2000-01-01", "ym:AML|TRNTN|2001-03"]) == []  # destroyed already


async def test_rotation_keeps_the_term_keys_so_the_index_needs_no_rebuild(signpost: Signpost) -> None:
    """``keys rotate`` carries the term chain into the new generation unchanged: the key file then
    derives the same term keys, and a freshly started process finds a child by name and date."""
    await load_fuzzy(signpost)
    keys = signpost.ctx.keys
    today = signpost.ctx.clock.now().date()
    before = dict(keys.term_keys.days), dict(keys.term_keys.years)
    await rotate(signpost.ctx.db, keys, today)
    assert keys.path is not None
    fresh = KeyRing.load(keys.path)
    keychain.install(fresh, today)
    assert (fresh.term_keys.days, fresh.term_keys.years) == before
    restarted = build(signpost.ctx.db, fresh, signpost.ctx.clock)
    try:
        await ready(restarted, "P002")
        reply = await say(restarted, "P002", AMELIA_TYPED)
    finally:
        await restarted.ctx.audit.close()
    assert reply.outcome is Outcome.ANSWERED and reply.child_ref == f"{AMELIA[:3]} {AMELIA[3:6]} {AMELIA[6:]}"
