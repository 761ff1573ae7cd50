"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest

from bot.app import Signpost, build
from handlers.clock import FakeClock
from store.db import Database
from store.keys.crypto import KeyRing
from store.keys.keychain import ensure_chains, is_derived
from store.keys.keydict import KeyDict
from tests.compiled import share_compiled_sql
from tests.databases import Templates, postgres_problem, sweep_leftovers
from tests.spread import one_store

BACKENDS = ("sqlite", "postgres")
_PG_PROBLEM: str | None = None
_SWEPT: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    global _PG_PROBLEM
    share_compiled_sql()  # one compile of each statement per process, not per test (tests/compiled.py)
    _PG_PROBLEM = asyncio.run(postgres_problem())
    if _PG_PROBLEM and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true but PostgreSQL is unreachable ({_PG_PROBLEM}); the PostgreSQL half must run")
    # Once a run, before its workers start; not for a collection alone (`make test` collects once
    # to keep the rewritten tests, its output unseen: the run after it says what it swept).
    if not _PG_PROBLEM and not hasattr(config, "workerinput") and not config.option.collectonly:
        # A run cut short (Ctrl-C, SIGTERM) ran no teardown: its databases are dropped now, once its
        # process has ended (tests/databases.py, ``leftovers``); a suite running now keeps its own.
        _SWEPT.extend(sweep_leftovers())


def pytest_report_header(config: pytest.Config) -> str:
    if _PG_PROBLEM:
        return "!!! PostgreSQL UNREACHABLE: every PostgreSQL test will be SKIPPED (" + _PG_PROBLEM + ") !!!"
    swept = f"; dropped {len(_SWEPT)} databases left by runs cut short" if _SWEPT else ""
    return f"PostgreSQL: reachable, tests run on SQLite and PostgreSQL{swept}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _PG_PROBLEM:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED: PostgreSQL unreachable", red=True, bold=True)


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``one_store`` runs on one store (tests/spread.py, ``one_store``)."""
    one_store(metafunc)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs `signpost` in-process installs a log handler on the stream it captured;
    remove it afterwards, so later tests never write to a closed stream or at its level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("databases"))
    yield t
    t.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    marks = {m.name for m in request.node.iter_markers()}
    if name == "sqlite" and "postgres_only" in marks:
        pytest.skip("PostgreSQL-only behaviour (runs in the [postgres] variant)")
    if name == "postgres" and "sqlite_only" in marks:
        pytest.skip("SQLite-only behaviour (runs in the [sqlite] variant)")
    if name == "postgres" and _PG_PROBLEM:
        pytest.skip(f"PostgreSQL unreachable: {_PG_PROBLEM}")
    return name


@pytest.fixture
def db_url(backend: str, templates: Templates) -> Iterator[str]:
    url = templates.sqlite() if backend == "sqlite" else templates.postgres()
    yield url
    if backend == "postgres":
        templates.drop_postgres(url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.connect(db_url)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def _worker_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    """One key file per test process, its chains made and derived for the test clock's day: the
    birth-date and term keys (~18,000 hashes a fresh key file derives at its first start) took a
    sixth of the suite's time when every test derived its own."""
    ring = KeyRing.generate(tmp_path_factory.mktemp("keys") / "worker.key")
    ring.save()
    ensure_chains(ring, FakeClock().now().date())
    return ring


@pytest.fixture(scope="session")
def _worker_derived(_worker_keys: KeyRing) -> KeyDict:
    """The worker key file's derived keys (a ``KeyDict``: a test's copy takes them in one C call)."""
    return KeyDict({k: v for k, v in _worker_keys.keks.items() if is_derived(k)})


@pytest.fixture
def keys(request: pytest.FixtureRequest, tmp_path: Path, _worker_keys: KeyRing, _worker_derived: KeyDict) -> KeyRing:
    """A key file of this test's own (a copy of the worker's: a test that punctures, rotates or
    destroys keys changes only its copy), its derived keys already in memory, as after a start.

    Its chains start where a key file made on the test clock's day starts them. A test working to
    the real date (a `signpost` command's own clock) is marked ``fresh_keys``: it gets a key file
    with no chains yet, which its first command makes for that day, as a new deployment's would.
    """
    path = tmp_path / "test.key"
    if request.node.get_closest_marker("fresh_keys"):
        ring = KeyRing.generate(path)
        ring.save()
        return ring
    assert _worker_keys.path is not None
    shutil.copy(_worker_keys.path, path)  # its mode too (0600)
    ring = KeyRing.load(path)
    ring.keks.update(_worker_derived)
    ring.term_keys = _worker_keys.term_keys.since(date.min, _worker_keys.term_keys.as_of or date.min)
    ring.day_tags = dict(_worker_keys.day_tags)
    return ring


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def signpost(db: Database, keys: KeyRing, clock: FakeClock) -> AsyncIterator[Signpost]:
    app = build(db, keys, clock)
    yield app
    await app.ctx.audit.close()
