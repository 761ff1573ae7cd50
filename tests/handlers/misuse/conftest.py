"""The misuse tests' world, built once per backend and copied per test.

Importing the synthetic authority (400 children) and writing two weeks of ordinary work cost
seconds each, and every test used to pay for them again. Now each is a derived template database
(tests/databases.py), made once per run and backend with one key file; each test gets a copy of its
own (a file copy, or ``CREATE DATABASE … TEMPLATE``) and a copy of the key file, so tests still
change their store freely. The World that describes the store is computed (it is seeded), not read.

A test module opts in by overriding ``db_url`` and ``keys`` with ``world_db_url`` (or
``normal_day_db_url``) and ``world_keys``; other modules here keep the empty store.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bot.app import Signpost, build
from handlers.clock import FakeClock
from store.audit.log import AuditRecord
from store.db import Database
from store.keys.crypto import KeyRing
from tests.databases import Templates
from tests.handlers.misuse.misuse_world import DAY, World, history_days, load_world, plan_days, plan_world, write_events

HISTORY_SEED, TODAY_SEED = 1, 2


@pytest.fixture(scope="session")
def world() -> World:
    """The synthetic authority every misuse test works in (the same rows on every call)."""
    return plan_world()


@pytest.fixture(scope="session")
def world_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ring = KeyRing.generate(tmp_path_factory.mktemp("misuse") / "world.key")
    ring.save()
    assert ring.path is not None
    return ring.path


def _fill(url: str, key_file: Path, fill: Callable[[Signpost], Awaitable[object]]) -> None:
    """Run ``fill`` on a Signpost over ``url`` (a fresh clock, the world's keys), then close everything."""

    async def run() -> None:
        db = Database.connect(url)
        app = build(db, KeyRing.load_or_create(key_file), FakeClock())
        try:
            await fill(app)
        finally:
            await app.ctx.audit.close()
            await db.close()

    asyncio.run(run())


def _copy(templates: Templates, backend: str, url: str) -> Iterator[str]:
    yield url
    if backend == "postgres":
        templates.drop_postgres(url)


def _load_world(key_file: Path) -> Callable[[str], None]:
    return lambda url: _fill(url, key_file, load_world)


@pytest.fixture
def world_db_url(backend: str, templates: Templates, world_key_file: Path) -> Iterator[str]:
    """A store of its own holding the authority's feeds, imported (once per backend) at the clock's start."""
    yield from _copy(templates, backend, templates.derived(backend, "misuse_world", _load_world(world_key_file)))


@pytest.fixture
def normal_day_db_url(backend: str, templates: Templates, world: World, world_key_file: Path) -> Iterator[str]:
    """The world's store plus two weeks of ordinary work and then the day itself (``normal_day``)."""

    async def work(app: Signpost) -> None:
        await write_events(app, plan_days(world, history_days(DAY, 14), seed=HISTORY_SEED))
        await write_events(app, plan_days(world, [DAY], seed=TODAY_SEED))

    def build_day(url: str) -> None:
        _fill(url, world_key_file, work)

    templates.template(backend, "misuse_world", _load_world(world_key_file))
    yield from _copy(
        templates, backend, templates.derived(backend, "misuse_normal_day", build_day, base="misuse_world")
    )


@pytest.fixture
def normal_day(world: World) -> list[AuditRecord]:
    """The events of the day in ``normal_day_db_url``'s store, as written (computed again: seeded)."""
    return [record for record, _ in plan_days(world, [DAY], seed=TODAY_SEED)]


@pytest.fixture
def world_keys(world_key_file: Path, tmp_path: Path) -> KeyRing:
    """A copy of the key file the world's stores were written with, for this test alone."""
    path = tmp_path / "world.key"
    shutil.copyfile(world_key_file, path)
    return KeyRing.load_or_create(path)
