"""Hostile command-line arguments (a hostile review): a practitioner id holding a NUL, or a byte
that is not UTF-8 (Python hands it over as a lone surrogate), and a moment whose offset carries it
past the calendar. Each crashed the command after it had opened the store ("stopped by an
unexpected error", a traceback in the log: PostgreSQL cannot keep a NUL, no database can encode
half a character, and the UTC conversion overflowed). Each is now a usage error naming the argument,
before any store is opened, and nothing is audited or changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import Signpost
from store.tables.audit import AuditEvent
from tests.bot.cli.conftest import Cli
from tests.factories import load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NUL_ID = "P002\x00"
UNDECODABLE_ID = "P002\udcff"  # `signpost … $'P002\xff'`: a byte that is not UTF-8, as Python's argv holds it

BAD_IDS = [
    ("practitioner", "unlink", "{id}"),
    ("practitioner", "leave", "{id}"),
    ("practitioner", "return", "{id}"),
    ("totp", "enrol", "{id}"),
    ("totp", "reset", "{id}"),
    ("audit", "export", "--actor", "{id}"),
    ("match", "roll.csv", "--as", "{id}"),
]


async def audit_count(signpost: Signpost) -> int:
    async with signpost.ctx.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one())


def refused_as_usage(err: str, argument: str) -> None:
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert said[0].startswith("usage: signpost "), err
    assert argument in said[-1] and "control character or an invisible formatting mark" in said[-1], err
    assert "command_crashed" not in err and "Traceback" not in err and "unexpected error" not in err


@pytest.mark.parametrize("bad_id", [NUL_ID, UNDECODABLE_ID], ids=["nul", "not-utf8"])
@pytest.mark.parametrize("args", BAD_IDS, ids=[" ".join(a[:2]) for a in BAD_IDS])
async def test_a_practitioner_id_with_a_hidden_character_is_a_usage_error_before_anything_runs(
    cli: Cli, signpost: Signpost, args: tuple[str, ...], bad_id: str
) -> None:
    await load_standard(signpost)
    Path("roll.csv").write_text("child_ref\n", encoding="utf-8")
    before = await audit_count(signpost)
    run = await cli.run(*(a.format(id=bad_id) for a in args))
    assert run.code == 2 and run.out == ""
    refused_as_usage(run.err, "PRACTITIONER_ID" if args[-1] == "{id}" and len(args) == 3 else args[-2])
    assert await audit_count(signpost) == before


@pytest.mark.parametrize("flag", ["--since", "--until"])
@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
async def test_a_moment_past_the_calendar_in_utc_is_a_usage_error(
    cli: Cli, signpost: Signpost, flag: str, moment: str
) -> None:
    await load_standard(signpost)
    before = await audit_count(signpost)
    run = await cli.run("audit", "export", flag, moment)
    assert run.code == 2 and run.out == ""
    said = [line for line in run.err.splitlines() if not line.startswith("{")]
    assert said[0].startswith("usage: signpost audit export") and f"argument {flag}" in said[-1], run.err
    assert "command_crashed" not in run.err and "Traceback" not in run.err
    assert await audit_count(signpost) == before


EMPTY_ARGUMENTS = [
    *BAD_IDS,
    ("import", "{id}"),
    ("match", "{id}", "--as", "P002"),
    ("db", "check", "--file", "{id}"),
    ("backup", "{id}"),
    ("decommission", "certificate", "--out", "{id}"),
]


@pytest.mark.parametrize("args", EMPTY_ARGUMENTS, ids=[" ".join(a[:3]) for a in EMPTY_ARGUMENTS])
async def test_an_empty_id_or_path_is_a_usage_error_saying_what_it_must_be(
    cli: Cli, signpost: Signpost, args: tuple[str, ...]
) -> None:
    """`practitioner unlink ''` said "no practitioner  in the register" (no id where one goes), and an
    empty path read as "." (`import ''`: "cannot read .: Is a directory"): an empty practitioner id or
    path is a usage error saying what the argument must be, before any store is opened."""
    await load_standard(signpost)
    before = await audit_count(signpost)
    run = await cli.run(*(a.format(id="") for a in args))
    assert run.code == 2 and run.out == ""
    said = [line for line in run.err.splitlines() if not line.startswith("{")]
    assert said[0].startswith("usage: signpost "), run.err
    assert said[-1].endswith(
        (
            "needs a practitioner id, as in the practitioners feed (e.g. NS-DM01)",
            "needs a path: an empty one names no file",
        )
    ), run.err
    assert "  " not in said[-1] and "command_crashed" not in run.err and "Traceback" not in run.err
    assert await audit_count(signpost) == before
