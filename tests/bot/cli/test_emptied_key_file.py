"""A key file whose keys were destroyed at decommissioning holds only the public key that verifies
its store's certificate: it still opens that store (status, certificate, audit), and any other
store refuses it at start in one line (store/keys/binding.py). It was accepted by a new empty
store, and `seed-demo` then stopped "by an unexpected error (NoTermKey)" with a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.bot.process import clean_environment, run_signpost
from tests.databases import Templates
from tests.spread import either_store

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
FEEDS = [str(EXAMPLES / name) for name in ("practitioners.csv", "children.csv", "involvements.csv")]


@pytest.fixture
def another_store(backend: str, templates: Templates) -> Iterator[str]:
    """A new empty store on the same backend as ``db_url``."""
    url = templates.sqlite() if backend == "sqlite" else templates.postgres()
    yield url
    if backend == "postgres":
        templates.drop_postgres(url)


def decommissioned(env: dict[str, str], folder: Path) -> None:
    """The examples imported, then Signpost switched off today and its personal data destroyed."""
    today = date.today().strftime("%d/%m/%Y")
    for args in (("import", *FEEDS), ("decommission", "schedule", "--switch-off", today, "--at-once")):
        run = run_signpost(*args, env=env, cwd=folder)
        assert run.returncode == 0, run.stderr
    destroyed = run_signpost("decommission", "destroy", env=env, cwd=folder)
    assert destroyed.returncode == 0, destroyed.stderr


def said(run_stderr: str) -> str:
    """What `signpost` told the operator, without its JSON log lines."""
    return "\n".join(line for line in run_stderr.splitlines() if not line.startswith("{")).strip()


@either_store  # a key file refused by a new store in one line: one store shows it (tests/spread.py)
def test_an_emptied_key_file_is_refused_by_a_new_store_in_one_line(
    db_url: str, another_store: str, tmp_path: Path
) -> None:
    """The README's decommission rehearsal, then `make clean` and `make run`: the kept key file, its
    keys destroyed, opened the new empty store and `seed-demo` crashed on NoTermKey, every time.
    It is refused in one line saying what happened and what to do, exit 2, and nothing is seeded;
    the decommissioned store still opens with it."""
    env = clean_environment(db_url, tmp_path)
    decommissioned(env, tmp_path)
    key_file = Path(env["SIGNPOST_KEY_FILE"])
    emptied = key_file.read_bytes()
    fresh = {**env, "SIGNPOST_DATABASE_URL": another_store}
    for args in (("seed-demo", "--if-empty"), ("import", *FEEDS), ("decommission", "status")):
        run = run_signpost(*args, env=fresh, cwd=tmp_path)
        told = said(run.stderr)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert len(told.splitlines()) == 1, told
        assert told.startswith(f"signpost: SIGNPOST_KEY_FILE {key_file} "), told
        assert "destroyed at decommissioning" in told and "move it aside" in told, told
        assert "Traceback" not in run.stderr and "command_crashed" not in run.stderr
    assert key_file.read_bytes() == emptied
    for args in (("decommission", "status"), ("decommission", "certificate"), ("audit", "verify")):
        run = run_signpost(*args, env=env, cwd=tmp_path)
        assert run.returncode == 0, (args, run.stderr)


def test_make_clean_sets_an_emptied_key_file_aside_so_make_run_seeds_again(tmp_path: Path) -> None:
    """The same rehearsal through the Makefile's own `clean`, in a copy of the checkout: `make run`
    (here its `seed-demo --if-empty`) works again after it, and the emptied key file is kept, moved
    aside under the name README gives (it holds the public key that verifies the certificate)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "Makefile", checkout / "Makefile")
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").symlink_to(sys.executable)  # `make clean` removes the link only
    env = clean_environment("unused", checkout)
    del env["SIGNPOST_DATABASE_URL"], env["SIGNPOST_KEY_FILE"]  # make's defaults: ./signpost.db, ./signpost.key
    seeded = run_signpost("seed-demo", "--if-empty", env=env, cwd=checkout)
    assert seeded.returncode == 0, seeded.stderr
    today = date.today().strftime("%d/%m/%Y")
    for args in (("decommission", "schedule", "--switch-off", today, "--at-once"), ("decommission", "destroy")):
        run = run_signpost(*args, env=env, cwd=checkout)
        assert run.returncode == 0, run.stderr
    emptied = (checkout / "signpost.key").read_bytes()
    clean = subprocess.run(["make", "clean"], cwd=checkout, env=env, capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stderr
    assert "signpost.key moved aside to signpost.key.decommissioned" in clean.stdout, clean.stdout
    assert (checkout / "signpost.key.decommissioned").read_bytes() == emptied
    again = run_signpost("seed-demo", "--if-empty", env=env, cwd=checkout)
    assert again.returncode == 0, again.stderr
    assert "command_crashed" not in again.stderr
    assert "kept" in subprocess.run(["make", "clean"], cwd=checkout, env=env, capture_output=True, text=True).stdout
    assert (checkout / "signpost.key").exists()  # a key file that still holds keys is kept where it is
