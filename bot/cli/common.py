"""Helpers shared by the sub-commands as they run: open the store with settings and the command's
audit, name the operator, and fail with one clear line. This module brings in the store and the
app, so the commands import it when they run; building the parser needs only bot/cli/arguments.py."""

from __future__ import annotations

import argparse
import getpass
import os
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import structlog

from bot.app import Signpost, build
from bot.cli.declared import not_once_switched_off
from bot.config import Settings, load_settings
from bot.delivery import CHAT_PLATFORMS, CONSOLE_ONLY
from handlers.operator.common import Audit, Refused, audited
from handlers.vocabulary import Action, Origin, Platform
from store.audit.signing import Signer
from store.db import Database, applied_heads, driver_failure, missing_store_file, schema_behind, schema_gaps
from store.files import write_whole
from store.keys import keychain
from store.keys.binding import KeyFileRefused, bind, open_key_file
from store.keys.crypto import KeyRing, key_file_use
from store.register import children

log = structlog.get_logger("signpost.cli")


class CommandFailed(Refused):
    """A sub-command cannot go on; the message is shown to the operator as one line (inside
    ``operating``, the command is audited as refused, without the message: it may name a path)."""


def operator_account() -> str:
    """Who runs the command, for its audit event: the local OS account (never a secret)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


MAX_OPERATOR_FILE = 1024 * 1024  # a key, checkpoint or certificate file is a few hundred bytes


def read_text_file(path: Path) -> tuple[str, str]:
    """(source, text) of a file the operator named, or CommandFailed in one line. A regular file
    only, and a small one: a device (/dev/zero) was read without end and a named pipe with no
    writer hung the command as it opened it (opened without blocking, then refused), and a file
    over ``MAX_OPERATOR_FILE`` is refused unread rather than taken whole into memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}", reason="a file cannot be read") from None
    try:
        with os.fdopen(fd, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise CommandFailed(f"cannot read {path}: Is a directory", reason="a file cannot be read")
            if not stat.S_ISREG(mode):
                raise CommandFailed(f"{path} is not a regular file", reason="a file is not a regular file")
            raw = file.read(MAX_OPERATOR_FILE + 1)
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}", reason="a file cannot be read") from None
    if len(raw) > MAX_OPERATOR_FILE:
        raise CommandFailed(
            f"{path} is too large for a key, checkpoint or certificate (over 1 MiB)", reason="a file is too large"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # its message quotes the bytes it choked on; plain words instead
        raise CommandFailed(f"{path} is not UTF-8 text", reason="a file is not UTF-8") from None
    return str(path), text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def write_file(path: Path, data: bytes) -> None:
    """Write a file the operator named (a certificate, a Teams package) whole or not at all, or
    CommandFailed in one line: a command killed part-way leaves no cut-short file under that name
    to be sent on or uploaded, only its hidden temporary (``store.files.temporary_for``), which its
    rerun replaces; a link or another account's file at that temporary is refused, never written through."""
    try:
        write_whole(path, data)
    except OSError as exc:
        raise CommandFailed(f"cannot write {path}: {exc.strerror}", reason="a file cannot be written") from None


ROTATING = (
    "a key rotation (`signpost keys rotate`) is running with this key file: start Signpost again once it has finished"
)


@contextmanager
def serving_with_keys(settings: Settings) -> Iterator[None]:
    """For the whole life of a process that serves with the key file (`signpost run`, the console),
    taken before the keys are read: the key file's serving lock, shared (``key_file_use``), so that
    `signpost keys rotate` on this host is refused while it holds keys a rotation would replace.
    Refused in one line while a rotation holds it."""
    refuse_a_missing_folder(settings)
    with key_file_use(settings.key_file, exclusive=False) as held:
        if not held:
            raise CommandFailed(ROTATING)
        yield


@asynccontextmanager
async def opened(settings: Settings | None = None, *, create: bool = False) -> AsyncIterator[Signpost]:
    """A migrated store and a dispatcher, closed afterwards. Only a command that may make a new
    store (``create``: importing, seeding, serving) opens a SQLite file that is not there yet: for
    any other, a mistyped SIGNPOST_DATABASE_URL is one line, not a new empty register."""
    settings = settings or load_settings()
    refuse_a_missing_folder(settings)
    if not create:
        refuse_a_missing_store(settings)
        await refuse_an_empty_database(settings)
    db = await _open_database(settings, migrate=settings.migrate_on_start)
    try:
        keys = await _keys_for(db, settings)
        signer = Signer(keys, settings.signing_key_file)  # None: the key file's own signing seed
    except BaseException:
        await db.close()
        raise
    app = build(db, keys, base_url=settings.base_url, signer=signer)
    try:
        # Every process, not only the one that migrates: the index is data under the key file's
        # term keys (which `signpost db upgrade` does not hold), and a replica started with
        # SIGNPOST_MIGRATE_ON_START=0 on an index of another version would find no child. Once:
        # the first to start rebuilds it under a lock; the rest find it current in one read.
        await _index_up_to_date(app)
        yield app
    finally:
        await app.close()


@asynccontextmanager
async def operating(
    action: Action,
    args: argparse.Namespace,
    *,
    create: bool = False,
    acting_as: str | None = None,
    origin: Origin = Origin.TERMINAL,
    settings: Settings | None = None,
) -> AsyncIterator[tuple[Signpost, Audit]]:
    """The store, and the command's audit (``handlers.operator.common.audited``): every operator
    command that opens the store runs inside this, its checks included, so that it writes exactly
    one outcome event — done, refused or failed. ``args``: the command's, which say whether it runs
    once Signpost is switched off (bot/cli/declared.py). Its events name the local account
    (``operator_account``), or the practitioner ``acting_as`` (a typed `--as`, not yet checked) names
    once the register is found to hold them, under the register's id: never the typed text, which
    may be a name or a postcode (``handlers.operator.common.audited``). ``settings`` defaults to
    those read now (a command that already read them to decide something passes them on)."""
    refused_when_off = not_once_switched_off(args)
    settings = settings or load_settings()
    async with opened(settings, create=create) as app:
        app.ctx.reaches = reaches(settings)  # before the audit: a misuse alert is addressed as it commits
        async with audited(
            app.ctx,
            operator_account(),
            action,
            origin=origin,
            not_once_switched_off=refused_when_off,
            claimed=acting_as,
        ) as audit:
            yield app, audit


def reaches(settings: Settings) -> frozenset[Platform]:
    """Who a notice this command queues can reach, judged as the server that delivers it will judge
    (``Context.reaches``): on chat when a chat platform is configured, so a duty manager with no
    chat link is passed over for someone who has one (``handlers.recipients``); the console's
    everyone only where none is (the console demo)."""
    return CHAT_PLATFORMS if settings.chat_configured else CONSOLE_ONLY


async def _index_up_to_date(app: Signpost) -> None:
    """The blind index rebuilt when it was written under another version (store/register/terms.py),
    before anything is searched: counts only in the log. Not once decommissioning has destroyed
    the keys: there is nothing left to index, and a rebuild (which opens no identity then) would
    delete the index unaudited from any command, `decommission status` included, before the data
    step deletes and counts it for the notices and the certificate."""
    if keychain.decommissioned(app.ctx.keys):
        return
    rebuilt = await children.bring_terms_up_to_date(app.ctx.db, app.ctx.keys, app.ctx.clock.now().date())
    if rebuilt:  # a store with no child yet records the version and says nothing
        log.info("index_terms_rebuilt", children=rebuilt)


def refuse_a_missing_folder(settings: Settings) -> None:
    """CommandFailed when a path setting names a place whose folder is not there, before any store
    is opened or made: a typo must be said, not made into new folders (or a key file nobody will
    find). The key files' folders, and the folder SIGNPOST_CHECKPOINT_DIR would be made in (the
    scheduler makes the checkpoint folder itself, but never its parents); and a file named as the
    checkpoint folder. Only commands that read the key ask: an auditor's `audit verify
    --public-key` on another machine has none of these."""
    places = {
        "SIGNPOST_KEY_FILE": settings.key_file,
        "SIGNPOST_SIGNING_KEY_FILE": settings.signing_key_file,  # kept apart (None: in the key file)
        "SIGNPOST_CHECKPOINT_DIR": settings.checkpoint_dir,  # None: no checkpoint files written
    }
    for name, path in places.items():
        if path is not None and not path.parent.is_dir():
            raise CommandFailed(f"{name}: the folder {path.parent} does not exist")
    # A folder (or a device) named as the key file: said before its lock file is made beside it,
    # as reading it under that lock would say it, but with nothing left behind.
    if settings.key_file.exists() and not settings.key_file.is_file():
        raise CommandFailed(f"key file {settings.key_file} is not a regular file")
    # A file there: every scheduled checkpoint failed (FileExistsError) while the server ran on.
    checkpoints = settings.checkpoint_dir
    if checkpoints is not None and checkpoints.exists() and not checkpoints.is_dir():
        raise CommandFailed(f"SIGNPOST_CHECKPOINT_DIR: {checkpoints} is not a folder")


def refuse_a_missing_store(settings: Settings) -> None:
    """CommandFailed when SIGNPOST_DATABASE_URL names a SQLite file that is not there: a typo must
    not be taken for an empty register."""
    path = missing_store_file(settings.database_url)
    if path is not None:
        raise CommandFailed(
            f"there is no store at {path}: check SIGNPOST_DATABASE_URL "
            "(signpost import, signpost seed-demo or signpost db upgrade make a new one)"
        )


NO_STORE_IN_DATABASE = (
    "no Signpost store in that database: check SIGNPOST_DATABASE_URL, or run `signpost db upgrade` to make one"
)


async def refuse_an_empty_database(settings: Settings) -> None:
    """CommandFailed when SIGNPOST_DATABASE_URL names a PostgreSQL database that holds no Signpost
    store (never migrated, and none of its tables: a mistyped database name, say), before anything
    is made in it: the PostgreSQL side of ``refuse_a_missing_store``. Opening it as a command that
    only reads would migrate it, make a key file and audit the command, and `audit verify` would
    say "OK: 0 events"."""
    if settings.database_url.startswith("sqlite"):  # a SQLite file is judged before it is opened
        return
    db = Database.connect(settings.database_url)
    try:
        async with store_errors():
            # No revision and none of Signpost's tables: a restore cut short has tables (and, maybe,
            # no revision yet), and is said as not whole when the store is opened.
            empty = not await applied_heads(db) and not (await schema_gaps(db)).begun
    finally:
        await db.close()
    if empty:
        raise CommandFailed(NO_STORE_IN_DATABASE)


@asynccontextmanager
async def store_errors() -> AsyncIterator[None]:
    """The one home for a store that cannot be reached or opened: one line, never a traceback
    (``store.db.driver_failure``: the part of the URL that is wrong, never the driver's message,
    which may quote the URL)."""
    try:
        yield
    except OSError as exc:
        raise CommandFailed(f"cannot open the database: {exc.strerror or type(exc).__name__}") from None
    except Exception as exc:
        said = driver_failure(exc)
        if said is None:
            raise
        raise CommandFailed(said) from None


async def _open_database(settings: Settings, *, migrate: bool) -> Database:
    """The store, opened (and migrated when ``migrate``), or CommandFailed in one line."""
    async with store_errors():
        db = await Database.open(
            settings.database_url,
            migrate=migrate,
            pool_size=settings.max_in_flight,
            busy_seconds=settings.sqlite_busy_seconds,
        )
    if not migrate:
        try:
            async with store_errors():
                await db.ping()  # an unreachable store is said here, not on the first command
        except CommandFailed:
            await db.close()
            raise
    return db


@asynccontextmanager
async def opened_database(settings: Settings | None = None) -> AsyncIterator[Database]:
    """The store alone, at this version's schema and not changed by opening it, for a command that
    needs no key: no key file is read, made or checked (an auditor verifying a copy elsewhere)."""
    settings = settings or load_settings()
    refuse_a_missing_store(settings)
    await refuse_an_empty_database(settings)
    db = await _open_database(settings, migrate=False)
    try:
        behind = await schema_behind(db)
        if behind is not None:
            raise CommandFailed(behind)
        yield db
    finally:
        await db.close()


async def accept_key_file(settings: Settings | None = None) -> None:
    """`retention run --accept-key-file`: record the key file's chains as the store's when nothing
    stored can prove or disprove them (``witness.UNCHECKABLE``: a backup whose every child was
    destroyed since). A key file of another store, or a chain a stored key disproves, is refused
    as it always is."""
    settings = settings or load_settings()
    if not settings.key_file.exists():
        raise CommandFailed(f"SIGNPOST_KEY_FILE {settings.key_file} is not there: nothing to accept")
    async with opened_database(settings) as db:
        try:
            await bind(db, KeyRing.load(settings.key_file), datetime.now(UTC).date(), accept=True)
        except KeyFileRefused as refused:
            raise CommandFailed(f"SIGNPOST_KEY_FILE {settings.key_file} {refused}") from None
    log.warning("key_file_accepted", reason="--accept-key-file")


async def _keys_for(db: Database, settings: Settings) -> KeyRing:
    """The key file, once the store is known to be at this version's schema and to be its store:
    a missing key file is created only for a store holding nothing sealed (store/keys/binding.py)."""
    if not settings.migrate_on_start:
        behind = await schema_behind(db)
        if behind is not None:
            raise CommandFailed(behind)
    try:
        return await open_key_file(db, settings.key_file, datetime.now(UTC).date())
    except KeyFileRefused as refused:
        raise CommandFailed(f"SIGNPOST_KEY_FILE {settings.key_file} {refused}") from None
