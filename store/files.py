"""Files written whole: made durable (the bytes, then the folder's entry) and given their name
only once complete, so that a crash, a kill or a full disk part-way never leaves a cut-short file
under it (a key file, an audit checkpoint note, a certificate or package the operator named)."""

from __future__ import annotations

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


def write_whole(
    path: Path, data: bytes, *, through: Path, mode: int = 0o644, replace: bool = True, shred: bool = False
) -> bool:
    """Give ``path`` the bytes ``data`` whole or not at all: written and flushed to the disk under
    ``through`` (same folder), then renamed (``replace``) or linked (not ``replace``: never over an
    existing file, returning False when ``path`` exists), the rename made durable before this
    returns. A process killed part-way (kill -9) leaves at most ``through``, never a cut-short
    ``path``; ``through`` is removed whatever happened here. With ``shred`` (a key file), the file
    the rename replaced is overwritten with zeros once no name is left on it (``overwrite``)."""
    replaced = _open_replaced(path) if replace and shred else None
    try:
        fd = os.open(through, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(through, mode)
        if replace:
            os.replace(through, path)
        else:
            try:
                os.link(through, path)  # atomic, and never over an existing file
            except FileExistsError:
                return False
    except BaseException:
        if replaced is not None:
            os.close(replaced)
        raise
    finally:
        through.unlink(missing_ok=True)  # after link: a second name of the file itself, never overwritten
    try:
        fsync_directory(path.parent)
    finally:  # the rename is done: the file it replaced is nameless whether or not that reached the disk
        if replaced is not None:
            _shred_if_nameless(replaced)
    return True


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


def _shred_if_nameless(fd: int) -> None:
    """Zeros over a replaced file's bytes once no name is left on it (a name someone else made, a
    hard link, is theirs), then the handle closed: what a filesystem lets us do, so that its freed
    blocks and any handle still open on it (a backup agent mid-copy) hold nothing."""
    try:
        if os.fstat(fd).st_nlink == 0:
            overwrite(fd)
    finally:
        os.close(fd)


def overwrite(fd: int) -> None:
    """Zeros over every byte of the open file ``fd``, flushed to the disk."""
    size = os.fstat(fd).st_size
    os.pwrite(fd, b"\0" * size, 0)
    os.fsync(fd)
