"""Blind index values: the precomputed HMAC pads give exactly ``hmac.digest``'s values."""

from __future__ import annotations

import hmac
import os
import random

import pytest

from store.keys.crypto import KeyRing


def _reference(key: bytes, term: str) -> int:
    return int.from_bytes(hmac.digest(key, term.encode("utf-8"), "sha256")[:8], "big", signed=True)


@pytest.mark.parametrize("key_size", [32, 16, 64, 65, 100])
def test_blind_is_hmac_sha256_of_the_term(key_size: int) -> None:
    ring = KeyRing.generate()
    ring.index_key = os.urandom(key_size)
    rng = random.Random(key_size)
    terms = ["", "ym:AM|JNS|2014-04", "dob:2014-04-03", "n:ZÖ|2019-01-01"]
    terms += ["".join(rng.choice("AMJ|:-0123 éß") for _ in range(rng.randrange(60))) for _ in range(500)]
    for term in terms:
        assert ring.blind(term) == _reference(ring.index_key, term)


def test_a_replaced_index_key_is_used_at_once() -> None:
    ring = KeyRing.generate()
    before = ring.blind("n:AM|2014-04-03")
    ring.index_key = os.urandom(32)
    assert ring.blind("n:AM|2014-04-03") == _reference(ring.index_key, "n:AM|2014-04-03") != before


def test_rings_with_the_same_keys_stay_equal_once_used() -> None:
    ring = KeyRing.generate()
    twin = KeyRing(dict(ring.keks), ring.current_kek_id, ring.index_key, ring.signing_seed, cohort_ids_from=1)
    ring.blind("x")
    assert ring == twin
