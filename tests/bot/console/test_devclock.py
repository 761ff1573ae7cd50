"""The dev clock runs only on a disposable demo store: seeded from nothing by `signpost seed-demo`.

Moving the clock acts on the store for real (retention destroys children, key chains advance), so
on any other store the console refuses to start with SIGNPOST_DEV_CLOCK=1, in one line.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import func, select

from store.db import Database
from store.tables.people import Practitioner
from store.tables.register import Child
from tests.bot.console.test_stepup import secret_from
from tests.bot.process import clean_environment, run_signpost
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

MOVE = ":clock +2d\n:quit\n"


@pytest.fixture
def empty_store(db_url: str, tmp_path: Path) -> dict[str, str]:
    """A clean environment pointing at a fresh, empty database of this backend."""
    return clean_environment(db_url, tmp_path)


def run(environ: dict[str, str], tmp_path: Path, *args: str) -> str:
    done = run_signpost(*args, env=environ, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def import_feeds(environ: dict[str, str], tmp_path: Path) -> None:
    for name, text in (("p.csv", PRACTITIONERS), ("c.csv", CHILDREN), ("i.csv", INVOLVEMENTS)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    run(environ, tmp_path, "import", "p.csv", "c.csv", "i.csv")


def dev_console(environ: dict[str, str], tmp_path: Path) -> tuple[int, str, str]:
    # The demo's practitioner: the dev clock is refused (or not) before the console checks who it is.
    session = run_signpost(
        "console", "--as", "NS-P0001", env={**environ, "SIGNPOST_DEV_CLOCK": "1"}, cwd=tmp_path, stdin=MOVE
    )
    return session.returncode, session.stdout, session.stderr


def assert_refused(code: int, out: str, err: str) -> None:
    refusals = [line for line in err.splitlines() if "SIGNPOST_DEV_CLOCK=1 refused" in line]
    assert code == 2, (code, out, err)
    assert len(refusals) == 1 and "seed-demo" in refusals[0], err
    assert "Dev clock moved forward" not in out


def test_dev_clock_refused_on_a_store_with_imported_data(empty_store: dict[str, str], tmp_path: Path) -> None:
    """A store holding imported (possibly real) feeds: the console will not start with the dev clock."""
    import_feeds(empty_store, tmp_path)
    assert_refused(*dev_console(empty_store, tmp_path))


def test_dev_clock_accepted_on_a_store_seeded_from_nothing(empty_store: dict[str, str], tmp_path: Path) -> None:
    """seed-demo on an empty store marks it disposable; the dev clock then moves forward (and again after
    a second, idempotent seed-demo)."""
    assert "not marked" not in run(empty_store, tmp_path, "seed-demo", "--children", "60")
    code, out, err = dev_console(empty_store, tmp_path)
    assert code == 0, err
    assert "Dev clock moved forward" in out
    assert "not marked" not in run(empty_store, tmp_path, "seed-demo", "--children", "60")
    assert "Dev clock moved forward" in dev_console(empty_store, tmp_path)[1]


async def _register_size(db_url: str) -> tuple[int, int]:
    db = Database.connect(db_url)
    try:
        async with db.read() as session:
            tables = (Child, Practitioner)
            counts = [(await session.execute(select(func.count()).select_from(t))).scalar_one() for t in tables]
    finally:
        await db.close()
    return counts[0], counts[1]


def test_seed_demo_refuses_a_store_that_holds_imported_data(empty_store: dict[str, str], tmp_path: Path) -> None:
    """Synthetic children and practitioners are not mixed into an imported (perhaps real) register:
    seed-demo is refused in one line (exit 2), nothing is added, and the dev clock stays refused.
    With --if-empty (what `make run` uses) it is skipped, as before."""
    import_feeds(empty_store, tmp_path)
    before = asyncio.run(_register_size(empty_store["SIGNPOST_DATABASE_URL"]))
    refused = run_signpost("seed-demo", "--children", "60", env=empty_store, cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = [said for said in refused.stderr.splitlines() if not said.startswith("{")]
    assert line.startswith("signpost: this store holds imported data, so demo data is not added to it")
    assert asyncio.run(_register_size(empty_store["SIGNPOST_DATABASE_URL"])) == before
    assert "not seeding" in run(empty_store, tmp_path, "seed-demo", "--if-empty", "--children", "60")
    assert_refused(*dev_console(empty_store, tmp_path))


def test_importing_into_a_demo_store_ends_its_dev_clock(empty_store: dict[str, str], tmp_path: Path) -> None:
    """A demo store that then receives an import may hold real data: the dev clock is refused from then on."""
    run(empty_store, tmp_path, "seed-demo", "--children", "60")
    import_feeds(empty_store, tmp_path)
    assert_refused(*dev_console(empty_store, tmp_path))


def test_after_the_clock_moves_an_authenticator_apps_code_still_works(
    empty_store: dict[str, str], tmp_path: Path
) -> None:
    """Rehearsing expiry with a real authenticator app: after ':clock +2h' its code (the real time's)
    was refused as wrong, and only a code for two hours ahead was taken, so rehearsing a grant's
    expiry locked the practitioner out. Codes are checked against the time the apps keep."""
    run(empty_store, tmp_path, "seed-demo", "--children", "60")
    run(empty_store, tmp_path, "totp", "enrol", "NS-P0001", "--secret-file", "secret.txt")
    app = pyotp.TOTP(secret_from((tmp_path / "secret.txt").read_text("utf-8")))
    moved = datetime.now(UTC) + timedelta(hours=2)
    # A code for the moved time, then the app's own: only the app's finishes the set-up and answers.
    lines = f":clock +2h\n999 000 1006\n{app.at(moved)}\n{app.now()}\n:quit\n"
    session = run_signpost(
        "console", "--as", "NS-P0001", env={**empty_store, "SIGNPOST_DEV_CLOCK": "1"}, cwd=tmp_path, stdin=lines
    )
    assert session.returncode == 0, session.stderr
    assert "Dev clock moved forward" in session.stdout
    assert session.stdout.count("didn't match") == 1, session.stdout
    assert "Signposts for 999 000 1006" in session.stdout, session.stdout
