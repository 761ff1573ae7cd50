"""A child's identity comes back from its sealed form exactly as it went in, every field in its
place: ``decode_identity`` builds ``Identity`` by position (a search decodes every candidate), so a
field added or moved in ``Identity`` must not land a postcode in ``sex`` unnoticed."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from store.register.children import decode_identity, encode_identity
from store.register.terms import Identity

IDENTITIES = (
    Identity("Amelia Rose", "Thornton", ("Amy Thornton-Hale",), date(2014, 4, 3), "F", "M1 2AB"),
    Identity("Zoë", "O'Neill", (), date(2010, 12, 31), None, None),
    Identity("Jack", "Smith Patel", ("Jake Patel", "J Smith"), date(2020, 2, 29), "M", "B15"),
)


@pytest.mark.parametrize("identity", IDENTITIES)
def test_an_identity_decodes_to_exactly_what_was_encoded(identity: Identity) -> None:
    assert decode_identity(encode_identity(identity).encode()) == identity


def test_every_field_of_identity_is_carried_in_its_own_place() -> None:
    """Each field given a value no other field has: a value decoded into the wrong field fails."""
    fields = [field.name for field in dataclasses.fields(Identity)]
    assert fields == ["given_names", "family_name", "aliases", "date_of_birth", "sex", "postcode"]
    identity = Identity("Given", "Family", ("An Alias",), date(2015, 6, 7), "X", "ZZ9 9ZZ")
    decoded = decode_identity(encode_identity(identity).encode())
    assert {name: getattr(decoded, name) for name in fields} == {name: getattr(identity, name) for name in fields}
