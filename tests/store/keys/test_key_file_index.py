"""Looking a key up costs the same however many keys the key file holds: the chain states and
master KEKs (a few among ~9,000 derived keys) are indexed as the key file changes, so a batch match
asking ``destroyed_since`` of every candidate, or ``keys rotate`` asking ``generations`` of every
distinct key id, reads the index, not the whole key file (it read all of it each time)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from store.keys import keychain, keydict, unheld
from store.keys.crypto import KeyRing
from store.keys.keychain import Chain
from store.keys.keydict import KeyDict

TODAY = date(2026, 11, 20)


class Counted(KeyDict):
    """A key file that counts the keys read by walking it (a lookup by id reads one, and is not counted)."""

    visited = 0

    def __iter__(self) -> Iterator[str]:
        for key in super().__iter__():
            Counted.visited += 1
            yield key

    def items(self) -> Any:
        Counted.visited += len(self)
        return super().items()

    def keys(self) -> Any:
        Counted.visited += len(self)
        return super().keys()

    def values(self) -> Any:
        Counted.visited += len(self)
        return super().values()


def _walked(ring: KeyRing) -> list[str]:
    return [k for k in dict.keys(ring.keks) if not keychain.is_derived(k)]


def test_lookups_visit_no_key_entry_of_a_key_file_of_thousands(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "signpost.key")
    keychain.ensure_chains(ring, TODAY)
    keychain.install(ring, TODAY)
    assert len(ring.keks) > 5000
    cutoff = keychain.cutoff_of(ring, Chain.DAY)
    assert cutoff is not None
    held_id = keychain.kek_id(ring, Chain.DAY, 1, cutoff + 10)
    ring.keks = Counted(ring.keks)
    Counted.visited = 0
    for _ in range(100):
        assert keychain.punctured_day_ids(ring, (held_id,)) == []
        assert keychain.cutoff_of(ring, Chain.DAY) == cutoff
        assert keychain.generations(ring) == {1}
        assert not keychain.punctured(ring, cutoff)
        assert unheld.held(ring, held_id) and unheld.held(ring, "k1")
    assert Counted.visited == 0


def test_the_index_follows_every_change_of_the_key_file(tmp_path: Path) -> None:
    """Ensure, install, puncture, rotate, retire, reload, a replaced dict: the index always names
    exactly the key file's non-derived entries, and the chain states read from it are the file's."""
    path = tmp_path / "signpost.key"
    ring = KeyRing.load_or_create(path)

    def same() -> None:
        keks = ring.keks
        assert isinstance(keks, KeyDict) and keks.others() == _walked(ring)
        found = [e for e in dict.keys(ring.keks) if e[:1] == "~"]
        assert sorted(s.entry_id for s in keychain.states(ring)) == sorted(found)

    keychain.ensure_chains(ring, TODAY)
    same()
    keychain.install(ring, TODAY)
    same()
    start = keychain.cutoff_of(ring, Chain.DAY)
    assert start is not None
    for n in range(1, 4):
        keychain.puncture(ring, Chain.DAY, start + n, TODAY + timedelta(days=n))
        same()
    assert keychain.cutoff_of(ring, Chain.DAY) == start + 3
    keychain.puncture(ring, Chain.MONTH, (keychain.cutoff_of(ring, Chain.MONTH) or 0) + 1, TODAY)
    same()
    same()
    ring.keks["~day:9:1"] = b"x" * 32
    ring.keks.update({"k9": b"y" * 32, "d1zz": b"z" * 32})
    ring.keks.setdefault("~month:9:1", b"w" * 32)
    same()
    del ring.keks["~day:9:1"]
    ring.keks.pop("k9")
    ring.keks.pop("absent", None)
    ring.keks |= {"k8": b"v" * 32}
    same()
    ring.keks.popitem()
    same()
    for copied in (copy.deepcopy(ring.keks), pickle.loads(pickle.dumps(ring.keks)), ring.keks.copy()):
        assert isinstance(copied, KeyDict) and copied.others() == _walked(ring)
    ring.keks = {"k1": b"a" * 32, "~day:1:5": b"b" * 32, "d1ab": b"c" * 32}
    assert isinstance(ring.keks, KeyDict)
    same()
    ring.keks.clear()
    same()
    reloaded = KeyRing.load(path)
    assert isinstance(reloaded.keks, KeyDict)
    assert set(keydict.others(reloaded.keks)) == {k for k in reloaded.keks if not keychain.is_derived(k)}


def test_a_copy_keeps_an_index_of_its_own() -> None:
    """``copy.copy`` shared the original's index: a key added to the copy was listed by the original."""
    original = KeyDict({"k1": b"a", "d1x": b"b"})
    for duplicate in (copy.copy(original), original.copy()):
        duplicate.update({"k7": b"c"})
        assert original.others() == ["k1"] and duplicate.others() == ["k1", "k7"]
