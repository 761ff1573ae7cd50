"""The key file is replaced durably: written 0600, flushed to disk, renamed, and the rename flushed."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from store.keys import keychain
from store.keys.crypto import KeyFileError, KeyRing, key_file_lock, remove_leftovers_if_able


def test_key_file_save_fsyncs_the_new_file_then_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Saving (as when retention destroys a key) syncs the new file before the rename and the folder
    after it, so a power loss cannot bring back the old file with a destroyed key in it; then the
    old file's zeros."""
    path = tmp_path / "signpost.key"
    ring = KeyRing.generate(path)
    ring.save()
    real_fsync, real_replace = os.fsync, os.replace
    steps: list[tuple[str, str]] = []

    def recording_fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def recording_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        steps.append(("rename", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    del ring.keks[ring.current_kek_id]  # a key destroyed
    ring.keks["k2"] = b"\x01" * 32
    ring.current_kek_id = "k2"
    ring.save()

    tmp = f"{path}.tmp"
    # Then the old file, no name left on it, is overwritten and flushed (its destroyed key with it).
    assert steps == [("fsync", tmp), ("rename", tmp), ("fsync", str(tmp_path)), ("fsync", f"{path} (deleted)")]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert list(json.loads(path.read_text("utf-8"))["keks"]) == ["k2"]
    assert not Path(tmp).exists()


def test_every_file_the_key_file_leaves_beside_it_is_ignored_by_git(tmp_path: Path) -> None:
    """``make run`` leaves no untracked file (issue 17 item 14): the key file, its lock and a half-written
    replacement are named in .gitignore, checked by git itself against what an edit really creates."""
    root = Path(__file__).resolve().parents[3]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    ring = KeyRing.generate(tmp_path / "signpost.key")
    ring.save()
    with keychain.editing(ring):
        pass
    made = sorted(path.name for path in tmp_path.iterdir())
    assert "signpost.key.lock" in made
    for name in {*made, "signpost.key.tmp", "signpost.key.4242.tmp"}:  # and older versions' name
        checked = subprocess.run(["git", "check-ignore", "--no-index", "-q", name], cwd=root, check=False)
        assert checked.returncode == 0, f"{name} is not in .gitignore"


def test_a_key_rings_repr_shows_none_of_its_secrets(tmp_path: Path) -> None:
    """A repr is what a traceback, a log line or a debugger shows: the generation and the file, no key."""
    ring = KeyRing.generate(tmp_path / "signpost.key")
    shown = repr(ring)
    assert "current_kek_id='k1'" in shown and "signpost.key" in shown
    for secret in (*ring.keks.values(), ring.index_key, ring.signing_seed):
        assert repr(secret)[2:12] not in shown and secret.hex()[:12] not in shown


def _open_fresh(path: str, start: Any, out: Any) -> None:
    start.wait()
    try:
        out.put(KeyRing.load_or_create(Path(path)).index_key)
    except Exception as exc:  # reported, so the test fails at once rather than waiting for it
        out.put(type(exc).__name__)


def test_processes_creating_a_fresh_key_file_at_once_all_get_the_one_on_disk(tmp_path: Path) -> None:
    """Replicas starting together on a fresh store each find no key file: exactly one is made, and
    every process uses it (a key ring another process overwrote would seal what nobody can open)."""
    path = tmp_path / "signpost.key"
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Event(), spawn.Queue()
    workers = [spawn.Process(target=_open_fresh, args=(str(path), start, out)) for _ in range(6)]
    for worker in workers:
        worker.start()
    start.set()
    got = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert set(got) == {KeyRing.load(path).index_key}
    # no half-written file left; the lock stays (an empty file, reused by every later edit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signpost.key", "signpost.key.lock"]


# -- forensic review: a crash while the key file is written leaves no copy of it behind ---------------

_KILLED_BEFORE_THE_RENAME = """
import os, signal, sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from store.keys import keychain
from store.keys.crypto import KeyRing, key_file_lock

ring = KeyRing.load(Path(sys.argv[1]))
os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)  # kill -9 just before the rename
with keychain.editing(ring) as fresh:
    del fresh.keks[fresh.current_kek_id]  # as retention destroying a key
"""


def _crash_while_saving(path: Path) -> None:
    """A real process killed (SIGKILL) with the new key file written and flushed, not yet renamed."""
    root = Path(__file__).resolve().parents[3]
    died = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_THE_RENAME, str(path)], cwd=root, check=False)
    assert died.returncode == -signal.SIGKILL


def _beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_a_key_file_copy_left_by_a_crash_is_overwritten_and_removed_when_the_key_file_is_next_opened(
    tmp_path: Path,
) -> None:
    """Killed just before the rename, an edit leaves its temporary copy (0600, every key as it was):
    the next start-up (``load_or_create``, under the lock) overwrites and removes it, and the copy
    older versions named by process id too; the key file itself is untouched."""
    path = tmp_path / "signpost.key"
    KeyRing.generate(path).save()
    before = path.read_bytes()
    old_style = tmp_path / "signpost.key.31337.tmp"
    shutil.copyfile(path, old_style)
    _crash_while_saving(path)
    assert "signpost.key.tmp" in _beside(path)  # what the crash left: a full copy of the key file
    kept = os.open(tmp_path / "signpost.key.tmp", os.O_RDONLY)  # as a backup agent holding it open
    try:
        KeyRing.load_or_create(path)
        assert _beside(path) == ["signpost.key", "signpost.key.lock"]
        assert os.read(kept, 4096).strip(b"\0") == b""  # its bytes were overwritten before the unlink
    finally:
        os.close(kept)
    assert path.read_bytes() == before


_KILLED_AFTER_THE_RENAME = """
import os, signal, sys
from pathlib import Path
from store.keys import keychain
from store.keys.crypto import KeyRing

ring = KeyRing.load(Path(sys.argv[1]))
rename = os.replace


def rename_then_die(src, dst):
    rename(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 once the new key file has its name, before the zeros


os.replace = rename_then_die
with keychain.editing(ring) as fresh:
    del fresh.keks[fresh.current_kek_id]  # as a rotation's last step destroying the old key
    fresh.keks["k2"] = bytes(range(32))
    fresh.current_kek_id = "k2"
"""


def test_a_key_file_replaced_by_an_edit_killed_after_the_rename_is_zeroed_when_the_key_file_is_next_opened(
    tmp_path: Path,
) -> None:
    """The forensic review's case: an edit killed -9 between the rename and the zeros over the file
    it replaced. A reader that had the old file open (a backup agent mid-copy) kept every destroyed
    key for ever. The old file keeps a leftover name until the zeros are done, so the next start-up
    (``load_or_create``, under the lock) zeroes it through that name and removes it."""
    path = tmp_path / "signpost.key"
    KeyRing.generate(path).save()
    held = os.open(path, os.O_RDONLY)  # as a backup agent reading it when the edit comes
    try:
        root = Path(__file__).resolve().parents[3]
        died = subprocess.run([sys.executable, "-c", _KILLED_AFTER_THE_RENAME, str(path)], cwd=root, check=False)
        assert died.returncode == -signal.SIGKILL
        assert list(json.loads(path.read_text("utf-8"))["keks"]) == ["k2"]  # the edit's file has the name
        KeyRing.load_or_create(path)
        assert os.pread(held, 1 << 16, 0).strip(b"\0") == b""
    finally:
        os.close(held)
    assert _beside(path) == ["signpost.key", "signpost.key.lock"]


def test_the_next_key_file_edit_removes_a_crashs_copy(tmp_path: Path) -> None:
    """A running process's next edit of the key file (a retention puncture, a rotation,
    decommissioning) removes the copy a crashed process left, before it writes its own."""
    path = tmp_path / "signpost.key"
    ring = KeyRing.generate(path)
    ring.save()
    _crash_while_saving(path)
    with keychain.editing(ring):
        assert _beside(path) == ["signpost.key", "signpost.key.lock"]
    assert _beside(path) == ["signpost.key", "signpost.key.lock"]


def test_a_leftover_name_of_the_key_file_itself_is_unlinked_never_overwritten(tmp_path: Path) -> None:
    """A crash between publishing a new key file (a hard link) and unlinking its temporary name
    leaves a second name of the key file itself: it is unlinked, and the key file keeps its bytes.
    A signing key file named after the key file is written outside the key file's lock: its
    temporary file is not the key file's to remove."""
    path = tmp_path / "signpost.key"
    KeyRing.generate(path).save()
    before = path.read_bytes()
    os.link(path, tmp_path / "signpost.key.tmp")
    (tmp_path / "signpost.key.signing.tmp").write_text("being written by Signer.destroy")
    assert KeyRing.load_or_create(path).keks
    assert _beside(path) == ["signpost.key", "signpost.key.lock", "signpost.key.signing.tmp"]
    assert path.read_bytes() == before


def test_a_replaced_name_of_the_key_file_itself_is_unlinked_never_overwritten(tmp_path: Path) -> None:
    """An edit killed between giving the key file it replaces its leftover name and the rename leaves
    that name on the key file itself: the next start-up unlinks it, and the key file keeps its bytes."""
    path = tmp_path / "signpost.key"
    KeyRing.generate(path).save()
    before = path.read_bytes()
    os.link(path, tmp_path / "signpost.key.replaced.tmp")
    assert KeyRing.load_or_create(path).keks
    assert _beside(path) == ["signpost.key", "signpost.key.lock"]
    assert path.read_bytes() == before


def test_a_named_pipe_at_the_leftover_name_is_removed_without_waiting_for_a_reader(tmp_path: Path) -> None:
    """Start-up overwrites a crash's leftover copy before removing it. Something that is not a
    regular file at that name (a named pipe, which an open for writing would wait on for ever) is
    removed without being opened, and the key file opens."""
    path = tmp_path / "signpost.key"
    KeyRing.generate(path).save()
    os.mkfifo(tmp_path / "signpost.key.tmp")
    opened: list[KeyRing] = []
    loader = threading.Thread(target=lambda: opened.append(KeyRing.load_or_create(path)), daemon=True)
    loader.start()
    loader.join(timeout=60)  # a hang guard, not a timing: the open returns at once or never
    if loader.is_alive():
        with open(tmp_path / "signpost.key.tmp", "rb"):  # let the stuck open through, so the thread ends
            pass
        pytest.fail("opening the key file waited on a named pipe left at its temporary name")
    assert opened and opened[0].keks
    assert _beside(path) == ["signpost.key", "signpost.key.lock"]


def test_a_folder_at_the_leftover_name_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    """Nothing Signpost writes is a folder: one at the key file's temporary name is not removed
    (it may hold someone's files) but named, with what to do, where before every start failed
    with an IsADirectoryError."""
    path = tmp_path / "signpost.key"
    KeyRing.generate(path).save()
    (tmp_path / "signpost.key.tmp").mkdir()
    with pytest.raises(KeyFileError) as refused:
        KeyRing.load_or_create(path)
    said = str(refused.value)
    assert "signpost.key.tmp" in said and "move it away" in said and "\n" not in said
    (tmp_path / "signpost.key.tmp").rmdir()
    assert KeyRing.load_or_create(path).keks


def test_saving_the_key_file_leaves_no_temporary_file_even_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A normal save leaves only the key file; a save whose rename fails leaves no copy either."""
    path = tmp_path / "signpost.key"
    ring = KeyRing.generate(path)
    ring.save()
    with keychain.editing(ring):
        pass
    assert _beside(path) == ["signpost.key", "signpost.key.lock"]

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        ring.save()
    assert _beside(path) == ["signpost.key", "signpost.key.lock"]


def test_a_key_file_reached_through_a_symbolic_link_is_punctured_in_the_file_it_names(tmp_path: Path) -> None:
    """SIGNPOST_KEY_FILE naming a link to where secrets are kept (`signpost.key -> /srv/secrets/…`):
    each edit replaced the link with a new file and left the file it named as it was, so the
    birth-date key a retention run destroyed (and after `keys rotate` the old master key, after
    decommissioning every key) stayed in the secrets folder, and a deployment that put its link
    back brought the destroyed key back. The file the link names is replaced instead; the link stays."""
    secrets_folder = tmp_path / "secrets"
    secrets_folder.mkdir()
    target = secrets_folder / "signpost.key"
    link = tmp_path / "signpost.key"
    KeyRing.generate(target).save()
    link.symlink_to(target)
    ring = KeyRing.load_or_create(link)
    today = date(2026, 11, 3)
    keychain.ensure_chains(ring, today)
    born = keychain.first_retained_dob(today)
    destroyed = keychain.cohort_key(ring, born, today)
    assert destroyed is not None
    keychain.puncture(ring, keychain.Chain.DAY, keychain.day_slot(born) + 1, today)

    assert link.is_symlink() and link.resolve() == target
    for copy in (KeyRing.load(target), KeyRing.load(link)):
        keychain.install(copy, today)
        assert destroyed not in copy.keks and keychain.punctured(copy, keychain.day_slot(born))
    assert _beside(target) == ["signpost.key", "signpost.key.lock"]  # no copy of it: only its lock


def test_the_key_file_a_puncture_replaces_is_overwritten_once_no_name_is_left_on_it(tmp_path: Path) -> None:
    """A puncture writes a new key file and renames it over the old one, whose bytes (the chain
    state that derives the destroyed birth-date key) stayed readable through any handle still open
    on it (a host backup agent mid-copy, as a crash's leftover copy is) and in the disk's freed
    blocks. They are overwritten once the rename has left them no name; a second name an operator
    made on purpose (a hard link: a key-file copy, README) is theirs to expire, and left as it is."""
    path = tmp_path / "signpost.key"
    ring = KeyRing.generate(path)
    ring.save()
    today = date(2026, 11, 3)
    keychain.ensure_chains(ring, today)
    born = keychain.first_retained_dob(today)
    held = os.open(path, os.O_RDONLY)  # as a backup agent reading it when the puncture comes
    try:
        keychain.puncture(ring, keychain.Chain.DAY, keychain.day_slot(born) + 1, today)
        assert os.pread(held, 1 << 16, 0).strip(b"\0") == b""
    finally:
        os.close(held)
    kept = tmp_path / "operator-copy.key"
    os.link(path, kept)
    before = kept.read_bytes()
    keychain.puncture(ring, keychain.Chain.DAY, keychain.day_slot(born) + 2, today)
    assert kept.read_bytes() == before


def test_a_key_file_read_as_another_process_replaces_it_reads_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas read the key file without its lock (retention takes the chains as they are now): one
    that opened it just before another's puncture renamed the new file in reads the old file's
    zeros, and reads the name again rather than refuse the key file as unreadable."""
    path = tmp_path / "signpost.key"
    ring = KeyRing.generate(path)
    ring.save()
    real_open = Path.open
    raced: list[Path] = []

    def opened_then_replaced(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self != path or raced:
            return real_open(self, *args, **kwargs)
        raced.append(self)
        handle = real_open(self, *args, **kwargs)
        with keychain.editing(ring) as fresh:  # another process's edit, between the open and the read
            fresh.keks["k2"] = b"\x02" * 32
        return handle

    monkeypatch.setattr(Path, "open", opened_then_replaced)
    assert "k2" in KeyRing.load(path).keks and raced


def test_a_key_file_named_by_a_link_and_by_its_own_name_is_edited_under_one_lock(tmp_path: Path) -> None:
    """A server given the link and a cron job given the file itself each took a lock beside the name
    they were given: two locks, so an edit read before the other's puncture could write the
    destroyed key back. Both take the lock beside the file itself (``<file>.lock``)."""
    (tmp_path / "secrets").mkdir()
    target = tmp_path / "secrets" / "signpost.key"
    KeyRing.generate(target).save()
    link = tmp_path / "signpost.key"
    link.symlink_to(target)
    with key_file_lock(link), open(f"{target}.lock", "a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


# -- forensic review F3: the key file's lock is Signpost's alone ---------------------------------------


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Umask 000: a file made without a mode of its own is open to every account on the host."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.usefixtures("no_umask")
def test_the_key_files_lock_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """Made 0600 (under umask 000 it was 0666: any account could take it and stall every key file
    write, retention's destruction of keys among them); one an older version left open is made 0600."""
    path = tmp_path / "signpost.key"
    KeyRing.load_or_create(path)
    lock = tmp_path / "signpost.key.lock"
    assert _mode(lock) == 0o600
    lock.chmod(0o666)
    with key_file_lock(path):
        assert _mode(lock) == 0o600


@pytest.mark.usefixtures("no_umask")
@pytest.mark.parametrize("dangling", [False, True])
def test_a_link_at_the_key_files_lock_is_refused_in_one_line_and_nothing_written_through_it(
    tmp_path: Path, dangling: bool
) -> None:
    """A link at ``signpost.key.lock`` (to someone's file, or to nothing yet) is refused in one line
    naming it: the file it names is neither made nor changed, and no key file is written."""
    target = tmp_path / "someone-elses-file"
    if not dangling:
        target.write_bytes(b"theirs")
        target.chmod(0o644)
    lock = tmp_path / "signpost.key.lock"
    lock.symlink_to(target)
    with pytest.raises(KeyFileError) as refused:
        KeyRing.load_or_create(tmp_path / "signpost.key")
    said = str(refused.value)
    assert "signpost.key.lock" in said and "a link" in said and "\n" not in said
    assert lock.is_symlink() and not (tmp_path / "signpost.key").exists()
    if dangling:
        assert not target.exists()
    else:
        assert target.read_bytes() == b"theirs" and _mode(target) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other accounts needs root")
def test_an_operator_running_as_another_account_is_told_to_run_as_the_key_files_owner(tmp_path: Path) -> None:
    """`sudo signpost keys rotate` against the service account's key file: taking its lock let the
    rotation write the key file as root, which the service could then not read, the old keys left
    in it (review). Refused before anything, in one line saying whose account to run it as."""
    path = tmp_path / "signpost.key"
    KeyRing.load_or_create(path)
    lock = tmp_path / "signpost.key.lock"
    service = 65534
    os.chown(path, service, service)
    os.chown(lock, service, service)
    before = path.read_bytes()
    with pytest.raises(KeyFileError) as refused, key_file_lock(path):
        pass
    said = str(refused.value)
    assert "signpost.key.lock" in said and "another account" in said and "\n" not in said
    assert path.read_bytes() == before and path.stat().st_uid == service


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other accounts needs root")
def test_a_look_that_only_reads_leaves_another_accounts_leftovers_and_says_which(tmp_path: Path) -> None:
    """`signpost db check` by an auditor's account: the key file's lock is the service account's, so
    the copy a write cut short left is neither zeroed nor removed, and is returned for the check to
    say; the account that runs Signpost zeroes and removes it. A link at the lock's name is still
    refused."""
    path = tmp_path / "signpost.key"
    KeyRing.load_or_create(path)
    lock = tmp_path / "signpost.key.lock"
    left = tmp_path / "signpost.key.replaced.tmp"
    left.write_bytes(path.read_bytes())
    service = 65534
    os.chown(lock, service, service)
    assert remove_leftovers_if_able(path) == [left]
    assert left.read_bytes() == path.read_bytes() and lock.stat().st_uid == service
    os.chown(lock, os.geteuid(), os.getegid())
    assert remove_leftovers_if_able(path) == []
    assert _beside(path) == ["signpost.key", "signpost.key.lock"]
    lock.unlink()
    lock.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileError, match=r"signpost\.key\.lock"):
        remove_leftovers_if_able(path)
    assert not (tmp_path / "elsewhere").exists()


def test_a_key_file_larger_than_any_key_file_is_refused_unread(tmp_path: Path) -> None:
    """A key file is a few kilobytes (a key a rotation): one over ``MAX_KEY_FILE`` is refused in a
    line naming it, never read whole into memory."""
    from store.keys.crypto import MAX_KEY_FILE

    path = tmp_path / "signpost.key"
    path.write_bytes(b" " * (MAX_KEY_FILE + 1))
    with pytest.raises(KeyFileError, match=r"^key file .*signpost\.key is too large for a key file \(over 1 MiB\)$"):
        KeyRing.load(path)


def test_a_device_named_as_the_key_file_is_refused_unread(tmp_path: Path) -> None:
    """SIGNPOST_KEY_FILE=/dev/zero was read until memory ran out; a named pipe would hang."""
    fifo = tmp_path / "signpost.key"
    os.mkfifo(fifo)
    for named in (Path("/dev/zero"), fifo):
        with pytest.raises(KeyFileError, match=f"^key file {named} is not a regular file$"):
            KeyRing.load(named)


def test_a_leftover_name_that_is_a_second_name_of_another_file_is_removed_never_zeroed(tmp_path: Path) -> None:
    """A hard link planted at the key file's leftover name (here to a file standing for a signing
    key file) is a name on someone else's file: the lock removes the name and leaves the file's bytes
    (review: it zeroed them), as the rename's own clean-up leaves a file that keeps another name."""
    key = tmp_path / "signpost.key"
    KeyRing.generate(key)
    other = tmp_path / "signpost.key.signing"
    other.write_bytes(b"someone else's bytes")
    planted = tmp_path / "signpost.key.replaced.tmp"
    os.link(other, planted)
    with key_file_lock(key):
        pass
    assert not planted.exists()
    assert other.read_bytes() == b"someone else's bytes"
