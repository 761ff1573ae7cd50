"""Derived key ids made a block at a time, and a puncture that reuses the keys it held, give
exactly what deriving each one afresh gives (a retention run catching up punctures once a day)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from store.keys import keychain
from store.keys.crypto import KeyRing
from store.keys.keychain import Chain

TODAY = date(2026, 11, 20)


def test_ids_made_a_block_at_a_time_are_each_slots_own_across_block_edges() -> None:
    ring = KeyRing.generate()
    ring.cohort_ids_from = 0  # a key file from before tags: every day's id is made from the index key
    for chain in (Chain.DAY, Chain.MONTH):
        for gen in (1, 2, 37):
            for first, last in ((0, 0), (1000, 1030), (1023, 1024), (2040, 5000), (45_000, 45_000)):
                expected = [keychain.kek_id(ring, chain, gen, slot) for slot in range(first, last + 1)]
                assert keychain.kek_ids(ring, chain, gen, first, last) == expected
    assert keychain.kek_ids(ring, Chain.DAY, 1, 10, 9) == []


def test_daily_punctures_reusing_held_keys_hold_what_a_fresh_derivation_holds(tmp_path: Path) -> None:
    path = tmp_path / "signpost.key"
    ring = KeyRing.load_or_create(path)
    keychain.ensure_chains(ring, TODAY)
    start = keychain.cutoff_of(ring, Chain.DAY)
    assert start is not None
    day = TODAY
    for n in range(1, 40):
        day = TODAY + timedelta(days=max(0, n - 20))  # held keys reused, then a horizon a day further each time
        assert keychain.puncture(ring, Chain.DAY, start + n, day) == 1
    fresh = KeyRing.load(path)
    keychain.install(fresh, day)
    derived = {k: v for k, v in ring.keks.items() if keychain.is_derived(k)}
    assert derived == {k: v for k, v in fresh.keks.items() if keychain.is_derived(k)}
    assert keychain.key_for(ring, Chain.DAY, start + 38) is None and keychain.key_for(ring, Chain.DAY, start + 39)
    assert ring.term_keys.days == fresh.term_keys.days and ring.term_keys.years == fresh.term_keys.years


def test_a_tagged_generations_ids_exist_only_for_the_days_whose_keys_can_be_derived() -> None:
    """Tagged ids (``chained_ids``) are made from the term chain's state at each day: for the days
    from the cutoff to the horizon, each the same made alone or together, and none below the cutoff
    (which is what makes a destroyed cohort's id unreadable) nor past the horizon."""
    ring = KeyRing.generate()
    keychain.ensure_chains(ring, TODAY)
    cutoff = keychain.cutoff_of(ring, Chain.DAY)
    last = keychain.horizon(Chain.DAY, TODAY)
    assert cutoff is not None and keychain.chained_ids(ring, 1)
    ids = keychain.kek_ids(ring, Chain.DAY, 1, cutoff, last)
    assert ids == [keychain.kek_id(ring, Chain.DAY, 1, slot) for slot in range(cutoff, last + 1)]
    assert len(set(ids)) == len(ids) and all(kid in ring.keks for kid in ids)
    for outside in (cutoff - 1, last + 1):
        assert keychain.key_for(ring, Chain.DAY, outside) is None
        try:
            keychain.kek_id(ring, Chain.DAY, 1, outside)
        except KeyError:
            continue
        raise AssertionError(f"slot {outside} has a tagged id")
