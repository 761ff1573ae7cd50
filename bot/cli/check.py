"""`signpost db check`: whether a store, or a backup of one, can be trusted before anyone relies on it.

Four checks, each reusing the home of its rule: SQLite's own integrity check
(``store.db.sqlite_integrity``); the schema of this Signpost's migrations, every table with its
keys and indexes (``store.db.schema_behind``, ``store.db.schema_gaps``); the key binding, the
key file's fingerprint the store keeps (``store.keys.binding.bind``, which only reads once a
fingerprint is recorded), with the wrapped keys it cannot open and the birth-date keys it still holds
of cohorts the store has destroyed (``store.lifecycle.retention.unfinished_puncture``); and the
audit chain (``store.audit.verify.verify``, as `audit verify`).

The store is opened read-only (``Database.read_only``): a backup checked is a backup unchanged, and
nothing is written to a store that may be damaged, so the check writes no audit event (as `db
current`, and the auditor's `audit verify --public-key`). It is imported when the command runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.cli.common import CommandFailed, refuse_a_missing_store, store_errors
from bot.config import Settings
from handlers.vocabulary import plural
from store.audit.signing import Signer, SigningKeyGone
from store.audit.verify import verify
from store.db import (
    NOT_A_DATABASE,
    Database,
    DatabaseUrl,
    applied_heads,
    schema_behind,
    schema_gaps,
    side_file,
    sqlite_file_url,
    sqlite_integrity,
    sqlite_path,
    store_damage,
)
from store.keys.backup import PARTIAL
from store.keys.binding import KeyFileRefused, another_stores, bind, recorded_fingerprint
from store.keys.crypto import KeyFileError, KeyRing, remove_leftovers_if_able
from store.keys.unheld import under_destroyed, unheld
from store.lifecycle.retention import UNFINISHED_PUNCTURE, unfinished_puncture

NO_BINDING = (
    "no key binding: the store does not record which key file is its own (a restore that did not finish, "
    "or a store no command has opened with its key file yet)"
)
UNRECORDED = (
    "no migration is recorded, but Signpost's tables are here: a restore that did not finish? "
    "(restore again into a new, empty database)"
)
ANOTHER_STORES = (
    "the audit chain (its checkpoints are signed with the key in this store's own key file, and "
    "SIGNPOST_KEY_FILE is another store's: `signpost audit verify --public-key` checks it without one)"
)
PG_DUMP = b"PGDMP"
INTEGRITY_LIMIT = 100  # SQLite stops its integrity check after this many findings
INTEGRITY_SHOWN = 5  # how a pg_dump archive (custom format) begins


@dataclass
class Findings:
    """What the check found wrong, what it could not check, and what passed (for the OK line)."""

    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        return not self.problems and not self.unchecked


async def check_store(settings: Settings, file: Path | None = None) -> Findings:
    """Check the store at SIGNPOST_DATABASE_URL, or the SQLite file ``file`` (a backup)."""
    found = Findings()
    url, on_disk = _target(settings, file, found)
    if on_disk is not None and _hot_journal(on_disk):
        found.problems.append(
            f"{on_disk.name} was cut short while being written: its journal ({on_disk.name}-journal) is "
            "beside it, and the file is not whole without it"
        )
        found.unchecked.append("SQLite's integrity check, the tables, the key binding and the audit chain")
        return found
    if on_disk is not None:
        damage = await asyncio.to_thread(sqlite_integrity, on_disk, limit=INTEGRITY_LIMIT)
        found.problems += damage[:INTEGRITY_SHOWN]
        if len(damage) > INTEGRITY_SHOWN:  # twenty zeroed pages are twenty lines alike: the first few say it
            more = "or more " if len(damage) == INTEGRITY_LIMIT else ""
            found.problems.append(
                f"the database file is damaged: SQLite's integrity check says {more}"
                f"{len(damage) - INTEGRITY_SHOWN} more like the above"
            )
        if not damage:
            found.passed.append("SQLite's integrity check")
        elif damage == [NOT_A_DATABASE]:  # nothing in it can be read
            found.unchecked.append("the tables, the key binding and the audit chain (the file cannot be read)")
            return found
    ring = _key_file(settings, found)
    db = Database.read_only(url)
    try:
        async with store_errors():  # a store that cannot be reached is one line, as for any command
            if await _readable(db, found) and await _unless_damaged(found, "the tables", _schema(db, found)):
                await _unless_damaged(found, "the key binding", _binding(db, settings.key_file, ring, found))
                await _unless_damaged(found, "the audit chain", _audit_chain(db, settings, ring, found))
    finally:
        await db.close()
    return found


def _hot_journal(path: Path) -> bool:
    """Whether a rollback journal a killed writer left is beside ``path`` (SQLite's test: there and
    not empty, its first byte not zero). A read-only open must roll it back, and cannot."""
    journal = side_file(path, "-journal")
    try:
        with journal.open("rb") as handle:
            return handle.read(1) not in (b"", b"\0")
    except FileNotFoundError:
        return False


async def _readable(db: Database, found: Findings) -> bool:
    """Whether anything in the store can be read at all (a truncated file's first read fails)."""
    try:
        await db.ping()
    except Exception as exc:
        said = store_damage(exc)
        if said is None:
            raise
        if said not in found.problems:
            found.problems.append(said)
        found.unchecked.append("the tables, the key binding and the audit chain (the file cannot be read)")
        return False
    return True


def _target(settings: Settings, file: Path | None, found: Findings) -> tuple[str | DatabaseUrl, Path | None]:
    """The store to open, and its SQLite file (None: PostgreSQL, or a store in memory)."""
    if file is None:
        refuse_a_missing_store(settings)
        url = settings.database_url
        return url, sqlite_path(url) if url.startswith("sqlite") else None
    if not file.is_file():
        raise CommandFailed(f"there is no file at {file}")
    with file.open("rb") as handle:
        head = handle.read(len(PG_DUMP))
    if head == PG_DUMP:
        raise CommandFailed(
            f"{file} is a pg_dump archive: restore it into a new, empty database (pg_restore --dbname NEW_DB "
            f"{file.name}), then check that: SIGNPOST_DATABASE_URL=postgresql+asyncpg://…/NEW_DB signpost db check"
        )
    if file.name.endswith(PARTIAL):
        found.problems.append(
            f"{file.name} is a backup that was cut short (named …{PARTIAL} until whole): never restore it"
        )
    return sqlite_file_url(file), file


async def _unless_damaged(found: Findings, what: str, check: Awaitable[bool]) -> bool:
    """Run ``check``: whether the checks after it can run. Damage met on the way is said in the
    words every command uses for it (once: SQLite's own check has usually said it already), and
    the checks after it still run, on what can be read."""
    try:
        return await check
    except Exception as exc:
        said = store_damage(exc)
        if said is None:
            raise
        if said in found.problems:
            found.unchecked.append(f"{what} (the damage above is in the way)")
        else:
            found.problems.append(f"{what} cannot be read: {said}")
        return True


async def _schema(db: Database, found: Findings) -> bool:
    """The migrations applied, and every table with its keys and indexes."""
    behind = await schema_behind(db)
    gaps = await schema_gaps(db)
    if behind is not None and gaps.begun and not await applied_heads(db):  # `db upgrade` would fail on it
        found.problems.append(UNRECORDED)
    elif behind is not None:
        found.problems.append(behind)
    found.problems += gaps.lines()
    if behind is None and gaps.whole:
        found.passed.append("every table, key and index of this Signpost's migrations")
        return True
    found.unchecked.append("the key binding and the audit chain (the store's tables are not whole)")
    return False


def _key_file(settings: Settings, found: Findings) -> KeyRing | None:
    """The key file at SIGNPOST_KEY_FILE, read and never made (None: missing or unreadable, said).
    A copy a write cut short left beside it (a key file an edit replaced, killed before its zeros)
    is zeroed and removed first, under its lock, as every start that takes it does. The check only
    reads, so an account that cannot take that lock (an auditor's: the lock is the account's that
    runs Signpost; a key folder it cannot write) still checks everything: only a copy it could not
    zero is a problem, with how to clear it."""
    key_file = settings.key_file
    if not key_file.exists():
        found.problems.append(f"SIGNPOST_KEY_FILE {key_file} does not exist: the key binding cannot be checked")
        return None
    try:
        left = remove_leftovers_if_able(key_file)
    except KeyFileError as exc:  # a link at its lock's name, or something in the way of its writes
        found.problems.append(str(exc))
    else:
        if left:
            names = ", ".join(each.name for each in left)
            found.problems.append(f"SIGNPOST_KEY_FILE {key_file}: {LEFTOVER_UNZEROED.format(names=names)}")
    try:
        return KeyRing.load(key_file)  # read as it is now (another process's edit may replace it)
    except KeyFileError as exc:
        found.problems.append(str(exc))
        return None


LEFTOVER_UNZEROED = (
    "a copy of it that a write cut short left beside it ({names}) still holds its keys (or a write "
    "was still going on: if so, it is gone when you check again), and this account cannot take the "
    "key file's lock to zero it: run `signpost db check` (or any command that opens the key file) as "
    "the account that runs Signpost, which zeroes and removes it"
)


async def _binding(db: Database, key_file: Path, ring: KeyRing | None, found: Findings) -> bool:
    """The store's record of its key file, and that key file's agreement with it."""
    if await recorded_fingerprint(db) is None:
        found.problems.append(NO_BINDING)
        return True
    if ring is None:
        return True
    try:
        await bind(db, ring, datetime.now(UTC).date(), record=False)  # compares, writes nothing
    except KeyFileRefused as refused:
        found.problems.append(f"SIGNPOST_KEY_FILE {key_file} {refused}")
        return True
    found.passed.append("the key binding matches SIGNPOST_KEY_FILE")
    lost = await unheld(db, ring)
    found.problems += [f"{each.said()}{_SEALED_BY}" + (f": {each.remedy()}" if each.remedy() else "") for each in lost]
    destroyed = await under_destroyed(db, ring, datetime.now(UTC).date())
    found.problems += [each.said() for each in destroyed]
    lagging = await unfinished_puncture(db, ring)
    if lagging:
        found.problems.append(f"SIGNPOST_KEY_FILE {UNFINISHED_PUNCTURE.format(days=plural(lagging, 'day'))}")
    if not lost and not destroyed:
        found.passed.append("every wrapped key is under a key SIGNPOST_KEY_FILE holds")
    return True


_SEALED_BY = ", so nothing can open them (sealed by a replica that kept serving through a rotation?)"


async def _audit_chain(db: Database, settings: Settings, ring: KeyRing | None, found: Findings) -> bool:
    """The audit chain re-walked against the public key the key file (or signing key file) holds:
    the checkpoints need it, so with another store's key file (and no signing key file of this
    store's own) the chain is not checked, rather than failed."""
    signing_file = settings.signing_key_file
    if ring is None:
        found.unchecked.append("the audit chain (no key file to take its public key from)")
        return True
    if signing_file is not None and not signing_file.exists():  # a Signer would move the seed there
        found.unchecked.append(f"the audit chain (SIGNPOST_SIGNING_KEY_FILE {signing_file} does not exist)")
        return True
    if signing_file is None and another_stores(await recorded_fingerprint(db), ring):
        # Its public key is another log's: every checkpoint would read as forged, which is no finding.
        found.unchecked.append(ANOTHER_STORES)
        return True
    try:
        public = Signer(ring, signing_file).public
    except (KeyFileError, SigningKeyGone) as exc:
        found.unchecked.append(f"the audit chain ({exc}: `signpost audit verify --public-key` checks it)")
        return True
    verdict = await verify(db, public)
    if verdict.finding is not None:
        bad = verdict.finding
        found.problems.append(f"the audit chain fails at seq {bad.seq}: {bad.problem} — {bad.message}")
    else:
        found.passed.append(f"the audit chain is intact ({plural(verdict.count, 'event')})")
    return True
