"""Keys and encryption.

- The key-encryption key (KEK) lives in a key file outside the store; it wraps every data key.
- Each child has its own data key (AES-256-GCM) with the child reference bound in as associated
  data; destroying that wrapped key destroys the child's identity in every copy of the store.
- Blind indexes are keyed HMACs (64 bits kept) of normalised terms, so the store can find a child
  without holding any plain identity field: a child's index terms under its birth day's or birth
  year's term key (``store.keys.term_keys``), name counts and row fingerprints under the index key.
"""

from __future__ import annotations

import base64
import fcntl
import glob
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from store.files import fsync_directory, make_private, names_open_file, open_lock_file, overwrite_leftover, write_whole
from store.keys.keydict import KeyDict
from store.keys.term_keys import TermKeys

NONCE_BYTES = 12
KEY_BYTES = 32
_SHA256_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))  # HMAC's key pads (RFC 2104), as translation tables
_OPAD = bytes(b ^ 0x5C for b in range(256))


class KeyFileError(Exception):
    """The key file is missing, unreadable or malformed."""


class DecryptionError(Exception):
    """Ciphertext did not authenticate: wrong key, wrong associated data, or tampering."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Malformed(ValueError):
    """What is wrong with a key file's content, in words that quote none of it (a value may be a key)."""


# A key chain's entry: ``~chain:generation:cutoff`` (``keychain.ChainState.entry_id``), in ASCII
# digits; the chain's name is the key chain's to check (``keychain.states``).
_CHAIN_ENTRY = re.compile(r"~[a-z]+:[0-9]+:[0-9]+")


def _fields(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{what} is not a JSON object")
    return value


def _field(doc: dict[str, Any], name: str) -> object:
    if name not in doc:
        raise _Malformed(f"it has no {name}")
    return doc[name]


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{what} is not text")
    return value


def _secret(value: object, what: str) -> bytes:
    """A key file's base64 value, as bytes."""
    try:
        return base64.b64decode(_text(value, what).encode("ascii"), validate=True)
    except ValueError:  # not text, not ASCII (UnicodeEncodeError), not base64 (binascii.Error)
        raise _Malformed(f"{what} is not base64 text") from None


def _key(value: object, what: str, *, empty: bool = False) -> bytes:
    """A key file's key (or chain state): ``KEY_BYTES`` of base64, or nothing where ``empty`` allows
    (what decommissioning destroyed). A key of any other length wraps nothing this store wrapped and
    derives no key its chains did, and reading on would take every child it cannot open for destroyed."""
    key = _secret(value, what)
    if len(key) != KEY_BYTES and not (empty and not key):
        raise _Malformed(f"{what} is not a {KEY_BYTES}-byte key")
    return key


def _whole(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():  # as int() took it before
        return int(value)
    raise _Malformed(f"{what} is not a whole number")


def _kek_name(name: str) -> str:
    if name[:1] == "~" and _CHAIN_ENTRY.fullmatch(name) is None:
        raise _Malformed("a key chain's entry has a name Signpost never writes")
    return name


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM encrypt; returns nonce || ciphertext+tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise DecryptionError("ciphertext did not authenticate") from None


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A child's data key as stored (``child_keys``): still wrapped under its cohort key."""

    ref: int
    kek_id: str
    wrapped: bytes


def child_aad(child_ref: int) -> bytes:
    return b"signpost:child:%d" % child_ref


def child_terms_aad(child_ref: int) -> bytes:
    """Associated data of audit terms and access purposes sealed under a child's data key."""
    return b"audit-terms:" + child_aad(child_ref)


def relay_aad(child_ref: int, part: str) -> bytes:
    """Associated data of a blind relay's ``part`` ("message" or "reply") sealed under a child's data key."""
    return child_aad(child_ref) + b":relay:" + part.encode()


@dataclass
class KeyRing:
    """Every secret Signpost holds outside its database."""

    # The secrets never show in a repr (a log line, a traceback, a debugger's summary).
    keks: dict[str, bytes] = field(repr=False)
    current_kek_id: str
    index_key: bytes = field(repr=False)
    signing_seed: bytes = field(repr=False)
    path: Path | None = None
    # The checkpoint key's public half, kept when decommissioning destroys the seed (or when the seed
    # moves to a signing key file of its own) so that the audit stays verifiable: not a secret.
    signing_public: bytes = b""
    # The first key generation whose birth-date KEK ids carry a tag of the day's term-chain state
    # (``keychain.chained_ids``), which dies with the cohort; 0: every generation's carry a hash of
    # the day under ``index_key``, which is never destroyed (key files made before 2026-12-05, until
    # ``signpost keys rotate`` moves them). Saved in the key file.
    cohort_ids_from: int = 0
    # Birth-date cohort tags by day slot, derived from the term chain (``keychain.install``); never saved.
    day_tags: dict[int, str] = field(default_factory=dict, repr=False, compare=False)
    _index_cache: dict[str, int] = field(default_factory=dict, repr=False)
    # Blind-index term keys derived from the key file's term chain (``keychain.install``); never saved.
    term_keys: TermKeys = field(default_factory=TermKeys.none, repr=False, compare=False)
    # HMAC-SHA256 under ``index_key`` with its two padded key blocks hashed once (``_blinder``).
    _blind_pads: tuple[bytes, Any, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:  # whatever dict is given, keks is indexed
        object.__setattr__(self, name, KeyDict(value) if name == "keks" and not isinstance(value, KeyDict) else value)

    def __post_init__(self) -> None:
        if self.signing_seed:
            self.signing_public = public_of(self.signing_seed)

    @classmethod
    def generate(cls, path: Path | None = None) -> KeyRing:
        kek_id = "k1"
        return cls(
            keks={kek_id: secrets.token_bytes(KEY_BYTES)},
            current_kek_id=kek_id,
            index_key=secrets.token_bytes(KEY_BYTES),
            signing_seed=secrets.token_bytes(32),
            path=path,
            cohort_ids_from=1,
        )

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """Load the key file, creating it (mode 0600) on first use.

        Only for a store that holds nothing sealed yet: ``store.keys.binding.open_key_file`` decides.
        Under the key file's lock, so that a copy a crash left half-written is removed at start-up.
        One found open to others (put back by hand with ``cp`` under umask 022) is made 0600 once it
        has read as a key file (a mistyped path is left as it is).
        """
        with key_file_lock(path):
            if not path.exists():
                ring = cls.generate(path)
                if ring._write(replace=False):
                    return ring
            ring = cls.load(path)
            keep_private(path)
            return ring

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Load the key file; a missing one is an error (never silently replaced), and so is one whose
        content is malformed: ``KeyFileError`` in one line naming the problem, never quoting a value."""
        try:
            doc = _fields(json.loads(read_key_text(path)), "it")
            keks = {_kek_name(k): _key(v, "a key in keks") for k, v in _fields(_field(doc, "keks"), "keks").items()}
            current = _text(_field(doc, "current_kek"), "current_kek")
            # Empty once decommissioning destroyed the keys; else a key-encryption key held here (a
            # chain's entry is a chain state, never one that wraps).
            if current and (current not in keks or current[:1] == "~"):
                raise _Malformed("current_kek names no key in keks")
            return cls(
                keks=keks,
                current_kek_id=current,
                index_key=_key(_field(doc, "index_key"), "index_key", empty=True),
                signing_seed=_key(_field(doc, "signing_seed"), "signing_seed", empty=True),
                path=path,
                signing_public=_key(doc.get("signing_public", ""), "signing_public", empty=True),
                cohort_ids_from=_whole(doc.get("cohort_ids_from", 0), "cohort_ids_from"),
            )
        except _Malformed as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc}") from None
        except json.JSONDecodeError:  # its message quotes nothing, but says no more than this
            raise KeyFileError(f"cannot read key file {path}: it is not JSON") from None
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"cannot read key file {path}: {type(exc).__name__}") from None

    def save(self) -> None:
        """Write the key file, replacing the one there (the caller holds ``key_file_lock``)."""
        self._write(replace=True)

    def _write(self, *, replace: bool) -> bool:
        """Write the key file durably; with ``replace`` false, only if none exists yet (False when
        one does: the link that publishes it fails rather than overwrite another process's file)."""
        if self.path is None:
            raise KeyFileError("this key ring has no file")
        doc = {
            "version": 1,
            "current_kek": self.current_kek_id,
            "keks": {k: _b64(v) for k, v in self.keks.items()},
            "index_key": _b64(self.index_key),
            "signing_seed": _b64(self.signing_seed),
            "signing_public": _b64(public_of(self.signing_seed) if self.signing_seed else self.signing_public),
            "cohort_ids_from": self.cohort_ids_from,
        }
        return write_private(self.path, json.dumps(doc), replace=replace)

    # -- data keys -------------------------------------------------------------------------------

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        """Wrap a data key with the current KEK; returns (kek id, wrapped)."""
        return self.current_kek_id, seal(self.keks[self.current_kek_id], data_key, b"wrap:" + aad)

    def unwrap(self, kek_id: str, wrapped: bytes, aad: bytes) -> bytes:
        try:
            kek = self.keks[kek_id]
        except KeyError:
            raise DecryptionError("unknown key-encryption key") from None
        return open_sealed(kek, wrapped, b"wrap:" + aad)

    # -- blind index -----------------------------------------------------------------------------

    def blind(self, term: str) -> int:
        """A keyed 64-bit blind index value (signed, to fit BIGINT) for a normalised term."""
        inner, outer = self._blinder()
        step = inner.copy()
        step.update(term.encode("utf-8"))
        final = outer.copy()
        final.update(step.digest())
        return int.from_bytes(final.digest()[:8], "big", signed=True)

    def _blinder(self) -> tuple[Any, Any]:
        """HMAC-SHA256's inner and outer hashes with the key's padded blocks already taken in
        (RFC 2104): each blind index value then hashes only its term, the same digest as
        ``hmac.digest`` in about two thirds of the time (a search blinds ~60-90 terms). Made again
        whenever ``index_key`` is replaced."""
        pads = self._blind_pads
        if pads is None or pads[0] is not self.index_key:
            key = self.index_key
            if len(key) > _SHA256_BLOCK:
                key = hashlib.sha256(key).digest()
            key = key.ljust(_SHA256_BLOCK, b"\0")
            inner = hashlib.sha256(key.translate(_IPAD))
            outer = hashlib.sha256(key.translate(_OPAD))
            pads = self._blind_pads = (self.index_key, inner, outer)
        return pads[1], pads[2]

    # -- signing ---------------------------------------------------------------------------------

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.signing_seed)


def public_of(seed: bytes) -> bytes:
    """The raw Ed25519 public key of a 32-byte signing seed."""
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@contextmanager
def key_file_lock(path: Path) -> Iterator[None]:
    """Hold the key file's exclusive lock (``<key file>.lock``; not re-entrant: take it once).

    Every write of the key file happens under it, through one fixed temporary name. So whoever takes
    the lock first removes what a crash left there: a ``<key file>*.tmp`` is a full copy of the key
    file as it was, which later punctures would never reach (a backup plus that copy would open
    every child destroyed since)."""
    try:
        lock = open_lock_file(_lock_name(path))  # 0600: nobody else can hold it
    except FileExistsError as exc:  # a link or another account's file there: said in one line
        raise KeyFileError(exc.strerror) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        remove_leftovers(path)
        yield
    finally:
        os.close(lock)  # closing it lets go


def _lock_name(path: Path) -> Path:
    # Beside the file itself, not a link to it: a process given the link and one given the file
    # must take one lock, or an edit read before the other's puncture writes the destroyed key back.
    return Path(f"{real_file(path)}.lock")


def remove_leftovers_if_able(path: Path) -> list[Path]:
    """For a look that only reads (``signpost db check``): what a write cut short left beside the
    key file zeroed and removed under its lock, as ``key_file_lock`` does; the copies still there
    returned (``copies_left``; none when removed). An account that cannot take the lock, because
    the lock file is another account's (the account that runs Signpost, the look an auditor's) or
    its folder cannot be written (a read-only disk, no permission), touches nothing: every copy
    there is returned, for it to say. A link or anything else Signpost did not leave at the lock's
    name is refused as ``key_file_lock`` refuses it (``KeyFileError``)."""
    name = _lock_name(path)
    try:
        lock = open_lock_file(name)
    except FileExistsError as exc:
        if not _anothers_file(name):
            raise KeyFileError(exc.strerror) from None
        return copies_left(path)
    except OSError:  # EROFS, EACCES, EPERM (or no room for the lock file): not this account's to do
        return copies_left(path)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        remove_leftovers(path)
    finally:
        os.close(lock)
    return []


def _anothers_file(path: Path) -> bool:
    """Whether ``path`` is a regular file of another account (not a link, nor anything else)."""
    try:
        found = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_uid != os.geteuid()


def serving_lock_file(path: Path) -> Path:
    """``<key file>.serving.lock``: held shared by every process serving with the key file, and
    exclusively by a rotation. Apart from ``key_file_lock``'s, which a server's own retention
    run takes to puncture while it serves."""
    return Path(f"{real_file(path)}.serving.lock")


@contextmanager
def key_file_use(path: Path, *, exclusive: bool) -> Iterator[bool]:
    """Hold the key file's serving lock, never waiting: shared (a process serving with the keys in
    memory, for its whole life) or ``exclusive`` (a rotation, which replaces them). False (holding
    nothing) when the other kind is held. The kernel lets go when the holder dies (kill -9
    included), so it is never stale; the file stays, as the edit lock's does, but for one this
    call made for a command then refused (a missing key file for a store sealed under another):
    that one is removed, if nobody else holds it (``_remove_if_alone``), so a refusal leaves
    nothing behind. So a lock taken on a file no longer at its name is let go and taken again."""
    name = serving_lock_file(path)
    made = not os.path.lexists(name)
    while True:
        try:
            lock = open_lock_file(name)
        except FileExistsError as exc:  # a link or another account's file there: said in one line
            raise KeyFileError(exc.strerror) from None
        try:
            fcntl.flock(lock, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            yield False
            return
        if names_open_file(name, lock):
            break
        os.close(lock)  # removed by a refused command after we opened it: the one there now is ours to take
    try:
        yield True
    except BaseException:
        if made:
            _remove_if_alone(name, lock)
        raise
    finally:
        os.close(lock)  # closing it lets go


def _remove_if_alone(name: Path, lock: int) -> None:
    """Remove the serving lock file ``lock`` holds, only while holding it alone (exclusively) and
    only while it is still the file at ``name``: another holder, or one that replaced it, keeps it.
    Whoever opened it meanwhile finds it gone once they hold it, and takes the one there then."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by another too (BlockingIOError): theirs as much as ours, left as it is
        return
    if names_open_file(name, lock):
        name.unlink(missing_ok=True)


def read_key_text(path: Path) -> str:
    """The text of a key file (or signing key file) as it is now. Read without the lock: another
    process's edit may replace it meanwhile and zero the file it replaced (``write_whole``'s
    ``shred``), so a read that found only zeros opened the old file before the rename, and reading
    the name again finds the new one."""
    for _ in range(_REREADS):
        data = _read_small(path)
        if not data or data.strip(b"\0"):
            break
    return data.decode("utf-8")


_REREADS = 5  # each a rename done since the last: one is all it takes but for edits back to back
MAX_KEY_FILE = 1024 * 1024
"""The most a key file is read: one holds a key a rotation (about 70 bytes each) and a few more,
kilobytes after a century of monthly rotations."""


def _read_small(path: Path) -> bytes:
    """A key file's bytes, or KeyFileError in one line: a regular file only (a device, /dev/zero, was
    read until memory ran out; opening a named pipe with no writer would hang, so the name is asked
    about before it is opened), and at most ``MAX_KEY_FILE``."""
    not_a_file = KeyFileError(f"key file {path} is not a regular file")
    if not stat.S_ISREG(path.stat().st_mode):
        raise not_a_file
    with path.open("rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # replaced by a device or a pipe meanwhile
            raise not_a_file
        data = file.read(MAX_KEY_FILE + 1)
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"key file {path} is too large for a key file (over 1 MiB)")
    return data


def keep_private(path: Path) -> None:
    """Make a key file (or signing key file) that was read whole 0600, as every write of it is. One
    this process does not own is left as it is (the next write replaces it with its own, 0600)."""
    with suppress(PermissionError):
        make_private(path)


def real_file(path: Path) -> Path:
    """The file ``path`` names, through any symbolic link (``signpost.key -> /srv/secrets/…``). A key
    file is replaced there: replacing the link instead left the file it named holding every key an
    edit destroyed, for the link to be put back to by the next deployment."""
    return Path(os.path.realpath(path))


def temporary_name(path: Path) -> Path:
    """The one name a new key file (or signing key file) is written under before it takes its place."""
    return path.with_name(f"{path.name}.tmp")


def replaced_name(path: Path) -> Path:
    """The name the key file (or signing key file) an edit replaces keeps until its bytes are zeroed:
    a leftover of a kill between the rename and the zeros, zeroed and removed as ``.tmp`` is."""
    return path.with_name(f"{path.name}.replaced.tmp")


def write_private(path: Path, text: str, *, replace: bool = True) -> bool:
    """Write ``text`` to ``path`` (mode 0600) durably, by way of ``temporary_name(path)``; with
    ``replace`` false only if ``path`` does not exist yet (returns False when it does).

    The new file's bytes reach the disk before the rename, and the rename reaches the disk before
    this returns, so a power loss cannot bring back a destroyed key; the temporary name is gone
    afterwards whatever happened (a crash's leftover is ``remove_leftovers``' work)."""
    real = real_file(path)
    return write_whole(
        real,
        text.encode("utf-8"),
        through=temporary_name(real),
        mode=0o600,
        replace=replace,
        shred=replaced_name(real),
    )


def remove_leftovers(path: Path) -> None:
    """Overwrite and remove what a crash left while writing the key file: ``<path>.tmp``, the file an
    edit replaced (``replaced_name``), and the ``<path>.<pid>.tmp`` older versions wrote. Only those
    names: a signing key file named after the key file (``signpost.key.signing``) writes its own
    ``.tmp`` outside this lock. Call only under ``key_file_lock``."""
    removed = False
    for leftover in leftover_copies(path):
        try:
            # Not through a link, nor over the key file itself (a crash between link and unlink, or
            # between the replaced file's second name and the rename): that name is only unlinked.
            if not leftover.is_symlink() and not _same_file(leftover, path):
                overwrite_leftover(leftover)  # zeros, flushed, before the unlink
            leftover.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:  # a folder, or another account's file: not a copy Signpost left
            raise KeyFileError(
                f"{leftover} is in the way of the key file's writes and is not a copy Signpost left "
                f"({exc.strerror}): move it away"
            ) from None
        removed = True
    if removed:
        for folder in {path.parent, real_file(path).parent}:
            fsync_directory(folder)


def leftover_copies(path: Path) -> list[Path]:
    """Copies a write cut short left: ``<name>.tmp`` (and ``<name>.<pid>.tmp``, the names older
    versions wrote), and ``<name>.replaced.tmp``, the file an edit replaced, killed before its zeros
    (``replaced_name``), beside ``path`` and beside the file it names through a link (``real_file``)."""
    found: set[Path] = set()
    for each in {path, real_file(path)}:
        ours = re.compile(re.escape(each.name) + r"(\.[0-9]+|\.replaced)?\.tmp")
        found.update(p for p in each.parent.glob(f"{glob.escape(each.name)}.*tmp") if ours.fullmatch(p.name))
    return sorted(found)


def copies_left(path: Path) -> list[Path]:
    """The ``leftover_copies`` that hold bytes of their own: not a second name of the file itself
    (an edit killed between naming the file it replaces and the rename), which holds nothing more."""
    return [p for p in leftover_copies(path) if p.is_symlink() or not _same_file(p, real_file(path))]


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except FileNotFoundError:
        return False


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def row_mac(key: bytes, canonical: str) -> bytes:
    """A keyed fingerprint of a feed row, so re-importing an unchanged row is a no-op.

    The row holds the whole identity with the date of birth, so ``key`` is the child's birth-day
    term key (``store.register.children.feed_row_mac``): a backup's fingerprint cannot be tested
    against a guessed row once that cohort is destroyed. Stores written before were keyed under the
    index key, which lives until decommissioning (``legacy_row_mac``)."""
    return hmac.digest(key, b"row:" + canonical.encode("utf-8"), "sha256")[:16]


def legacy_row_mac(keys: KeyRing, canonical: str) -> bytes:
    """The fingerprint as stores written before the birth-day key held it (under the index key):
    recognised so that an unchanged row is not rewritten, only re-fingerprinted."""
    return row_mac(keys.index_key, canonical)
