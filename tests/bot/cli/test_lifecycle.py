"""The lifecycle sub-commands as an operator runs them: retention, backup, keys rotate, decommission."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bot.app import build
from bot.cli.lifecycle import NOBODY_TOLD
from bot.cli.main import commands, main, parser
from handlers.grammar import LATEST_YEAR
from store.audit.signing import parse_public_key
from store.db import Database
from store.keys.crypto import KeyRing
from store.keys.keychain import birthday
from store.lifecycle import decommission
from store.register.feeds import Feed, import_feeds
from store.register.refs import make_reference
from tests.bot.process import run_signpost
from tests.factories import CHILDREN_HEADER, INVOLVEMENTS_HEADER, PRACTITIONERS
from tests.spread import either_store
from tests.store.lifecycle.lifecycle_data import snapshot

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date (tests/conftest.py keys)


def today() -> date:
    """The command's day, read when the test runs (not when the module is collected: a run that
    crosses midnight must not send yesterday as today)."""
    return date.today()


def _years_ago(years: int, days_ahead: int) -> str:
    day = today() + timedelta(days=days_ahead)
    return day.replace(year=day.year - years, day=min(day.day, 28)).isoformat()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`main` points structlog at this test's captured stderr; later tests must not write there."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def key_file(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings for the CLI, and a store holding children around their 18th and 24th birthdays."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    key = tmp_path / "signpost.key"
    monkeypatch.setenv("SIGNPOST_DATABASE_URL", db_url)
    monkeypatch.setenv("SIGNPOST_KEY_FILE", str(key))
    children = (
        "\n".join(
            [
                CHILDREN_HEADER,
                f"{make_reference(999_000_701)},Ann,Lowe,,{_years_ago(18, 5)},F,M1 1AA,Northshire,false",
                f"{make_reference(999_000_711)},Bob,Lowe,,{_years_ago(24, 5)},M,M1 1AA,Northshire,false",
                f"{make_reference(999_000_721)},Cat,Lowe,,{_years_ago(10, 0)},F,M1 1AA,Northshire,false",
            ]
        )
        + "\n"
    )

    async def load() -> None:
        db = await Database.open(db_url)
        app = build(db, KeyRing.load_or_create(key))
        feeds = [
            Feed("practitioners.csv", PRACTITIONERS),
            Feed("children.csv", children),
            Feed("involvements.csv", INVOLVEMENTS_HEADER + "\n"),
        ]
        await import_feeds(db, app.ctx.keys, feeds, app.ctx.clock.now())
        await app.close()

    asyncio.run(load())
    return key


def store_digest(db_url: str) -> dict[str, str]:
    async def digest() -> dict[str, str]:
        db = Database.connect(db_url)
        try:
            return await snapshot(db)
        finally:
            await db.close()

    return asyncio.run(digest())


def test_help_lists_the_lifecycle_commands() -> None:
    """`signpost --help` names retention, backup, keys and decommission."""
    text = parser().format_help()
    for name in ("retention", "backup", "keys", "decommission"):
        assert name in text


@either_store  # a usage error, refused before the store is read: one store shows it (tests/spread.py)
def test_as_of_without_dry_run_is_refused(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--as-of` only goes with `--dry-run`: a real run always uses today."""
    assert main(["retention", "run", "--as-of", (today() + timedelta(days=9)).isoformat()]) == 2
    assert "--as-of only works with --dry-run" in capsys.readouterr().err


def test_dry_run_as_of_reports_the_future_and_changes_nothing(
    key_file: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run as of ten days ahead reports one archive and one destruction, and no row changes
    but the audit's: the dry run is audited, as every operator command is."""
    assert main(["retention", "run"]) == 0
    capsys.readouterr()
    before = store_digest(db_url)
    assert main(["retention", "run", "--dry-run", "--as-of", (today() + timedelta(days=10)).isoformat()]) == 0
    out = capsys.readouterr().out
    assert "1 record would be archived at 18, 1 would be destroyed at 24" in out
    after = store_digest(db_url)
    changed = {table for table in before.keys() | after.keys() if before.get(table) != after.get(table)}
    assert changed <= {"audit_events", "audit_chain", "audit_chain_head", "audit_subjects"}, changed


@either_store  # a date refused before the store is read: one store shows it
def test_dry_run_as_of_beyond_seven_years_is_refused_at_once_in_one_line_naming_the_limit(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run reads the register once per day up to --as-of (five years took 12 s on the demo
    store; the last day the CLI reads as a date, in 2199, would run for hours): the day after the
    7-year limit, or 2199's last, is refused with one line naming the limit, status 2, no traceback.
    --help states the limit."""
    limit = birthday(today(), 7)
    for too_far in (limit + timedelta(days=1), date(LATEST_YEAR, 12, 31)):
        assert main(["retention", "run", "--dry-run", "--as-of", too_far.isoformat()]) == 2
        out, err = capsys.readouterr()
        assert out == "" and "Traceback" not in err
        [line] = [said for said in err.splitlines() if not said.startswith("{")]  # log lines are JSON
        assert line.startswith("signpost: --as-of can be at most 7 years ahead, ")
        assert f"{limit:%d/%m/%Y} at the latest" in line and "Please choose an earlier date." in line
    help_text = " ".join(commands(parser())["retention run"].format_help().split())
    assert "(DD/MM/YYYY or YYYY-MM-DD), from today up to 7 years ahead" in help_text


def test_retention_run_reports_counts(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real run says what it did: the child imported at 23 was stored archived by the import, so
    the run archives and destroys nobody."""
    assert main(["retention", "run"]) == 0
    assert "0 records were archived at 18, 0 were destroyed at 24" in capsys.readouterr().out


def connect_as(role: str, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands from here on connect as ``role`` (no password: the test server trusts loopback)."""
    scheme, rest = db_url.split("://", 1)
    monkeypatch.setenv("SIGNPOST_DATABASE_URL", f"{scheme}://{role}@{rest.split('@', 1)[1]}")


@either_store  # a date refused before anything is scheduled: one store shows it (tests/spread.py)
def test_a_switch_off_today_is_refused_without_at_once(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Today's date would switch Signpost off at once, and a switch-off cannot be cancelled once
    begun: refused in one line naming --at-once, status 2, nothing scheduled."""
    assert main(["decommission", "schedule", "--switch-off", today().isoformat()]) == 2
    [line] = [said for said in capsys.readouterr().err.splitlines() if not said.startswith("{")]
    assert line.startswith("signpost: a switch-off today would take effect at once") and "add --at-once" in line
    assert main(["decommission", "status"]) == 0
    assert capsys.readouterr().out == "No decommissioning is scheduled.\n"


@either_store  # the terminal's wording: one store shows it (tests/spread.py)
def test_a_switch_off_at_once_says_it_is_switched_off_not_scheduled(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--at-once` switched Signpost off there and then, and was answered "Scheduled: switch-off …"."""
    assert main(["decommission", "schedule", "--switch-off", today().isoformat(), "--at-once"]) == 0
    destroy_by = today() + timedelta(days=60)
    assert capsys.readouterr().out == (
        f"Switched off now, at once ({today():%d/%m/%Y}); personal data destroyed by {destroy_by:%d/%m/%Y}. "
        "Admins notified.\n"
    )


@pytest.mark.postgres_only
def test_retention_as_the_runtime_role_says_compaction_needs_the_owner_at_once(
    key_file: Path,
    db_url: str,
    runtime_role: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As the role `db grant-runtime` makes, the run retried for 10 seconds and then blamed "another
    connection held the database open": on PostgreSQL 16 and older only a table's owner may vacuum
    it (VACUUM skips the others with a warning). Now it says at once that the role may not, and how
    to compact; the run's own work is done and audited, and its exit status is 1, not success. On
    17 and later grant-runtime grants MAINTAIN, and the runtime role compacts."""
    assert main(["db", "grant-runtime", runtime_role]) == 0
    version, dead = asyncio.run(_dead_rows_as_owner(db_url))
    assert dead  # compaction has something to do
    connect_as(runtime_role, db_url, monkeypatch)
    capsys.readouterr()
    code = main(["retention", "run"])
    out, err = capsys.readouterr()
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    (compaction,) = [e for e in logs if e["event"].startswith("retention_compact")]
    if version >= 170000:
        assert (code, compaction["event"]) == (0, "retention_compacted"), out
        assert "compaction" not in out
        return
    assert code == 1
    assert out.strip().endswith(
        "Storage compaction was not done: the role in SIGNPOST_DATABASE_URL may not vacuum Signpost's tables "
        "(PostgreSQL lets only their owner, or from version 17 a role granted MAINTAIN), so destroyed records "
        "may still be recoverable from the database files. Run `signpost retention run` as the owner role "
        "(the one that runs `signpost db upgrade`): it compacts at once."
    ), out
    assert "another connection" not in out
    assert (compaction["event"], compaction["level"]) == ("retention_compaction_pending", "warning")
    assert compaction["compaction"] == "postgresql vacuum not permitted: the connected role may not vacuum 11 tables"
    assert runtime_role not in err
    told = asyncio.run(_retention_notices(db_url))  # the admins are told the same, not "another connection"
    assert any("Storage compaction was not done: " in b for b in told), told
    assert not any("another connection" in b for b in told), told


@pytest.mark.postgres_only
def test_an_import_that_destroys_as_the_runtime_role_exits_3_saying_compaction_was_not_done(
    key_file: Path,
    db_url: str,
    runtime_role: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An import that destroys a record (here a date of birth corrected to 30 years ago, with
    --destroy-redated) compacts after its commit, as retention does. As the runtime role
    (PostgreSQL 16 and older: it may not VACUUM) that cannot happen: the import is committed, the
    last line says why the destroyed record may still be in the files and what to do, and the exit
    status is 3, not 0 (1 is "nothing imported"). On 17 and later the runtime role compacts: 0."""
    assert main(["db", "grant-runtime", runtime_role]) == 0
    feed = tmp_path / "children.csv"
    feed.write_text(
        f"{CHILDREN_HEADER}\n{make_reference(999_000_721)},Cat,Lowe,,{_years_ago(30, 0)},F,M1 1AA,Northshire,false\n",
        encoding="utf-8",
    )
    connect_as(runtime_role, db_url, monkeypatch)
    capsys.readouterr()
    code = main(["import", str(feed), "--destroy-redated"])
    out, err = capsys.readouterr()
    assert "children: 1 row read" in out, err
    if asyncio.run(_server_version(db_url)) >= 170000:
        assert code == 0 and "compaction" not in out, out
        return
    assert code == 3, err
    assert out.strip().splitlines()[-1].startswith("Storage compaction was not done: the role in SIGNPOST_DATABASE_URL")
    assert "Cat" not in out + err and "Lowe" not in out + err
    help_text = " ".join(commands(parser())["import"].format_help().split())
    assert "3 imported, but it destroyed records and storage compaction did not finish" in help_text


@pytest.mark.postgres_only
def test_destroy_as_the_runtime_role_stops_before_the_certificate_and_the_owner_finishes_it(
    key_file: Path,
    db_url: str,
    runtime_role: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As the role `db grant-runtime` makes (PostgreSQL 16 and older: it may not VACUUM the tables),
    the compact step was recorded done and the certificate signed although no VACUUM FULL ran, so
    the blanked practitioners' old row versions stayed in the files. Now destroy stops before the
    certificate in one line saying why and what to do, exit 2, audited failed; keys and data stay
    done. Run again as the owner, it carries on from compaction and the certificate is issued."""
    assert main(["db", "grant-runtime", runtime_role]) == 0
    assert main(["decommission", "schedule", "--switch-off", today().isoformat(), "--at-once"]) == 0
    owner_url = db_url
    connect_as(runtime_role, db_url, monkeypatch)
    capsys.readouterr()
    code = main(["decommission", "destroy"])
    out, err = capsys.readouterr()
    version, steps, certificate, outcomes = asyncio.run(_destruction_state(owner_url))
    if version >= 170000:  # grant-runtime grants MAINTAIN: the runtime role compacts
        assert code == 0 and "decommissioning complete" in out, err
        assert certificate is not None and steps == "keys,data,compact,certificate"
        return
    assert (code, out) == (2, ""), err
    [line] = [said for said in err.splitlines() if not said.startswith("{")]  # log lines are JSON
    assert line == (
        "signpost: Destruction stopped before the certificate: storage compaction was not done, so deleted "
        "records may still be recoverable from the database files. The role in SIGNPOST_DATABASE_URL may not "
        "vacuum Signpost's tables (PostgreSQL lets only their owner, or from version 17 a role granted "
        "MAINTAIN): run `signpost decommission destroy` again as the owner role (the one that runs "
        "`signpost db upgrade`); it carries on from compaction."
    ), err
    assert "Traceback" not in err
    assert (steps, certificate) == ("keys,data", None)
    assert outcomes[-2:] == [("started", "schedule 1"), ("failed", "schedule 1; compaction not done")], outcomes
    assert main(["decommission", "status"]) == 0
    assert "steps done: keys, data; storage is not compacted yet" in capsys.readouterr().out

    monkeypatch.setenv("SIGNPOST_DATABASE_URL", owner_url)
    assert main(["decommission", "destroy"]) == 0  # at once: the stopped run released its lease
    assert "decommissioning complete" in capsys.readouterr().out
    version, steps, certificate, outcomes = asyncio.run(_destruction_state(owner_url))
    assert steps.startswith("keys,data,compact,certificate") and certificate is not None
    assert ("started", "schedule 1, resuming after keys,data") in outcomes


async def _destruction_state(db_url: str) -> tuple[int, str, str | None, list[tuple[str, str]]]:
    """(server_version_num, steps done, the certificate, destroy events' (outcome, detail) in order)."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        version = int(await conn.fetchval("SHOW server_version_num"))
        row = await conn.fetchrow("SELECT steps_done, certificate FROM decommissions")
        events = await conn.fetch(
            "SELECT outcome, detail FROM audit_events WHERE action = 'decommission_destroy' ORDER BY seq"
        )
    finally:
        await conn.close()
    assert row is not None
    return version, row["steps_done"], row["certificate"], [(e["outcome"], e["detail"]) for e in events]


async def _retention_notices(db_url: str) -> list[str]:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return [r["body"] for r in await conn.fetch("SELECT body FROM notices WHERE kind = 'retention'")]
    finally:
        await conn.close()


async def _server_version(db_url: str) -> int:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()


async def _dead_rows_as_owner(db_url: str) -> tuple[int, int]:
    """(server_version_num, dead row versions in the children table) after the owner rewrote every
    child row in place (what the run's archiving would leave), counted once that connection ends."""
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        version = int(await conn.fetchval("SHOW server_version_num"))
        await conn.execute("UPDATE children SET state = state")
        await conn.execute("SELECT pg_stat_force_next_flush()")
        dead = await conn.fetchval("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'children'")
    finally:
        await conn.close()
    return version, int(dead)


def test_backup_writes_a_new_file_and_never_overwrites(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`signpost backup FILE` writes the backup; a second time to the same file is refused."""
    target = tmp_path / "store.keys.backup"
    assert main(["backup", str(target)]) == 0
    assert target.stat().st_size > 0 and "practitioners' names and contact details" in capsys.readouterr().out
    assert main(["backup", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_keys_rotate_moves_to_a_new_generation(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`signpost keys rotate` leaves only the new master KEK in the key file."""
    assert main(["retention", "run"]) == 0
    assert main(["keys", "rotate"]) == 0
    assert "generation 2" in capsys.readouterr().out
    ring = KeyRing.load_or_create(key_file)
    assert ring.current_kek_id == "k2" and [k for k in ring.keks if k.startswith("k")] == ["k2"]


def test_decommission_schedule_status_cancel(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Schedule, see it in the status, cancel it, and the status says nothing is scheduled."""
    switch_off = today() + timedelta(days=40)
    assert main(["decommission", "schedule", "--switch-off", switch_off.isoformat()]) == 0
    assert main(["decommission", "status"]) == 0
    assert f"switched off on {switch_off:%d/%m/%Y} (in 40 days)" in capsys.readouterr().out
    assert main(["decommission", "schedule", "--switch-off", switch_off.isoformat()]) == 2
    assert "already scheduled" in capsys.readouterr().err
    assert main(["decommission", "cancel"]) == 0
    assert main(["decommission", "status"]) == 0
    assert "No decommissioning is scheduled." in capsys.readouterr().out


def test_decommission_destroy_then_certificate_verifies(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before switch-off `destroy` is refused; from switch-off it destroys, and the certificate
    written by `decommission certificate --out` carries a valid Ed25519 signature."""
    assert main(["decommission", "schedule", "--switch-off", (today() + timedelta(days=1)).isoformat()]) == 0
    assert main(["decommission", "destroy"]) == 2
    assert "after the switch-off date" in capsys.readouterr().err
    assert main(["decommission", "cancel"]) == 0
    published = publish_key(tmp_path, capsys)
    assert main(["decommission", "schedule", "--switch-off", today().isoformat(), "--at-once"]) == 0
    assert main(["decommission", "destroy"]) == 0
    assert "decommissioning complete" in capsys.readouterr().out
    out = tmp_path / "certificate.json"
    assert main(["decommission", "certificate", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert decommission.verify(document, parse_public_key(published.read_text()))
    assert document["certificate"]["destroyed"]["children"] == 3
    assert KeyRing.load_or_create(key_file).keks == {}


@pytest.mark.postgres_only  # the limit holds for every file the process writes: a SQLite store cannot even open
def test_a_certificate_write_cut_short_leaves_no_certificate_under_its_name(key_file: Path, tmp_path: Path) -> None:
    """`decommission certificate --out` writes as `teams package --out` does: one whose write stops
    half-way (the disk full, here the file-size limit at half the certificate; a kill -9 there
    leaves the same) leaves no file under the name given, which would be kept as the proof of
    destruction cut short, and says so in one line; a second run writes the whole certificate and
    leaves nothing else behind."""
    assert main(["decommission", "schedule", "--switch-off", today().isoformat(), "--at-once"]) == 0
    assert main(["decommission", "destroy"]) == 0
    out = tmp_path / "certificate.json"
    assert main(["decommission", "certificate", "--out", str(out)]) == 0
    whole = out.stat().st_size
    out.unlink()
    before = set(tmp_path.iterdir())

    cut = run_signpost("decommission", "certificate", "--out", str(out), cwd=tmp_path, file_size_limit=whole // 2)
    said = [line for line in cut.stderr.splitlines() if not line.startswith("{")]  # not the log's JSON lines
    assert (cut.returncode, said) == (2, [f"signpost: cannot write {out}: File too large"])
    assert not out.exists()
    again = run_signpost("decommission", "certificate", "--out", str(out), cwd=tmp_path)
    assert (again.returncode, again.stdout) == (0, f"Certificate written to {out}.\n"), again.stderr
    assert set(tmp_path.iterdir()) - before == {out}
    assert json.loads(out.read_text())["certificate"]["destroyed"]["children"] == 3


def publish_key(folder: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """What an operator does before decommissioning: publish the key (`audit checkpoint --public-key`)."""
    capsys.readouterr()
    assert main(["audit", "checkpoint", "--public-key"]) == 0
    published = folder / "signpost.pub"
    published.write_text(capsys.readouterr().out)
    return published


def test_after_decommissioning_audit_verify_works_from_the_published_key(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#13 item 4: once every secret is destroyed, `audit verify` still checks the whole chain and its
    stored checkpoints — with the published key, and with the public key kept on the host — and
    `audit checkpoint --public-key` still prints the same key."""
    assert main(["audit", "checkpoint"]) == 0
    published = publish_key(tmp_path, capsys)
    assert main(["decommission", "schedule", "--switch-off", today().isoformat(), "--at-once"]) == 0
    assert main(["decommission", "destroy"]) == 0
    capsys.readouterr()
    on_disk = json.loads(key_file.read_text())
    assert on_disk["signing_seed"] == "" and on_disk["keks"] == {}  # every secret is gone
    assert main(["audit", "verify", "--public-key", str(published)]) == 0
    assert "OK:" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    assert "OK:" in capsys.readouterr().out
    assert main(["audit", "checkpoint", "--public-key"]) == 0
    assert capsys.readouterr().out == published.read_text()
    assert main(["audit", "checkpoint"]) == 2  # nothing can be signed any more, and it says so
    assert "destroyed" in capsys.readouterr().err


def test_certificate_verifies_only_against_the_published_key_and_carries_the_chain_head(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#13 item 5: `decommission destroy` writes the final chain head (what `audit verify` prints);
    `decommission certificate --verify FILE --public-key KEYFILE` accepts the real certificate, and
    refuses one whose counts were edited and re-signed by a fresh key embedded in it."""
    published = publish_key(tmp_path, capsys)
    assert main(["decommission", "schedule", "--switch-off", today().isoformat(), "--at-once"]) == 0
    assert main(["decommission", "destroy"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--public-key", str(published)]) == 0  # the auditor's check: no event
    head = capsys.readouterr().out.split("head ")[-1].strip()
    real = tmp_path / "certificate.json"
    assert main(["decommission", "certificate", "--out", str(real)]) == 0  # audited: the chain goes on
    capsys.readouterr()
    document = json.loads(real.read_text())
    assert document["certificate"]["audit"]["chain_head"] == head
    assert main(["decommission", "certificate", "--verify", str(real), "--public-key", str(published)]) == 0
    assert capsys.readouterr().out.startswith("VALID")

    forger = Ed25519PrivateKey.generate()
    body = document["certificate"]
    body["destroyed"]["children"] = 0
    body["public_key"] = base64.b64encode(forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    document["signature"] = base64.b64encode(forger.sign(decommission.canonical(body))).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    assert main(["decommission", "certificate", "--verify", str(forged), "--public-key", str(published)]) == 1
    assert capsys.readouterr().out.startswith("INVALID")
    assert main(["decommission", "certificate", "--verify", str(forged)]) == 2  # the published key is required
    assert "--public-key" in capsys.readouterr().err


@either_store  # a file refused unread: one store shows it (tests/spread.py)
def test_a_certificate_or_key_file_that_is_not_utf8_is_said_in_plain_words(
    key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`decommission certificate --verify` printed Python's UnicodeDecodeError for a file that is
    not UTF-8; now one line saying so, and never the bytes or the codec's words."""
    latin = tmp_path / "certificate.json"
    latin.write_bytes('{"zz9": "caf\xe9"}'.encode("latin-1"))
    published = publish_key(tmp_path, capsys)
    assert main(["decommission", "certificate", "--verify", str(latin), "--public-key", str(published)]) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
    assert said == [f"signpost: {latin} is not UTF-8 text"]


def test_schedule_and_cancel_say_so_when_no_admin_is_there_to_tell(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tester's report: with the register's only admin gone, `decommission schedule` and `cancel`
    still said "Admins notified." though no notice was made. They say nobody was told, and how the
    notices still to come reach someone; the schedule stands (it is the operator's to make)."""
    assert main(["practitioner", "leave", "AD01"]) == 0
    capsys.readouterr()
    soon = today() + timedelta(days=40)
    assert main(["decommission", "schedule", "--switch-off", soon.isoformat()]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"Scheduled: switch-off {soon:%d/%m/%Y}") and "Admins notified" not in said, said
    assert NOBODY_TOLD in said, said
    assert main(["decommission", "cancel"]) == 0
    said = capsys.readouterr().out
    assert said == f"Decommissioning cancelled. {NOBODY_TOLD}\n", said
    assert main(["practitioner", "return", "AD01"]) == 0
    capsys.readouterr()
    assert main(["decommission", "schedule", "--switch-off", soon.isoformat()]) == 0
    assert capsys.readouterr().out.endswith(". Admins notified.\n")
