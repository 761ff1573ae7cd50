"""A file written whole (``store.files.write_whole``) goes by a temporary name beside it first. What
someone put at that name before the write (a link to a file of theirs, a file open to everyone held
open to read it) never receives the secret, nor lends it its owner or its mode: the secret goes only
into a new file of mode 0600 made for it. A crash's own leftover is removed; a link, or another
account's file, is refused in one line naming it, and nothing is written."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.audit.signing import Signer
from store.keys.crypto import KeyRing

LINK = "a link to someone's file"
OPEN_FILE = "a file open to everyone"


def plant(at: Path, kind: str) -> Path:
    """Put ``kind`` at ``at``; returns the file that would receive what is written there."""
    if kind == LINK:
        target = at.with_name("someone-elses-file")
        target.write_bytes(b"")
        target.chmod(0o644)
        at.symlink_to(target)
        return target
    at.write_bytes(b"")
    at.chmod(0o666)
    return at


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def b64(secret: bytes) -> str:
    return base64.b64encode(secret).decode("ascii")


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize("kind", [LINK, OPEN_FILE])
def test_what_was_planted_at_the_key_files_temporary_name_never_receives_the_keys(tmp_path: Path, kind: str) -> None:
    """The key file is made anyway (its start-up removes whatever is at ``signpost.key.tmp``), mode
    0600, a file of its own holding the keys; the planted file, read through a handle opened
    before, holds nothing, and keeps its mode."""
    target = plant(tmp_path / "signpost.key.tmp", kind)
    with target.open("rb") as spy:
        ring = KeyRing.load_or_create(tmp_path / "signpost.key")
        assert spy.read().strip(b"\0") == b""
    path = tmp_path / "signpost.key"
    assert not path.is_symlink() and mode(path) == 0o600
    assert b64(ring.index_key) in path.read_text("utf-8")
    assert not os.path.lexists(tmp_path / "signpost.key.tmp")


def test_a_crash_leftover_at_a_signing_key_files_temporary_name_is_replaced_not_written_into(tmp_path: Path) -> None:
    """A file of Signpost's own account at ``signing.key.tmp``, open to everyone and held open by a
    reader: the seed goes into a new file of mode 0600, never into that one."""
    ring = KeyRing.load_or_create(tmp_path / "signpost.key")
    target = plant(tmp_path / "signing.key.tmp", OPEN_FILE)
    with target.open("rb") as spy:
        signer = Signer(ring, tmp_path / "signing.key")
        assert spy.read() == b"" and stat.S_IMODE(os.fstat(spy.fileno()).st_mode) == 0o666
    path = tmp_path / "signing.key"
    assert not path.is_symlink() and mode(path) == 0o600
    assert signer.can_sign and b64(signer.public) in path.read_text("utf-8")
    assert not os.path.lexists(tmp_path / "signing.key.tmp")


def test_a_link_at_a_signing_key_files_temporary_name_is_refused_and_the_seed_stays(tmp_path: Path) -> None:
    """A link at ``signing.key.tmp`` (never a name Signpost leaves): refused in one line naming it;
    the file it names gets nothing, no signing key file is made, and the seed stays in the key file."""
    ring = KeyRing.load_or_create(tmp_path / "signpost.key")
    target = plant(tmp_path / "signing.key.tmp", LINK)
    with pytest.raises(OSError, match=r"signing\.key\.tmp") as refused:
        Signer(ring, tmp_path / "signing.key")
    assert "\n" not in str(refused.value)
    assert target.read_bytes() == b"" and mode(target) == 0o644
    assert not os.path.lexists(tmp_path / "signing.key")
    assert (tmp_path / "signing.key.tmp").is_symlink()
    assert KeyRing.load(tmp_path / "signpost.key").signing_seed == ring.signing_seed


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file another account owns needs root")
def test_another_accounts_file_at_the_temporary_name_is_refused_and_gets_nothing(tmp_path: Path) -> None:
    """A file another account (nobody) made at ``signing.key.tmp``, open to everyone: refused (it is
    no leftover of Signpost's), its owner keeps it empty, and no signing key file is made."""
    ring = KeyRing.load_or_create(tmp_path / "signpost.key")
    target = plant(tmp_path / "signing.key.tmp", OPEN_FILE)
    os.chown(target, 65534, 65534)
    with pytest.raises(OSError, match=r"signing\.key\.tmp"):
        Signer(ring, tmp_path / "signing.key")
    assert target.read_bytes() == b"" and target.stat().st_uid == 65534 and mode(target) == 0o666
    assert not os.path.lexists(tmp_path / "signing.key")
