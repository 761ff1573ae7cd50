"""Files written whole: made durable (the bytes, then the folder's entry) and given their name
only once complete, so that a crash, a kill or a full disk part-way never leaves a cut-short file
under it (a key file, an audit checkpoint note, a certificate or package the operator named)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o600
"""Files holding secrets or personal data: readable and writable by their owner only."""


def make_private(path: Path) -> None:
    """Take group's and others' access to ``path`` away when it is found with some (left so by an
    older version, or put back by hand under a usual umask, 022, which makes it readable by every
    account on the host): 0644 becomes 0600, and a file its owner made read-only (0400) stays so. A
    missing file is left missing."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
    except FileNotFoundError:
        pass


def fsync_directory(folder: Path) -> None:
    """Make a rename or creation in ``folder`` durable (its directory entry reaches the disk)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_for(path: Path) -> Path:
    """The one name a file Signpost writes (a certificate, a Teams package, a secret file, a
    checkpoint note) goes by until it is whole: hidden beside it, ``.<name>.partial``, so that a
    listing of the folder, or a glob for ``*.json``, never picks up a file cut short."""
    return path.with_name(f".{path.name}.partial")


def write_whole(
    path: Path,
    data: bytes,
    *,
    through: Path | None = None,
    mode: int = 0o644,
    replace: bool = True,
    shred: Path | None = None,
) -> bool:
    """Give ``path`` the bytes ``data`` whole or not at all: written and flushed to the disk under
    ``through`` (same folder; ``temporary_for(path)`` unless the file keeps a name of its own, as
    the key file's ``.tmp``, whose leftovers are zeroed), then renamed (``replace``) or linked (not
    ``replace``: never over an existing file, returning False when ``path`` exists), the rename made
    durable before this returns. A process killed part-way (kill -9) leaves at most ``through``, never a cut-short
    ``path``; ``through`` is removed whatever happened here. With ``shred`` (a key file), the file
    the rename replaced is overwritten with zeros once no name is left on it (``overwrite``); until
    then it keeps the name ``shred`` (same folder, a leftover name the key file's next opening zeroes
    and removes), so that a kill between the rename and the zeros never leaves it, and what any
    reader holding it open (a backup agent mid-copy) can read, beyond reach for ever.

    The bytes go only into a file made here for them, of ``mode`` from the start: never into what
    was at ``through`` before (``take_temporary``), which anyone able to write the folder may have
    put there (a link to a file of theirs, a file of theirs open to everyone)."""
    through = temporary_for(path) if through is None else through
    replaced = _open_replaced(path) if replace and shred is not None else None
    aside = _keep_aside(path, replaced, shred) if replaced is not None and shred is not None else None
    made: tuple[int, int] | None = None
    try:
        fd = take_temporary(through, mode)
        with os.fdopen(fd, "wb") as handle:
            info = os.fstat(fd)
            made = (info.st_dev, info.st_ino)
            os.fchmod(fd, mode)  # the umask may have taken some of it away
            handle.write(data)
            handle.flush()
            os.fsync(fd)
        if not _names(through, made):  # another write of the same name removed ours meanwhile
            raise OSError(errno.EBUSY, f"another write took its temporary name {through.name} meanwhile", str(through))
        if replace:
            os.replace(through, path)
        else:
            try:
                os.link(through, path, follow_symlinks=False)  # atomic, and never over an existing file
            except FileExistsError:
                return False
    except BaseException:
        if replaced is not None:
            os.close(replaced)
        if aside is not None:  # not replaced: the name is a second one of the file there, never zeroed
            with contextlib.suppress(FileNotFoundError):
                aside.unlink()
        raise
    finally:
        if made is not None and _names(through, made):  # ours only: what was planted there is left
            through.unlink()  # after link: a second name of the file itself, never overwritten
    try:
        fsync_directory(path.parent)
    finally:  # the rename is done: the file it replaced is nameless whether or not that reached the disk
        if replaced is not None:
            _shred_if_nameless(replaced, aside)
    return True


_NEW_ONLY = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def take_temporary(through: Path, mode: int) -> int:
    """A new, empty file at ``through`` open for writing, made with ``mode`` (O_EXCL: never one that
    was there, nor through a link). A write cut short earlier may have left one of Signpost's own
    there: a regular file of this account, which is unlinked first (its name only: a reader holding
    it keeps what it had, and never sees what is written now). Anything else there is refused
    (``refuse_a_taken_temporary``)."""
    try:
        return os.open(through, _NEW_ONLY, mode)
    except FileExistsError:
        refuse_a_taken_temporary(through)
        with contextlib.suppress(FileNotFoundError):
            through.unlink()
        return os.open(through, _NEW_ONLY, mode)


def refuse_a_taken_temporary(through: Path) -> None:
    """FileExistsError, in one line naming ``through``, when something Signpost never leaves there
    is at that temporary name: a link (dangling or not), a folder or other special file, or a file
    of another account. Nothing there, or a leftover of a write of ours cut short, passes."""
    _refuse_a_stranger(through, "its temporary name")


_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def names_open_file(path: Path, fd: int) -> bool:
    """Whether ``path`` names the file open as ``fd`` (not a link, nor one put there since): a lock
    taken on a file its holder removed as it let go is no lock on the file there now."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def open_lock_file(path: Path) -> int:
    """The lock file at ``path`` open for ``flock`` (made if missing), owner-only (``PRIVATE_MODE``)
    whatever the umask: an account that can open a lock file can hold it, and stall every write it
    guards. Never opened through a link: a link there (dangling or not), a special file or another
    account's file is refused in one line (``FileExistsError``), nothing made or written through
    it. One an older version left open to others (made under the umask) is made private."""
    try:
        fd = os.open(path, _LOCK, PRIVATE_MODE)
    except OSError:
        _refuse_a_stranger(path, "its lock file")  # a link (ELOOP), a folder, another's file
        raise
    try:
        found = os.fstat(fd)
        if _stranger(found) is not None:  # a special file, or another account's open to all
            _refuse_a_stranger(path, "its lock file", found)
        if stat.S_IMODE(found.st_mode) & 0o077:
            os.fchmod(fd, PRIVATE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _stranger(found: os.stat_result) -> str | None:
    """What is at a name Signpost keeps, when it is not what Signpost leaves there (a regular file of
    this account); None when it is."""
    if stat.S_ISREG(found.st_mode) and found.st_uid == os.geteuid():
        return None
    return "a link" if stat.S_ISLNK(found.st_mode) else "something Signpost did not leave there"


def _refuse_a_stranger(path: Path, called: str, found: os.stat_result | None = None) -> None:
    """FileExistsError in one line naming ``path`` (``called`` says what it is to Signpost) when
    something else than Signpost's own regular file is there (``found``, else looked at now)."""
    if found is None:
        try:
            found = path.lstat()
        except FileNotFoundError:
            return
    what = _stranger(found)
    if what is None:
        return
    if stat.S_ISREG(found.st_mode):  # a file of another account: most likely the service's own
        said = (
            f"{called} {path.name} belongs to another account (uid {found.st_uid}): run signpost as that "
            "account (the one that runs Signpost), so that every file it writes stays that account's"
        )
    else:
        said = f"{called} {path.name} is taken by {what}: find out who put it there, remove it and try again"
    raise FileExistsError(errno.EEXIST, said, str(path))


def _names(through: Path, made: tuple[int, int]) -> bool:
    """Whether ``through`` still names the file ``made`` (device, inode), and not a link or another."""
    try:
        found = through.lstat()
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == made


def _open_replaced(path: Path) -> int | None:
    """A handle on the regular file at ``path`` that a rename is about to replace (None: none there)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # none there (or not ours to open): nothing to overwrite
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _keep_aside(path: Path, replaced: int, aside: Path) -> Path | None:
    """A second name, ``aside``, on the file ``replaced`` (open, at ``path``), made before the rename
    replaces it: what a kill before its zeros leaves for the next opening to zero. What a crash left
    at ``aside`` goes first: zeroed unless it is the file at ``path`` itself (a crash between this
    link and the rename). None when no such name could be made (a filesystem without hard links):
    the zeros then come only from this process."""
    try:
        if not _same_file(aside, path):
            overwrite_leftover(aside)
        with contextlib.suppress(FileNotFoundError):
            aside.unlink()
        os.link(path, aside, follow_symlinks=False)
    except OSError:
        return None
    opened = os.fstat(replaced)
    if not _names(aside, (opened.st_dev, opened.st_ino)):  # replaced by another meanwhile: not ours
        with contextlib.suppress(FileNotFoundError):
            aside.unlink()
        return None
    return aside


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except FileNotFoundError:
        return False


def _shred_if_nameless(fd: int, aside: Path | None = None) -> None:
    """Zeros over a replaced file's bytes once no name is left on it but ``aside`` (ours, removed
    after the zeros; a name someone else made, a hard link, is theirs), then the handle closed: what
    a filesystem lets us do, so that its freed blocks and any handle still open on it (a backup
    agent mid-copy) hold nothing."""
    try:
        opened = os.fstat(fd)
        ours = aside if aside is not None and _names(aside, (opened.st_dev, opened.st_ino)) else None
        if opened.st_nlink == (0 if ours is None else 1):
            overwrite(fd)
        if ours is not None:  # zeroed (or another name left on it, not ours to zero): our name goes,
            ours.unlink()  # unflushed: a power loss brings it back zeroed, for the next opening to remove
    finally:
        os.close(fd)


def overwrite_leftover(leftover: Path) -> None:
    """Zeros over the regular file at ``leftover`` (a copy a crash left), flushed: never through a
    link put there, and never a named pipe or device (opening a pipe for writing would wait for a
    reader for ever). Nothing there, or nothing to zero, passes."""
    try:
        fd = os.open(leftover, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            return  # a link or a pipe no one reads, a folder: nothing to zero
        raise
    try:
        info = os.fstat(fd)
        # A second name on it is someone else's (a hard link planted there to a file of theirs, a
        # signing key's): only this name goes (unlinked by the caller), as ``_shred_if_nameless`` does.
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            overwrite(fd)
    finally:
        os.close(fd)


def overwrite(fd: int) -> None:
    """Zeros over every byte of the open file ``fd``, flushed to the disk."""
    size = os.fstat(fd).st_size
    os.pwrite(fd, b"\0" * size, 0)
    os.fsync(fd)
