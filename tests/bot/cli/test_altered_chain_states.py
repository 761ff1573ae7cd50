"""A key file whose key chains' states were altered (too short, or of the right length but not this
store's) once made `signpost retention run` destroy every child: each child's cohort key id was not
one the altered chains derive, so each passed for one whose cohort retention had destroyed, and
`db check` sent the operator to `signpost retention run` to "finish the destruction". Now the short
state is refused as the key file is read, the wrong one as a key file that does not match the store;
either way nothing is destroyed, and the right key file still opens every child."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.db import Database
from store.keys.crypto import KeyRing
from store.tables.register import Child, ChildKey
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_key_file import imported

# What each chain state is replaced with: 3 bytes, or 32 that are not this store's.
ALTERED = {"short": "AAAA", "32 bytes, not this store's": base64.b64encode(bytes(32)).decode("ascii")}


async def held(db_url: str) -> tuple[int, int]:
    """(children not destroyed, wrapped child keys)."""
    db = await Database.open(db_url)
    try:
        async with db.read() as session:
            live = (await session.execute(select(func.count()).where(Child.state != "destroyed"))).scalar_one()
            wrapped = (await session.execute(select(func.count()).select_from(ChildKey))).scalar_one()
    finally:
        await db.close()
    return int(live), int(wrapped)


@pytest.mark.parametrize("altered", ALTERED)
async def test_altered_chain_states_stop_retention_and_destroy_nothing(
    cli: Cli, keys: KeyRing, db_url: str, tmp_path: Path, altered: str
) -> None:
    assert keys.path is not None

    await asyncio.to_thread(imported, cli, tmp_path)
    before = await held(db_url)
    assert before[0] > 0 and before[0] == before[1], before
    doc = json.loads(keys.path.read_text("utf-8"))
    chains = [k for k in doc["keks"] if k.startswith(("~day", "~month", "~term"))]
    assert {k.split(":")[0] for k in chains} == {"~day", "~month", "~term"}, chains
    damaged_doc = doc | {"keks": doc["keks"] | dict.fromkeys(chains, ALTERED[altered])}
    damaged = tmp_path / "damaged.key"
    damaged.write_text(json.dumps(damaged_doc), "utf-8")
    os.chmod(damaged, 0o600)
    env = {"SIGNPOST_KEY_FILE": str(damaged)}
    secrets = [v for v in [*doc["keks"].values(), *damaged_doc["keks"].values()] if len(v) > 8]
    for args in (("retention", "run", "--dry-run"), ("retention", "run")):
        run = await cli.run(*args, env=env)
        assert run.code != 0 and run.out == "", (args, run.out, run.err)
        refusals = [line for line in run.said.splitlines() if line.startswith("signpost: ")]
        assert len(refusals) == 1 and run.said.splitlines()[-1] == refusals[0], run.said  # progress may come first
        assert str(damaged) in run.said, run.said
        assert "does not match this store" in run.said or "not a 32-byte key" in run.said, run.said
        assert not any(secret in run.said for secret in secrets), run.said
    checked = await cli.run("db", "check", env=env)
    assert checked.code != 0, checked.out
    assert "retention run" not in checked.out, checked.out
    if altered != "short":  # the short one is refused as the key file is read
        assert f"FAILED: SIGNPOST_KEY_FILE {damaged} does not match this store" in checked.out, checked.out
    assert await held(db_url) == before
    good = await cli.run("retention", "run", "--dry-run")
    assert good.code == 0, good.err
    assert "0 would be destroyed" in good.out or " destroyed" not in good.out, good.out
