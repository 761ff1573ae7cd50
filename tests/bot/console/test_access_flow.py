"""Acceptance: the whole access flow rehearsed in one scripted `signpost console` session.

The real process, stdin piped, on a fresh database of each backend: a practitioner meets a shielded
record and requests access; a duty manager of another authority is refused; the child's duty
manager sees the notice and approves; the practitioner is told and sees the signposts; the dev
clock moves 25 hours; the grant has expired and the record is shielded again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest

from handlers.vocabulary import Platform, Principal
from store.db import Database
from store.lifecycle import demo
from store.people import practitioners
from tests.access_helpers import EXTRA_PRACTITIONERS
from tests.bot.console.test_stepup import secret_from
from tests.bot.process import clean_environment, run_signpost
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS, SHIELDED

pytestmark = [
    pytest.mark.fresh_keys,
    pytest.mark.one_store,
]  # `signpost` works to the real date (tests/conftest.py keys)

NoCodes = Callable[[str], list[str]]


def no_codes(who: str) -> list[str]:
    """Lines answering a step-up prompt for ``who``: none until the TOTP work is merged."""
    return []


def script(codes: NoCodes = no_codes) -> list[str]:
    """The session. ``codes(who)`` follows each command that needs a step-up, so codes slot in."""
    return [
        SHIELDED,
        *codes("P002"),
        f"request {SHIELDED} section 47 enquiry",
        ":as DM01",
        "approve 1",
        *codes("DM01"),
        ":as DM02",
        "pending",
        *codes("DM02"),
        "approve 1",
        *codes("DM02"),
        ":as P002",
        SHIELDED,
        *codes("P002"),
        ":clock +25h",
        SHIELDED,
        *codes("P002"),
        ":quit",
    ]


EXPECTED_IN_ORDER = [
    "acting as P002",
    "A record exists and is shielded",
    "[Request access] type: request 999 000 0050 PURPOSE",
    "Access request 1 for 999 000 0050 sent to a duty manager",
    "Now acting as DM01.",
    "There is no access request 1 for you to decide.",  # another authority's: said as for none
    "Now acting as DM02.",
    "[notice] Access request 1 for shielded record 999 000 0050 from Priya Shah, School nurse, "
    "Northshire School Health (Northshire) needs a decision.",
    "  [Approve] type: approve 1",
    "1 request waiting for a decision:",
    "from Priya Shah, School nurse, Northshire School Health (Northshire), asked ",
    " min; purpose: section 47 enquiry",  # how long it has waited
    "Request 1 approved: P002 can see the signposts for 999 000 0050",
    "Now acting as P002.",
    "[notice] Access request 1 was approved",
    "Signposts for 999 000 0050: 1 involvement.",
    "Lee Hart — Health visitor, Southvale NHS Trust",
    "Dev clock moved forward",
    "[notice] Your access to 999 000 0050 (request 1) has ended.",
    "A record exists and is shielded",
]


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """A clean environment pointing at this test's database and a new key file, feeds imported."""
    clean = clean_environment(db_url, tmp_path)
    extra = EXTRA_PRACTITIONERS.split("\n", 1)[1]
    (tmp_path / "practitioners.csv").write_text(PRACTITIONERS + extra, encoding="utf-8")
    (tmp_path / "children.csv").write_text(CHILDREN, encoding="utf-8")
    (tmp_path / "involvements.csv").write_text(INVOLVEMENTS, encoding="utf-8")
    imported = run_signpost("import", "practitioners.csv", "children.csv", "involvements.csv", env=clean, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    return clean


def assert_in_order(output: str, expected: Sequence[str]) -> None:
    position = 0
    for phrase in expected:
        found = output.find(phrase, position)
        assert found >= 0, f"{phrase!r} not found after position {position} in:\n{output}"
        position = found + len(phrase)


def authenticator_codes(env: dict[str, str], tmp_path: Path) -> NoCodes:
    """Enrol P002, DM01 and DM02 at the terminal; answer exactly the prompts the session raises.

    Prompts come at: P002's first lookup, DM01's approve (before the authority check), DM02's
    pending; DM02's approve and P002's next lookup are still fresh; after ``:clock +25h`` P002 is
    asked again, and answers with the app's next code (its first is used: a code is taken once):
    codes follow the time authenticator apps keep, not the moved clock.
    """
    totps = {}
    for who in ("P002", "DM01", "DM02"):
        secret_file = tmp_path / f"{who}.secret"
        enrolled = run_signpost("totp", "enrol", who, "--secret-file", str(secret_file), env=env, cwd=tmp_path)
        assert enrolled.returncode == 0, enrolled.stderr
        totps[who] = pyotp.TOTP(secret_from(secret_file.read_text("utf-8")))
    prompts = iter([0.0, 0.0, 0.0, None, None, 30.0])  # P002's second code: the app's next one

    def codes(who: str) -> list[str]:
        offset = next(prompts)
        return [] if offset is None else [totps[who].at(time.time() + offset)]

    return codes


def test_request_approve_search_expire_in_one_console_session(env: dict[str, str], tmp_path: Path) -> None:
    """Request → other-authority refusal → approve with a code → signposts → grant expires → shielded."""
    lines = script(authenticator_codes(env, tmp_path))
    asyncio.run(_mark_disposable(env["SIGNPOST_DATABASE_URL"]))  # this test's store is thrown away afterwards
    session = run_signpost(
        "console", "--as", "P002", env={**env, "SIGNPOST_DEV_CLOCK": "1"}, cwd=tmp_path, stdin="\n".join(lines) + "\n"
    )
    assert session.returncode == 0, session.stderr
    assert_in_order(session.stdout, EXPECTED_IN_ORDER)
    assert session.stdout.count("Lee Hart") == 1, "signposts only while the grant was in force"

    exported = run_signpost("audit", "export", env=env, cwd=tmp_path)
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    # The scheduler's retention run audits itself too; it is not part of this story.
    # The scheduler's retention runs and the export's own audit event are not part of this story.
    trail = [(e["action"], e["outcome"], e["actor_id"]) for e in events if e["action"] not in ("retention", "export")]
    assert trail == [
        ("import", "started", None),  # the operator loaded the feeds
        ("import", "done", None),
        ("totp_enrol", "done", None),
        ("totp_enrol", "done", None),
        ("totp_enrol", "done", None),
        ("lookup", "challenged", "P002"),
        ("lookup", "shielded", "P002"),  # the parked lookup, resumed by the code
        ("code", "shielded", "P002"),
        ("request_access", "done", "P002"),
        ("approve", "challenged", "DM01"),
        ("approve", "refused", "DM01"),  # stepped up, but not this child's authority
        ("code", "refused", "DM01"),
        ("pending", "challenged", "DM02"),
        ("pending", "info", "DM02"),
        ("code", "info", "DM02"),
        ("approve", "done", "DM02"),
        ("lead_professional_informed", "done", "P002"),  # issue 18: Lee Hart is told P002 looked (with a grant)
        ("lookup", "answered", "P002"),
        ("grant_expired", "done", None),
        ("lookup", "challenged", "P002"),  # 25 hours later the step-up is stale too
        ("lookup", "shielded", "P002"),
        ("code", "shielded", "P002"),
    ]


def test_the_clock_meta_command_is_refused_without_the_dev_flag(env: dict[str, str], tmp_path: Path) -> None:
    session = run_signpost("console", "--as", "P002", env=env, cwd=tmp_path, stdin=":clock +25h\n:quit\n")
    assert session.returncode == 0
    assert "for development and tests only" in session.stdout
    assert "Dev clock moved forward" not in session.stdout


async def _mark_disposable(db_url: str) -> None:
    """Mark the test's own store as a disposable demo store, as seed-demo would, so the dev clock may run."""
    db = Database.connect(db_url)
    try:
        async with db.write() as session:
            await demo.mark_disposable(session, "test")
    finally:
        await db.close()


async def _link_slack(db_url: str, practitioner_id: str) -> None:
    """Link a Slack identity as an approved registration would (the Slack front end is not needed)."""
    db = Database.connect(db_url)
    try:
        async with db.write() as session:
            principal = Principal(Platform.SLACK, "T1", "U1")
            await practitioners.link_identity(session, principal, practitioner_id, datetime.now(UTC))
    finally:
        await db.close()


def test_operator_unlinks_a_practitioner_from_the_command_line(
    env: dict[str, str], tmp_path: Path, db_url: str
) -> None:
    """`signpost practitioner unlink` removes the link (audited); `list` shows links by id only."""
    asyncio.run(_link_slack(db_url, "P001"))
    listed = run_signpost("practitioner", "list", env=env, cwd=tmp_path)
    assert listed.stdout.splitlines() == ["P001\tNorthshire\tpractitioner\tslack"]
    unknown = run_signpost("practitioner", "unlink", "NOPE", env=env, cwd=tmp_path)
    assert unknown.returncode == 2 and "no practitioner with that id" in unknown.stderr
    done = run_signpost("practitioner", "unlink", "P001", "--platform", "slack", env=env, cwd=tmp_path)
    assert done.returncode == 0 and "Unlinked P001 on slack: 1 identity removed." in done.stdout
    after = run_signpost("practitioner", "list", env=env, cwd=tmp_path)
    assert after.stdout.strip() == "No practitioner has a linked chat identity."
    events = [json.loads(line) for line in run_signpost("audit", "export", env=env, cwd=tmp_path).stdout.splitlines()]
    assert [(e["action"], e["platform"], e["detail"]) for e in events if e["action"] not in ("export", "import")] == [
        ("practitioner_list", "terminal", "every authority"),
        ("unlink", "terminal", "no such practitioner"),  # the id typed is not repeated
        ("unlink", "terminal", "P001 slack 1"),
        ("practitioner_list", "terminal", "every authority"),
    ]
