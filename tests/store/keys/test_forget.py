"""``keychain.forget``, which decommissioning calls once the key file is wiped: this process keeps
no birth-date id or tag, and no cache keeps the index key it made the untagged ids from."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from store.keys import keychain
from store.keys.crypto import KeyRing
from store.keys.keychain import Chain

TODAY = date(2026, 11, 20)


def held_by_caches() -> dict[str, int]:
    """How many entries each of the keychain's memoised ids and tags holds (zero: none)."""
    return {
        "cohort ids": keychain._cohort_tag.cache_info().currsize,
        "id blocks": keychain._id_block.cache_info().currsize,
        "tags ahead": keychain._tags_from.cache_info().currsize,
        "renamed": len(keychain._renamed),
    }


def test_forget_leaves_this_process_no_id_tag_or_index_key(tmp_path: Path) -> None:
    """Used as a running store uses it (ids of untagged days, an audit key renamed to its tag, an
    unknown tagged id judged), the keychain holds ids, tags and, in its caches' keys, the index key
    itself; after ``forget`` the ring holds no day's tag and every cache is empty. The key file never
    held the tags (they are derived from its chain states, which decommissioning wipes before)."""
    ring = KeyRing.load_or_create(tmp_path / "signpost.key")
    keychain.ensure_chains(ring, TODAY)
    slot = min(ring.day_tags)
    untagged = keychain.kek_ids(ring, Chain.DAY, 0, slot, slot + 3)  # generation 0: hashes under the index key
    named = "d" + untagged[0][2:]  # as an audit-terms key names the day
    assert keychain.tagged_name(ring, named) == f"d{ring.day_tags[slot]}"
    stranger = "d1" + "0" * 14  # a tagged id no day ahead has: judged against every tag ahead
    assert keychain.punctured_day_ids(ring, [stranger]) == [stranger]
    assert all(held_by_caches().values()), held_by_caches()

    on_disk = (tmp_path / "signpost.key").read_text("utf-8")
    assert not [tag for tag in ring.day_tags.values() if tag in on_disk]  # derived at start: never in the file

    keychain.forget(ring)

    assert ring.day_tags == {}
    assert held_by_caches() == {"cohort ids": 0, "id blocks": 0, "tags ahead": 0, "renamed": 0}
    assert keychain.tagged_name(ring, named) is None  # nothing renamed from what was held
