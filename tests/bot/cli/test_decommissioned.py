"""Once Signpost is switched off, and once its personal data is destroyed, `signpost` takes nothing
new in and hands nothing out: every command declares whether it still runs
(``bot.cli.arguments.after_switch_off``), and the one gate (``handlers.operator.decommissioned``)
refuses the others in one kind line, exit 2, audited refused, before they do anything. The reads
that prove what happened (status, certificate, audit, transparency) still answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli.common import opened
from bot.cli.main import commands, is_group, parser
from handlers.operator import lifecycle, people, register
from handlers.operator.common import Audit, Refused, audited
from handlers.roll import Roll
from handlers.vocabulary import Action
from store.db import Database
from store.keys.crypto import KeyRing
from store.tables.people import Practitioner
from tests.bot.cli.conftest import Cli, Run
from tests.spread import either_store

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def today() -> str:
    """The command's day as it prints it, read when the test runs (not when the module is
    collected: a run that crosses midnight must not send yesterday as today)."""
    return date.today().strftime("%d/%m/%Y")


async def _switched_off(cli: Cli, *, destroy: bool) -> None:
    """The examples imported, then Signpost switched off today (and everything destroyed)."""
    feeds = [str(EXAMPLES / name) for name in ("practitioners.csv", "children.csv", "involvements.csv")]
    imported = await cli.run("import", *feeds)
    assert imported.code == 0, imported.err
    scheduled = await cli.run("decommission", "schedule", "--switch-off", today(), "--at-once")
    assert scheduled.code == 0, scheduled.err
    if destroy:
        destroyed = await cli.run("decommission", "destroy")
        assert destroyed.code == 0, destroyed.err


def _refused_kindly(run: Run, command: str) -> None:
    """Exit 2, one line naming the date, what no longer runs and what still does; no traceback."""
    assert run.code == 2, (run.out, run.err)
    assert run.said.startswith(f"signpost: Signpost was decommissioned on {today()}"), run.said
    assert len(run.said.splitlines()) == 1, run.said
    assert f"`signpost {command}`" in run.said
    assert "Still working: decommission status, certificate and destroy;" in run.said
    assert "Traceback" not in run.err and "command_crashed" not in run.err


async def _last_event(cli: Cli, action: str) -> dict[str, object]:
    exported = await cli.run("audit", "export")
    assert exported.code == 0, exported.err
    events = [json.loads(line) for line in exported.out.splitlines()]
    last: dict[str, object] = [event for event in events if event["action"] == action][-1]
    return last


async def _contact_details(db: Database) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = (await session.execute(select(Practitioner.phone, Practitioner.email))).all()
    return [(phone, email) for phone, email in rows if phone or email]


async def _still_readable(cli: Cli) -> None:
    status = await cli.run("decommission", "status")
    assert status.code == 0, status.err
    certificate = await cli.run("decommission", "certificate")
    assert certificate.code == 0, certificate.err
    assert json.loads(certificate.out)["certificate"]["service"] == "signpost"


async def test_after_destruction_an_import_of_practitioners_is_refused_and_writes_nothing(
    cli: Cli, db: Database
) -> None:
    """The newcomer's import wrote names, phones and e-mails back into the destroyed store (exit 0)
    while `decommission status` still said all personal data had been destroyed."""
    await _switched_off(cli, destroy=True)
    before = await _contact_details(db)
    refused = await cli.run("import", str(EXAMPLES / "practitioners.csv"))
    _refused_kindly(refused, "import")
    assert await _contact_details(db) == before
    event = await _last_event(cli, "import")
    assert (event["outcome"], event["detail"]) == ("refused", "switched off")
    await _still_readable(cli)


@either_store  # the gate's refusal in words, before the command does anything: one store shows it (tests/spread.py)
async def test_after_destruction_an_import_of_children_is_refused_without_a_crash(cli: Cli) -> None:
    """It stopped "by an unexpected error (NoTermKey)", a traceback in the log."""
    await _switched_off(cli, destroy=True)
    _refused_kindly(await cli.run("import", str(EXAMPLES / "children.csv")), "import")


@either_store  # the gate's refusal in words, before the command does anything: one store shows it (tests/spread.py)
async def test_after_destruction_keys_rotate_is_refused_and_the_certificate_stays_readable(
    cli: Cli, keys: KeyRing
) -> None:
    """A rotation wrote new KEKs into the emptied key file, and every command after it (status and
    certificate included) was refused: the key file no longer belonged to the store."""
    await _switched_off(cli, destroy=True)
    assert keys.path is not None
    emptied = keys.path.read_bytes()
    _refused_kindly(await cli.run("keys", "rotate"), "keys rotate")
    assert keys.path.read_bytes() == emptied
    event = await _last_event(cli, "keys_rotate")
    assert (event["outcome"], event["detail"]) == ("refused", "switched off")
    await _still_readable(cli)


@either_store  # the gate's refusal in words, before the command does anything: one store shows it (tests/spread.py)
async def test_after_destruction_totp_enrol_and_match_are_refused_without_a_crash(cli: Cli, tmp_path: Path) -> None:
    """Both stopped "by an unexpected error (KeyError)"; the secret file is not made."""
    await _switched_off(cli, destroy=True)
    await _enrol_and_match_refused(cli, tmp_path)
    await _still_readable(cli)


async def _enrol_and_match_refused(cli: Cli, tmp_path: Path) -> None:
    """`totp enrol` (no secret file made) and `match` each refused in one kind line."""
    secret = tmp_path / "y"
    _refused_kindly(await cli.run("totp", "enrol", "EX-P002", "--secret-file", str(secret)), "totp enrol")
    assert not secret.exists()
    roll = tmp_path / "roll.csv"
    roll.write_text((EXAMPLES / "children.csv").read_text("utf-8"), encoding="utf-8")
    _refused_kindly(await cli.run("match", str(roll), "--as", "EX-ADMIN"), "match")


async def test_once_switched_off_nothing_is_taken_in_or_handed_out_before_destruction(cli: Cli, tmp_path: Path) -> None:
    """Between switch-off and destruction import, enrolment and match still worked; now they are
    refused, while status (and destruction itself) still run."""
    await _switched_off(cli, destroy=False)
    _refused_kindly(await cli.run("import", str(EXAMPLES / "practitioners.csv")), "import")
    await _enrol_and_match_refused(cli, tmp_path)
    assert (await cli.run("decommission", "status")).code == 0
    assert (await cli.run("decommission", "destroy")).code == 0
    await _still_readable(cli)


@either_store  # which commands the gate lets by: one store shows it
async def test_a_subject_access_report_and_the_practitioner_list_still_answer_before_destruction(cli: Cli) -> None:
    """A child's family keeps its right of access while the data is held (60 days by default after
    the switch-off): `audit sar` was refused then, while `audit export --child` ran (review). Both
    reads run, and `practitioner list` (who is linked) too."""
    await _switched_off(cli, destroy=False)
    child = next(line.split(",", 1)[0] for line in (EXAMPLES / "children.csv").read_text("utf-8").splitlines()[1:])
    for args in (("audit", "sar", child), ("practitioner", "list")):
        run = await cli.run(*args)
        assert run.code == 0, (args, run.err)
        assert "decommissioned" not in run.said


async def test_after_destruction_a_subject_access_report_says_the_data_is_destroyed_and_keeps_no_reference(
    cli: Cli,
) -> None:
    """After destruction `audit sar` answered "No child with reference … is in the register" and kept
    the typed reference in a new audit event after the certificate (review): it is refused in words
    (the keys were destroyed), its event naming no child; `practitioner list` alike."""
    await _switched_off(cli, destroy=True)
    run = await cli.run("audit", "sar", "999 000 1006")
    assert run.code == 2 and "keys of this store were destroyed" in run.said, run.said
    event = await _last_event(cli, "sar")
    assert event["outcome"] == "refused" and not event.get("subject_refs"), event
    listed = await cli.run("practitioner", "list")
    assert listed.code == 2 and "keys of this store were destroyed" in listed.said, listed.said


@either_store  # the gate's refusal in words, before the command does anything: one store shows it (tests/spread.py)
async def test_make_runs_seed_if_empty_on_a_decommissioned_store_says_so_and_succeeds(cli: Cli) -> None:
    """`make run` is `seed-demo --if-empty` then `signpost run`: on a decommissioned store the seed
    stopped make with exit 2. It says it does not seed, exit 0, audited refused (nothing seeded)."""
    await _switched_off(cli, destroy=True)
    run = await cli.run("seed-demo", "--if-empty")
    assert run.code == 0, run.err
    assert run.out.strip().startswith(f"Signpost was decommissioned on {today()}") and run.out.strip().endswith(
        "; not seeding."
    )
    assert (await _last_event(cli, "seed_demo"))["outcome"] == "refused"
    _refused_kindly(await cli.run("seed-demo"), "seed-demo")


async def test_the_reads_that_prove_what_happened_still_answer_after_destruction(cli: Cli) -> None:
    """Status, certificate, the audit and the schema's check still run (the transparency report too:
    it answers that no month is over yet, not that Signpost is decommissioned); a backup does not
    (tests/bot/cli/test_backups_outlive_destruction.py)."""
    await _switched_off(cli, destroy=True)
    for args in (("audit", "verify"), ("audit", "export"), ("db", "check")):
        run = await cli.run(*args)
        assert run.code == 0, (args, run.err)
    assert "decommissioned" not in (await cli.run("report", "transparency")).said
    await _still_readable(cli)


@either_store  # a file never written over: one store shows it (tests/spread.py)
async def test_a_certificate_is_never_written_over_an_existing_file(cli: Cli, tmp_path: Path) -> None:
    """`--out` a second time silently overwrote the file; it is refused as backup refuses one."""
    await _switched_off(cli, destroy=True)
    out = tmp_path / "cert.json"
    assert (await cli.run("decommission", "certificate", "--out", str(out))).code == 0
    first = out.read_bytes()
    again = await cli.run("decommission", "certificate", "--out", str(out))
    assert again.code == 2
    assert again.said == f"signpost: {out} already exists: choose a new file name"
    assert out.read_bytes() == first
    event = await _last_event(cli, "decommission")
    assert (event["outcome"], event["detail"]) == ("refused", "certificate; file exists")


def test_every_command_declares_whether_it_runs_once_switched_off() -> None:
    """No command is left to chance: each says whether it still runs once Signpost is switched off."""
    undeclared = [
        path
        for path, command in commands(parser()).items()
        if not is_group(command) and not isinstance(command.get_default("after_switch_off"), bool)
    ]
    assert undeclared == []


@either_store  # refused in words for the key file's state: one store shows it (tests/spread.py)
async def test_past_the_gate_a_store_whose_keys_are_destroyed_refuses_in_words(cli: Cli, tmp_path: Path) -> None:
    """Reached without the switch-off gate (``audited`` told nothing), importing children stopped on
    NoTermKey, and enrolment, match and rotation on a KeyError (no current key): each is now refused
    in words, audited refused, and the key file is left as decommissioning emptied it."""
    await _switched_off(cli, destroy=True)
    roll = tmp_path / "roll.csv"
    roll.write_text((EXAMPLES / "children.csv").read_text("utf-8"), encoding="utf-8")
    async with opened() as app:
        uses: list[tuple[Action, str, Callable[[Audit], Awaitable[object]]]] = [
            (Action.IMPORT, "ops", lambda audit: register.import_paths(app.ctx, audit, [EXAMPLES / "children.csv"])),
            (Action.TOTP_ENROL, "ops", lambda audit: people.totp_enrol(app.ctx, audit, "EX-ADMIN", replace=True)),
            (
                Action.MATCH_BATCH,
                "EX-ADMIN",
                lambda audit: register.match_roll(app.ctx, audit, Roll.from_path(roll), 3, uuid.uuid4().hex),
            ),
            (Action.KEYS_ROTATE, "ops", lambda audit: lifecycle.rotate_keys(app.ctx, audit)),
        ]
        for action, who, use in uses:
            with pytest.raises(Refused, match="destroyed at decommissioning"):
                async with audited(app.ctx, who, action) as audit:
                    await use(audit)
            event = await _last_event(cli, action.value)
            assert (event["outcome"], event["detail"]) == ("refused", "keys destroyed"), action
    await _still_readable(cli)


@either_store  # help text: one store shows it (tests/spread.py)
def test_decommission_help_names_what_still_runs_once_switched_off(cli: Cli) -> None:
    """Taken from the declarations, so it cannot drift from what the gate lets through."""
    shown = " ".join(cli("decommission", "--help").out.split())
    assert "only these commands still run, and every other is refused:" in shown
    assert "decommission status, certificate and destroy;" in shown
    assert "audit export, verify, checkpoint and sar;" in shown
    for refused in ("import", "match", "keys rotate", "totp"):
        assert f" {refused}" not in shown.split("refused:", 1)[1]


@pytest.mark.parametrize("destroy", [False, True], ids=["switched-off", "destroyed"])
async def test_retention_at_the_terminal_runs_once_switched_off_as_the_schedulers_does(cli: Cli, destroy: bool) -> None:
    """`retention run` was refused once switched off while the scheduler's retention kept running
    (review): the two disagreed. It only archives and destroys, so it runs, before destruction and
    after it (where it finds nothing to do), and is audited as the scheduler's run is."""
    await _switched_off(cli, destroy=destroy)
    for args in (("retention", "run"), ("retention", "run", "--dry-run")):
        run = await cli.run(*args)
        assert run.code == 0, (args, run.err)
        assert "decommissioned" not in run.said and "Retention (" in run.out, (run.out, run.said)
        assert "Traceback" not in run.err
