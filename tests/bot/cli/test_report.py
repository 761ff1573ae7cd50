"""`signpost report transparency` as an operator runs it: a real process, its stdout and its exit status."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import Signpost
from store.keys.crypto import KeyRing
from tests import misaligned
from tests.spread import either_store
from tests.transparency_audit import PERSONAL, load_people, write_known_audit


async def run(db_url: str, keys: KeyRing, cwd: Path, *args: str) -> tuple[int, str, str]:
    """`python -m bot ARGS…` against the test's store and key file (from a directory without a .env)."""
    env = {**os.environ, "SIGNPOST_DATABASE_URL": db_url, "SIGNPOST_KEY_FILE": str(keys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_transparency_report_prints_october_as_csv_json_and_html(
    signpost: Signpost, db_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """CSV (the default), JSON and the HTML page, for the month asked; the numbers are the audit's, the
    small ones "<5", and nothing personal is printed."""
    await load_people(signpost)
    await write_known_audit(signpost)

    code, out, err = await run(db_url, keys, tmp_path, "report", "transparency", "--month", "2026-10")
    assert code == 0, err
    rows = {(r["section"], r["measure"], r["area"]): r["value"] for r in csv.DictReader(io.StringIO(out))}
    assert rows[("lookups_keyed", "Answered (contact details shown)", "All authorities")] == "9"
    assert rows[("lookups_keyed", "Answered (contact details shown)", "Southvale")] == "<5"
    assert rows[("contacts", "Lead professionals informed", "Northshire")] == "12"
    assert all(r[0].startswith("2026-10") for r in csv.reader(io.StringIO(out)) if r[0] != "month")

    code, out, err = await run(
        db_url, keys, tmp_path, "report", "transparency", "--month", "2026-10", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    approved = next(s for s in data["sections"] if s["key"] == "access_requests")["rows"][0]
    assert approved["measure"] == "Approved"
    assert approved["national"] == {"count": 6, "suppressed": False, "withheld": False}

    code, page, err = await run(
        db_url, keys, tmp_path, "report", "transparency", "--month", "2026-10", "--format", "html"
    )
    assert code == 0, err
    assert page.startswith("<!doctype html>") and "<svg" in page and "fewer than 5" in page
    for personal in PERSONAL:
        assert personal not in out and personal not in page, personal


@either_store  # a month refused before the store is read: one store shows it (tests/spread.py)
async def test_a_month_not_begun_is_refused_in_one_line(
    signpost: Signpost, db_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """A future or malformed month: exit 2, one line on stderr saying why, nothing on stdout."""
    this_month = datetime.now(UTC).strftime("%Y-%m")  # the latest an admin may check, so far
    code, out, err = await run(db_url, keys, tmp_path, "report", "transparency", "--month", "2999-01")
    assert (code, out) == (2, "")
    # Structured log lines (the test database is reached as a superuser, which is warned) aside:
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert said == [f"signpost: that month has not begun yet (expected YYYY-MM, up to {this_month})"]
    code, out, err = await run(db_url, keys, tmp_path, "report", "transparency", "--month", "last")
    assert code == 2 and "is not a month (expected YYYY-MM" in err


@either_store  # a refusal's wording; the audit's first month read back is the October test's, on both
async def test_with_no_complete_month_of_audit_the_default_month_is_refused_saying_when_the_first_report_comes(
    signpost: Signpost, db_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """No --month and the audit began this month: not last month's zeros but, as for --month of
    last month, exit 2 and one line: which month the first report is for and from when it can be read."""
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (this_month + timedelta(days=32)).replace(day=1)
    code, out, err = await run(db_url, keys, tmp_path, "report", "transparency")
    assert (code, out) == (2, "")
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert said == [
        f"signpost: no month of Signpost's audit is over yet: the first report will be for {this_month:%B %Y} "
        f"and can be read from {next_month:%d/%m/%Y}"
    ]
    last_month = (this_month - timedelta(days=1)).strftime("%Y-%m")
    code, out, err = await run(db_url, keys, tmp_path, "report", "transparency", "--month", last_month)
    assert (code, out) == (2, "") and "is before Signpost's audit begins" in err


@either_store  # a refusal's wording; the audit's first month read back is the October test's, on both
async def test_a_well_formed_month_before_the_audit_is_told_apart_from_a_malformed_one(
    signpost: Signpost, db_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """`--month 1999-01` was "not a month", as `--month 2024-13` is: now it is a month before the
    audit begins, with the months there are reports for (here up to the running one, so far)."""
    await load_people(signpost)
    await write_known_audit(signpost)  # begins with September 2026
    this_month = datetime.now(UTC).strftime("%Y-%m")
    code, out, err = await run(db_url, keys, tmp_path, "report", "transparency", "--month", "1999-01")
    assert (code, out) == (2, "")
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert said == [
        f"signpost: that month is before Signpost's audit begins: there are reports for 2026-09 to {this_month} so far"
    ]
    code, out, err = await run(db_url, keys, tmp_path, "report", "transparency", "--month", "2024-13")
    assert (code, out) == (2, "")
    assert [line for line in err.splitlines() if not line.startswith("{")] == [
        "signpost: that is not a month (expected YYYY-MM, e.g. 2026-10)"
    ]


@either_store  # what each format prints, not the counts (those on both, above): one store shows it
async def test_a_childs_name_under_local_authority_is_not_printed_in_any_format(
    signpost: Signpost, db_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """`signpost report transparency` after a children feed put a child's name under local_authority:
    its CSV, JSON and HTML name Northshire and Southvale as areas, never the child."""
    await load_people(signpost)
    await write_known_audit(signpost)
    assert (await misaligned.import_misaligned(signpost)).ok
    for form in ("csv", "json", "html"):
        code, out, err = await run(
            db_url, keys, tmp_path, "report", "transparency", "--month", "2026-10", "--format", form
        )
        assert code == 0, err
        assert "Northshire" in out and "Southvale" in out, form
        assert misaligned.shown_parts(out + err) == [], form
