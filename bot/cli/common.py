"""Helpers shared by the sub-commands: open the store with settings, name the operator, and fail
with one clear line."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from bot.app import Signpost, build
from bot.config import Settings, load_settings
from handlers.grammar import parse_date
from store.audit.signing import Signer
from store.db import Database, cannot_open, no_store_at, schema_behind
from store.keys.binding import KeyFileRefused, open_key_file
from store.keys.crypto import KeyRing


class CommandFailed(Exception):
    """A sub-command cannot go on; the message is shown to the operator as one line."""


def operator_account() -> str:
    """Who runs the command, for its audit event: the local OS account (never a secret)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


def read_text_file(path: Path) -> tuple[str, str]:
    """(source, text) of a file the operator named, or CommandFailed in one line."""
    try:
        return str(path), path.read_text("utf-8")
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CommandFailed(f"{path}: {exc}") from None


@asynccontextmanager
async def opened(settings: Settings | None = None, *, create: bool = False) -> AsyncIterator[Signpost]:
    """A migrated store and a dispatcher, closed afterwards. Only a command that may make a new
    store (``create``: importing, seeding, serving) opens a SQLite file that is not there yet: for
    any other, a mistyped SIGNPOST_DATABASE_URL is one line, not a new empty register."""
    settings = settings or load_settings()
    if not create:
        _refuse_a_missing_store(settings)
    db = await _open_database(settings, migrate=settings.migrate_on_start)
    try:
        keys = await _keys_for(db, settings)
        signer = Signer(keys, settings.signing_key_file)  # None: the key file's own signing seed
    except BaseException:
        await db.close()
        raise
    app = build(db, keys, base_url=settings.base_url, signer=signer)
    try:
        yield app
    finally:
        await app.close()


def _refuse_a_missing_store(settings: Settings) -> None:
    missing = no_store_at(settings.database_url)
    if missing is not None:
        raise CommandFailed(missing)


async def _open_database(settings: Settings, *, migrate: bool) -> Database:
    """The store, or CommandFailed in one line (the driver's own message may quote the URL)."""
    db: Database | None = None
    try:
        db = await Database.open(settings.database_url, migrate=migrate, pool_size=settings.max_in_flight)
        if not migrate:
            await db.ping()  # an unreachable store is said here, not on the first command
        return db
    except OSError as exc:
        failed = f"cannot open the database: {exc.strerror or type(exc).__name__}"
    except Exception as exc:
        said = cannot_open(exc)
        if said is None:
            raise
        failed = said
    if db is not None:
        await db.close()
    raise CommandFailed(failed)


@asynccontextmanager
async def opened_database(settings: Settings | None = None) -> AsyncIterator[Database]:
    """The store alone, at this version's schema and not changed by opening it, for a command that
    needs no key: no key file is read, made or checked (an auditor verifying a copy elsewhere)."""
    settings = settings or load_settings()
    _refuse_a_missing_store(settings)
    db = await _open_database(settings, migrate=False)
    try:
        behind = await schema_behind(db)
        if behind is not None:
            raise CommandFailed(behind)
        yield db
    finally:
        await db.close()


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


def day(text: str) -> date:
    """A date typed on the command line: DD/MM/YYYY (as in chat) or YYYY-MM-DD."""
    value = parse_date(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use DD/MM/YYYY or YYYY-MM-DD")
    return value


def example(*lines: str) -> str:
    """An argparse epilog: the example commands under a heading, shown as typed."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)
