"""A key file whose content is malformed (a value of the wrong type, bad base64, a chain entry's name
Signpost never writes) is refused with ``KeyFileError`` in one line naming the problem, never a
crash, and never quoting a value (it may be a key)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store.keys import keychain
from store.keys.crypto import KeyFileError, KeyRing

Doc = dict[str, Any]

_B64_32 = base64.b64encode(bytes(range(32))).decode("ascii")
_B64_33 = base64.b64encode(bytes(range(33))).decode("ascii")

# The malformation, and the words that say what is wrong.
MALFORMED: dict[str, tuple[Callable[[Doc], object], str]] = {
    "index_key a number": (lambda d: d | {"index_key": 12345}, "index_key is not base64 text"),
    "index_key not base64": (lambda d: d | {"index_key": "not base64!"}, "index_key is not base64 text"),
    "index_key not ascii": (lambda d: d | {"index_key": "é" * 4}, "index_key is not base64 text"),
    "signing_seed null": (lambda d: d | {"signing_seed": None}, "signing_seed is not base64 text"),
    "signing_seed too short": (lambda d: d | {"signing_seed": "AAAA"}, "signing_seed is not a 32-byte key"),
    "signing_public a list": (lambda d: d | {"signing_public": []}, "signing_public is not base64 text"),
    "no index_key": (lambda d: {k: v for k, v in d.items() if k != "index_key"}, "it has no index_key"),
    "current_kek a number": (lambda d: d | {"current_kek": 1}, "current_kek is not text"),
    "keks a list": (lambda d: d | {"keks": []}, "keks is not a JSON object"),
    "a kek null": (lambda d: d | {"keks": d["keks"] | {"k2": None}}, "a key in keks is not base64 text"),
    "cohort_ids_from a word": (lambda d: d | {"cohort_ids_from": "x"}, "cohort_ids_from is not a whole number"),
    "cohort_ids_from null": (lambda d: d | {"cohort_ids_from": None}, "cohort_ids_from is not a whole number"),
    "a chain entry's cutoff not a number": (
        lambda d: d | {"keks": d["keks"] | {"~day:1:Qqx": "AAAA"}},
        "a key chain's entry has a name Signpost never writes",
    ),
    "a chain entry with two parts": (
        lambda d: d | {"keks": d["keks"] | {"~day:1": "AAAA"}},
        "a key chain's entry has a name Signpost never writes",
    ),
    "the whole file a list": (lambda d: [d], "it is not a JSON object"),
    "index_key too short": (lambda d: d | {"index_key": "AAAA"}, "index_key is not a 32-byte key"),
    "index_key too long": (lambda d: d | {"index_key": _B64_33}, "index_key is not a 32-byte key"),
    "signing_public too short": (lambda d: d | {"signing_public": "AAAA"}, "signing_public is not a 32-byte key"),
    "a kek too short": (lambda d: d | {"keks": d["keks"] | {"k1": "AAAA"}}, "a key in keks is not a 32-byte key"),
    "a chain state too short": (
        lambda d: d | {"keks": d["keks"] | {"~day:1:20000": "AAAA"}},
        "a key in keks is not a 32-byte key",
    ),
    "a chain state too long": (
        lambda d: d | {"keks": d["keks"] | {"~month:1:300": _B64_33}},
        "a key in keks is not a 32-byte key",
    ),
    "current_kek naming no key": (lambda d: d | {"current_kek": "nope"}, "current_kek names no key in keks"),
    "current_kek a key's value": (lambda d: d | {"current_kek": "AAAA"}, "current_kek names no key in keks"),
    "current_kek a chain's entry": (
        lambda d: d | {"keks": d["keks"] | {"~day:1:20000": _B64_32}, "current_kek": "~day:1:20000"},
        "current_kek names no key in keks",
    ),
}


def saved(tmp_path: Path) -> tuple[Path, Doc]:
    path = tmp_path / "signpost.key"
    KeyRing.generate(path).save()
    return path, json.loads(path.read_text("utf-8"))


@pytest.mark.parametrize("malformed", MALFORMED)
def test_a_malformed_value_is_refused_in_one_line_naming_the_problem(tmp_path: Path, malformed: str) -> None:
    path, doc = saved(tmp_path)
    edit, problem = MALFORMED[malformed]
    path.write_text(json.dumps(edit(doc)), "utf-8")
    with pytest.raises(KeyFileError) as refused:
        KeyRing.load(path)
    assert str(refused.value) == f"cannot read key file {path}: {problem}"
    secrets = [doc["index_key"], doc["signing_seed"], *doc["keks"].values()]
    assert not any(secret in str(refused.value) for secret in secrets)


def test_text_that_is_not_json_is_refused_in_one_line(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    path.write_text('{"index_key": ', "utf-8")
    with pytest.raises(KeyFileError, match=r"^cannot read key file .*: it is not JSON$"):
        KeyRing.load(path)


def test_a_chain_entry_naming_no_chain_is_refused_when_the_chains_are_read(tmp_path: Path) -> None:
    """``~nope:1:2`` has a chain entry's shape but names no chain: the key chain refuses it in one
    line (``states``, which every reading of the chains goes through), not with a ValueError."""
    path, doc = saved(tmp_path)
    path.write_text(json.dumps(doc | {"keks": doc["keks"] | {"~nope:1:2": _B64_32}}), "utf-8")
    ring = KeyRing.load(path)
    with pytest.raises(KeyFileError) as refused:
        keychain.generations(ring)
    assert str(refused.value) == f"cannot read key file {path}: a key chain's entry names no chain Signpost keeps"


def test_a_decommissioned_key_file_still_reads(tmp_path: Path) -> None:
    """Decommissioning leaves no current key, and emptying no index key: both still read."""
    path, doc = saved(tmp_path)
    path.write_text(json.dumps(doc | {"current_kek": "", "keks": {}, "index_key": "", "signing_seed": ""}), "utf-8")
    ring = KeyRing.load(path)
    assert (ring.current_kek_id, ring.index_key, len(ring.signing_public)) == ("", b"", 32)
