"""What an auditor finds after an operator works at the terminal: every `signpost` command that
opens the store writes exactly one outcome event (done, refused, invalid or failed), from the
terminal origin with the local account as who — and long work that changes records writes its
``started`` event first. The commands are read from the argument parser, so a new one cannot escape."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli.common import opened, operator_account
from bot.cli.main import commands, parser
from handlers import transparency
from handlers.lifecycle import flows
from handlers.operator import audit as operator_audit
from handlers.operator import lifecycle as operator_lifecycle
from handlers.operator import people as operator_people
from handlers.operator import register as operator_register
from handlers.operator.common import Failed, audited
from handlers.vocabulary import Action
from store.audit import chain as audit_chain
from store.audit import sar
from store.db import Database, sqlite_path
from store.lifecycle import decommission as decommission_store
from store.people import credentials, practitioners
from store.register import demo, feeds
from store.register.feeds import ImportStep
from store.tables.audit import AuditEvent
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_main import write_feeds
from tests.factories import AMY, CHILDREN_HEADER, PRACTITIONERS
from tests.spread import either_store

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date (tests/conftest.py keys)

SECRET = "Amy Jones 03/04/2014 M1 2AB"  # what a failure's message might quote: never audited


async def events(db: Database, *actions: str, after: int = 0) -> list[AuditEvent]:
    async with db.read() as session:
        query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
        if actions:
            query = query.where(AuditEvent.action.in_(actions))
        return list((await session.execute(query)).scalars())


async def last_seq(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.coalesce(func.max(AuditEvent.seq), 0)))).scalar_one())


def assert_terminal(event: AuditEvent) -> None:
    facts = (event.platform, event.tenant, event.channel, event.user_id, event.actor_id)
    assert facts == ("terminal", "signpost", "terminal", operator_account(), None), event.action


# -- every command, from the parser --------------------------------------------------------------

# Commands that open no store of theirs to audit, and why. Everything else must be in SCENARIOS.
EXEMPT = {
    "run": "serves the front ends: each chat command is audited by the dispatcher",
    "console": "the terminal front end: each command typed is audited by the dispatcher",
    "teams package": "builds a zip from settings; opens no store",
    "db upgrade": "changes the schema, not records; runs on stores whose audit table is not yet this version's",
    "db current": "reads the schema's version only; runs on stores behind this version",
    "db history": "reads the schema's version only; runs on stores behind this version",
    "db check": "opens the store read-only: a backup checked stays unchanged, and a damaged store is not written to",
}


@dataclass(frozen=True)
class Step:
    """One run of the command: its arguments after the command's path ({tmp}: the test's folder),
    the outcome it must record, and what to break first for a failure (object, attribute)."""

    args: tuple[str, ...]
    outcome: str
    breaks: tuple[object, str] | None = None


@dataclass(frozen=True)
class Setup:
    """A command run to put the store in shape for the next step (its events are not counted)."""

    argv: tuple[str, ...]


FEEDS = ("import", "{tmp}/practitioners.csv", "{tmp}/children.csv", "{tmp}/involvements.csv")
# Dates are written as placeholders and filled in when each step runs (``dated``), never when the
# module is collected: a run that crosses midnight must not send yesterday as today.
SOON = "{soon}"


def dated(arg: str, tmp: Path | None = None) -> str:
    """``arg`` with its placeholders filled in now: ``{tmp}`` (the test's folder) and the dates."""
    today = date.today()
    return arg.format(
        tmp=tmp,
        today=today.isoformat(),
        yesterday=(today - timedelta(days=1)).isoformat(),
        soon=(today + timedelta(days=40)).isoformat(),
        month=f"{today:%Y-%m}",
    )


def fails(owner: object, name: str) -> Step:
    return Step((), "failed", (owner, name))


SCENARIOS: dict[str, tuple[str, list[Step | Setup]]] = {
    "seed-demo": (
        "seed_demo",
        [
            Step(("--children", "0"), "refused"),
            fails(operator_register, "import_feeds"),
            Step(("--children", "60"), "done"),
        ],
    ),
    "import": (
        "import",
        [
            Step(("{tmp}/absent.csv",), "refused"),
            Step(("{tmp}/bad.csv",), "invalid"),
            Step(FEEDS[1:], "failed", (operator_register, "import_feeds")),
            Step(FEEDS[1:], "done"),
        ],
    ),
    "match": (
        "match_batch",
        [
            Setup(FEEDS),
            Step(("{tmp}/roll.csv", "--as", "P001"), "refused"),
            Step(("{tmp}/absent.csv", "--as", "AD01"), "refused"),
            Step(("{tmp}/bad.csv", "--as", "AD01"), "invalid"),
            Step(("{tmp}/roll.csv", "--as", "AD01"), "failed", (operator_register, "run_batch")),
            Step(("{tmp}/roll.csv", "--as", "AD01"), "answered"),
        ],
    ),
    "totp enrol": (
        "totp_enrol",
        [
            Setup(FEEDS),
            # One file for all three: only the last step, the one done, writes it.
            Step(("NOPE", "--secret-file", "{tmp}/p002.secret"), "refused"),
            Step(("P002", "--secret-file", "{tmp}/p002.secret"), "failed", (credentials, "enrol")),
            Step(("P002", "--secret-file", "{tmp}/p002.secret"), "done"),
        ],
    ),
    "totp reset": (
        "totp_reset",
        [
            Setup(FEEDS),
            Step(("NOPE",), "refused"),
            Step(("P002",), "failed", (credentials, "reset")),
            Step(("P002",), "done"),
        ],
    ),
    "practitioner unlink": (
        "unlink",
        [
            Setup(FEEDS),
            Step(("NOPE",), "refused"),
            Step(("P001",), "failed", (operator_people, "unlink_and_tell")),
            Step(("P001",), "done"),
        ],
    ),
    "practitioner leave": (
        "practitioner_leave",
        [
            Setup(FEEDS),
            Step(("NOPE",), "refused"),
            Step(("P001",), "failed", (credentials, "reset")),
            Step(("P001",), "done"),
        ],
    ),
    "practitioner return": (
        "practitioner_return",
        [
            Setup(FEEDS),
            Setup(("practitioner", "leave", "P001")),
            Step(("NOPE",), "refused"),
            Step(("P001",), "failed", (practitioners, "set_status")),
            Step(("P001",), "done"),
        ],
    ),
    "practitioner list": (
        "practitioner_list",
        [
            Setup(FEEDS),
            fails(practitioners, "linked_identities"),
            Step((), "done"),
            Step(("--authority", "Northshire"), "done"),
        ],
    ),
    "audit export": (
        "export",
        [
            Step(("--since", "02/12/2026", "--until", "01/12/2026"), "refused"),
            fails(operator_audit, "_filter_detail"),
            Step((), "done"),
        ],
    ),
    "audit verify": (
        "audit_verify",
        [Step(("--checkpoint", "{tmp}/junk.txt"), "refused"), fails(operator_audit, "verify"), Step((), "done")],
    ),
    "audit checkpoint": (
        "audit_checkpoint",
        [fails(audit_chain, "make_checkpoint"), Step((), "done"), Step(("--public-key",), "done")],
    ),
    "audit sar": (
        "sar",
        [Setup(FEEDS), Step((AMY,), "failed", (sar, "subject_access")), Step((AMY,), "done")],
    ),
    "retention run": (
        "retention_run",
        [
            Setup(FEEDS),
            Step(("--as-of", SOON), "refused"),
            Step(("--dry-run", "--as-of", "2000-01-01"), "refused"),
            Step(("--dry-run", "--as-of", "31/12/2199"), "refused"),
            fails(flows, "retention_tick"),
            Step((), "done"),
            Step(("--dry-run",), "done"),
        ],
    ),
    "backup": (
        "backup",
        [
            Step(("{tmp}/store.backup",), "failed", (operator_lifecycle, "backup")),
            Step(("{tmp}/store.backup",), "done"),
            Step(("{tmp}/store.backup",), "refused"),  # it is there now: a backup never overwrites
            Step(("{tmp}/no-such-folder/store.backup",), "refused"),
        ],
    ),
    "keys rotate": ("keys_rotate", [Setup(FEEDS), fails(operator_lifecycle, "rotate"), Step((), "done")]),
    "decommission schedule": (
        "decommission",
        [
            Step(("--switch-off", "{yesterday}"), "refused"),
            Step(("--switch-off", SOON), "failed", (flows, "schedule_with_notices")),
            Step(("--switch-off", SOON), "done"),
        ],
    ),
    "decommission status": ("decommission", [fails(flows, "status_text"), Step((), "done")]),
    "decommission cancel": (
        "decommission",
        [
            Step((), "refused"),
            Setup(("decommission", "schedule", "--switch-off", SOON)),
            fails(flows, "cancel_with_notices"),
            Step((), "done"),
        ],
    ),
    "decommission certificate": (
        "decommission",
        [
            Setup(FEEDS),
            Step((), "refused"),
            Setup(("decommission", "schedule", "--switch-off", "{today}", "--at-once")),
            Setup(("decommission", "destroy")),
            Step(("--out", "{tmp}/certificate.json"), "failed", (decommission_store, "current")),
            Step(("--out", "{tmp}/certificate.json"), "done"),
        ],
    ),
    "decommission destroy": (
        "decommission_destroy",
        [
            Setup(FEEDS),
            Step((), "refused"),
            Setup(("decommission", "schedule", "--switch-off", "{today}", "--at-once")),
            fails(flows, "destroy_now"),
            Step((), "done"),
            Step((), "refused"),
        ],
    ),
    "report transparency": (
        "transparency_report",
        [
            Step(("--month", "2999-01"), "refused"),
            Step((), "refused"),  # the audit began this month: no month of it is over yet
            fails(transparency, "build"),
            Step(("--month", "{month}"), "done"),  # the running month, so far
        ],
    ),
    "db grant-runtime": ("grant_runtime", [Step(("Not-A-Role",), "refused")]),  # done: PostgreSQL, below
}


def leaf_commands() -> list[str]:
    """Every command an operator can run, by its path ("audit export"), from the parser itself."""
    found = commands(parser())
    return sorted(path for path, command in found.items() if not _has_subcommands(command))


def _has_subcommands(command: argparse.ArgumentParser) -> bool:
    return any(isinstance(action, argparse._SubParsersAction) for action in command._actions)


def _write_inputs(tmp: Path) -> None:
    write_feeds(tmp)
    (tmp / "bad.csv").write_text(f"{CHILDREN_HEADER}\n9990000018,A,B,,2014-13-01,F,,LA,false\n", encoding="utf-8")
    (tmp / "roll.csv").write_text(f"{CHILDREN_HEADER}\n,Amy,Jones,,2014-04-03,F,,,\n", encoding="utf-8")
    (tmp / "junk.txt").write_text("not a checkpoint\n", encoding="utf-8")


class Broken(RuntimeError):
    """A failure whose message quotes personal data (as a driver's error may quote a row)."""


def _break(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise Broken(SECRET)

    monkeypatch.setattr(owner, name, broken)


def test_every_command_is_either_audited_here_or_exempt_for_a_reason() -> None:
    """The parser's commands split into those run below and the exempt ones, each with its reason:
    a new command fails here until it has scenarios (or a reason), and a stale exemption too."""
    paths = set(leaf_commands())
    assert set(EXEMPT) <= paths, f"exempt but no longer a command: {sorted(set(EXEMPT) - paths)}"
    assert all(reason.strip() for reason in EXEMPT.values())
    unaccounted = paths - set(EXEMPT) - set(SCENARIOS)
    assert not unaccounted, f"give these scenarios here (or a reason in EXEMPT): {sorted(unaccounted)}"


def test_the_top_help_does_not_claim_the_exempt_store_commands_are_audited() -> None:
    """`signpost --help` said every command that opens the store is audited: `db upgrade`, `db
    current`, `db history` and `db check` open it and write no event (EXEMPT, and the README's "Not
    audited"). The claim names them."""
    text = " ".join(parser().format_help().split())
    store_exempt = [path for path, reason in EXEMPT.items() if path.startswith("db ")]
    assert store_exempt == ["db upgrade", "db current", "db history", "db check"]
    assert (
        "Every query is audited, and so is every command below that opens the store, "
        "except db upgrade, current, history and check"
    ) in text, text  # a sentence with its verb ("every query audited, and every command … except …" had none)


@pytest.mark.parametrize("path", [path for path in leaf_commands() if path not in EXEMPT])
async def test_each_command_writes_exactly_one_outcome_event_each_time_it_runs(
    path: str, cli: Cli, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done, refused (bad arguments, not allowed, nothing to do) and failed (an exception, named by
    its kind only): one outcome event per run, of the command's action, from the terminal — and a
    ``started`` event, when there is one, before it."""
    assert path in SCENARIOS, f"`signpost {path}` is new: give it scenarios here (or a reason in EXEMPT)"
    action, steps = SCENARIOS[path]
    _write_inputs(tmp_path)
    for step in steps:
        if isinstance(step, Setup):
            ran = await cli.run(*(dated(arg, tmp_path) for arg in step.argv))
            assert ran.code == 0, (step, ran.err)
            continue
        before = await last_seq(db)
        with monkeypatch.context() as patch:
            if step.breaks is not None:
                _break(patch, *step.breaks)
            run = await cli.run(*path.split(), *(dated(arg, tmp_path) for arg in step.args))
        assert (run.code == 0) == (step.outcome in ("done", "answered")), (path, step, run.err)
        written = [e for e in await events(db, after=before) if e.action == action]
        outcomes = [e for e in written if e.outcome != "started"]
        assert [e.outcome for e in outcomes] == [step.outcome], (path, step, [(e.outcome, e.detail) for e in written])
        assert all(e.outcome == "started" for e in written[: len(written) - 1]), (path, step)  # started first
        event = outcomes[0]
        if action == "match_batch":
            assert (event.platform, event.user_id) == ("batch", step.args[-1])
        else:
            assert_terminal(event)
        assert "Amy" not in event.detail and "Jones" not in event.detail and SECRET not in run.err
        if step.breaks is not None:
            assert event.detail.endswith("Broken"), event.detail


@pytest.mark.postgres_only
async def test_grant_runtime_done_is_audited_once(cli: Cli, db: Database, runtime_role: str) -> None:
    """The one command that can only succeed on PostgreSQL: its success is one done event, naming the role."""
    run = await cli.run("db", "grant-runtime", runtime_role)
    assert run.code == 0, run.err
    (event,) = await events(db, "grant_runtime")
    assert_terminal(event)
    assert (event.outcome, event.detail) == ("done", f"role {runtime_role}")


@either_store  # a command that audits nothing, and help text: one store shows it (tests/spread.py)
async def test_the_auditors_checks_with_a_published_key_write_nothing_and_say_so(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """`audit verify --public-key` and `decommission certificate --verify` need no store of ours
    (a copy, elsewhere) and change nothing: no event — and their help says they are not audited."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    published = tmp_path / "signpost.pub"
    published.write_text((await cli.run("audit", "checkpoint", "--public-key")).out)
    before = await last_seq(db)
    assert (await cli.run("audit", "verify", "--public-key", str(published))).code == 0
    assert await last_seq(db) == before
    helps = {path: command.format_help() for path, command in commands(parser()).items()}
    assert "writes no audit event" in " ".join(helps["audit verify"].split())
    assert "not audited" in " ".join(helps["decommission certificate"].split())


# -- imports ------------------------------------------------------------------------------------


async def test_an_import_is_audited_started_then_done_with_files_counts_and_the_destroy_flag(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """`started` (how many files and their sizes, never their names or contents, and whether
    --destroy-redated was given) before anything changes, then one `done` with rows read and changed
    per kind, the children past retention or already destroyed, and the rows changed as its count."""
    paths = write_feeds(tmp_path)
    run = await cli.run("import", *paths, "--destroy-redated")
    assert run.code == 0, run.err
    started, done = await events(db, "import")
    for event in (started, done):
        assert_terminal(event)
        assert "Amy" not in event.detail and "Jones" not in event.detail
    files = f"3 files of {', '.join(f'{Path(path).stat().st_size:,}' for path in paths)} bytes"
    assert (started.outcome, started.detail) == ("started", f"destroy-redated yes; {files}")
    assert started.seq < done.seq and done.outcome == "done" and done.result_count == 17
    assert done.detail == (
        "children=6/6 involvements=5/5 practitioners=6/6 (read/changed); "
        f"past retention 0, already destroyed 0; destroy-redated yes; {files}"
    )


async def test_an_import_past_retention_counts_the_children_it_did_not_store(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """A child 24 or over is not stored; the import's done event counts it (never who)."""
    today = date.today()
    old = today.replace(year=today.year - 30).isoformat()
    (tmp_path / "children.csv").write_text(f"{CHILDREN_HEADER}\n9990000018,Amy,Jones,,{old},F,,LA,false\n")
    run = await cli.run("import", str(tmp_path / "children.csv"))
    assert run.code == 0, run.err
    _, done = await events(db, "import")
    assert "past retention 1, already destroyed 0; destroy-redated no" in done.detail


async def test_a_refused_import_writes_started_then_invalid_and_imports_nothing(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """Good practitioners beside bad children: refused, `invalid` with the problem count after its
    `started`, and neither file's rows in the store."""
    (tmp_path / "practitioners.csv").write_text(PRACTITIONERS, encoding="utf-8")
    (tmp_path / "children.csv").write_text(
        f"{CHILDREN_HEADER}\n9990000019,A,B,,2014-01-01,F,,LA,false\n9990000026,,,,2014-13-01,F,,LA,false\n"
    )
    run = await cli.run("import", str(tmp_path / "practitioners.csv"), str(tmp_path / "children.csv"))
    assert run.code == 1 and run.err.strip().endswith("Nothing was imported: 3 problems above.")
    started, refused = await events(db, "import")
    assert_terminal(refused)
    assert (started.outcome, refused.outcome, refused.result_count) == ("started", "invalid", 0)
    sizes = ", ".join(f"{(tmp_path / name).stat().st_size:,}" for name in ("practitioners.csv", "children.csv"))
    assert refused.detail.startswith("3 problems; ") and f"; 2 files of {sizes} bytes" in refused.detail
    assert started.detail == f"destroy-redated no; 2 files of {sizes} bytes"  # never their names
    async with db.read() as session:
        assert await demo.count_children(session) == 0
        assert await practitioners.get_actor(session, "P001") is None


@either_store  # the wording of an event's detail: one store shows it (tests/spread.py)
async def test_an_import_of_files_named_after_a_child_keeps_no_name_in_the_audit(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """The audit is append-only: a file name typed at the terminal ("amy-jones-03-04-2014.csv") would
    stay in it for good, so the import's events give the files' count and sizes instead."""
    named = []
    for path in map(Path, write_feeds(tmp_path)):
        named.append(path.rename(path.with_name(f"amy-jones-03-04-2014-{path.name}")))
    run = await cli.run("import", *map(str, named))
    assert run.code == 0, run.err
    started, done = await events(db, "import")
    assert (started.outcome, done.outcome) == ("started", "done")
    for event in (started, done):
        assert "amy" not in event.detail.lower() and "2014" not in event.detail, event.detail
        assert event.detail.endswith(f"3 files of {', '.join(f'{p.stat().st_size:,}' for p in named)} bytes")


async def test_an_import_that_fails_part_way_writes_failed_and_no_records(
    cli: Cli, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row good, then the store fails while the involvements are written (after the children
    and practitioners, in the same transaction): `started`, then `failed` naming the kind of
    error only, and not one row of the import kept."""

    async def store_fails(self: object) -> None:
        raise Broken(SECRET)

    monkeypatch.setattr(feeds._Run, "apply_involvements", store_fails)
    run = await cli.run("import", *write_feeds(tmp_path))
    assert run.code == 1 and SECRET not in run.err
    started, failed = await events(db, "import")
    assert (started.outcome, failed.outcome) == ("started", "failed")
    sizes = ", ".join(f"{Path(path).stat().st_size:,}" for path in write_feeds(tmp_path))
    assert failed.detail == f"destroy-redated no; 3 files of {sizes} bytes; Broken"
    async with db.read() as session:
        assert await demo.count_children(session) == 0
        assert await practitioners.get_actor(session, "P001") is None


async def test_a_done_event_whose_transaction_rolls_back_is_not_the_outcome(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """The import's `done` is written in its transaction; a failure after it, still inside (as the
    commit begins), rolls both back: the command's outcome is `failed`, and no `done` survives."""

    def fails_at_commit(step: str) -> None:
        if step == ImportStep.COMMITTING:
            raise Broken(SECRET)

    async with opened(create=True) as app:
        with pytest.raises(Broken):
            async with audited(app.ctx, "ops", Action.IMPORT) as audit:
                paths = [Path(p) for p in write_feeds(tmp_path)]
                await operator_register.import_paths(app.ctx, audit, paths, on_step=fails_at_commit)
    assert [e.outcome for e in await events(db, "import")] == ["started", "failed"]
    async with db.read() as session:
        assert await demo.count_children(session) == 0


@pytest.mark.parametrize("change", ["appended", "cut short"])
async def test_a_feed_written_to_while_it_is_imported_is_not_imported(
    cli: Cli, db: Database, tmp_path: Path, change: str
) -> None:
    """A children feed appended to, or cut short, while the import reads it: what was read is
    neither the file the audit describes nor the file as it is. As a roll changed under `match`,
    nothing is imported, in one line saying what to do, audited `failed` (a row cut short is not
    reported as the row's problem)."""
    paths = [Path(p) for p in write_feeds(tmp_path)]
    children = next(p for p in paths if p.name == "children.csv")
    whole = children.read_text(encoding="utf-8")

    def write_meanwhile(_: int) -> None:
        if change == "appended":
            children.write_text(whole + whole.splitlines()[-1].replace("Amy", "Ann") + "\n", encoding="utf-8")
        else:
            children.write_text(whole[: len(whole) // 2], encoding="utf-8")

    async with opened(create=True) as app:
        with pytest.raises(Failed) as failed:
            async with audited(app.ctx, "ops", Action.IMPORT) as audit:
                await operator_register.import_paths(app.ctx, audit, paths, on_progress=write_meanwhile)
    assert str(failed.value) == operator_register.FEED_CHANGED.format(name=children), str(failed.value)
    assert [(e.outcome, e.detail) for e in await events(db, "import")][-1][0] == "failed"
    async with db.read() as session:
        assert await demo.count_children(session) == 0


@either_store  # the wording of a command's events: one store shows it (tests/spread.py)
async def test_seed_demo_is_audited_started_then_done_and_a_skip_as_done(cli: Cli, db: Database) -> None:
    """A seed: `started`, then `done` with its size and counts; a seed skipped by --if-empty is one
    `done` saying it was skipped (it did what was asked)."""
    assert (await cli.run("seed-demo", "--children", "200")).code == 0
    assert (await cli.run("seed-demo", "--children", "200", "--if-empty")).code == 0
    started, seeded, skipped = await events(db, "seed_demo")
    for event in (started, seeded, skipped):
        assert_terminal(event)
    assert [e.outcome for e in (started, seeded, skipped)] == ["started", "done", "done"]
    assert seeded.detail.startswith("children=200; ") and "children=200/200" in seeded.detail
    assert skipped.detail == "skipped: the store already holds 200 children"
    assert await events(db, "import") == []


@either_store  # the origin the terminal stamps on its events; each command's events on both stores are the test above's
async def test_every_operator_command_is_audited_as_the_terminal(cli: Cli, db: Database, tmp_path: Path) -> None:
    """An operator's day, in order: each command leaves its own events, from the terminal origin with
    the tenant ``signpost``: no hand-spelt platform or tenant survives."""
    commands_run = [
        ("import", *write_feeds(tmp_path)),
        ("totp", "enrol", "P002", "--secret-file", str(tmp_path / "p002.secret")),
        ("totp", "reset", "P002"),
        ("practitioner", "unlink", "P001"),
        ("retention", "run"),
        ("keys", "rotate"),
        ("backup", str(tmp_path / "store.backup")),
        ("audit", "export", "--actor", "P001"),
        ("audit", "sar", AMY),
        ("decommission", "schedule", "--switch-off", dated(SOON)),
        ("decommission", "cancel"),
        ("decommission", "schedule", "--switch-off", date.today().isoformat(), "--at-once"),
        ("decommission", "destroy"),
    ]
    for command in commands_run:
        run = await cli.run(*command)
        assert run.code == 0, (command, run.err)
    found = await events(db)
    assert [(e.action, e.outcome) for e in found] == [
        ("import", "started"),
        ("import", "done"),
        ("totp_enrol", "done"),
        ("totp_reset", "done"),
        ("unlink", "done"),
        ("retention_run", "started"),
        ("retention", "done"),  # the run's totals, as the scheduler's run writes them
        ("retention_run", "done"),
        ("keys_rotate", "started"),
        ("keys_rotate", "done"),
        ("backup", "started"),
        ("backup", "done"),
        ("export", "done"),
        ("sar", "done"),
        ("decommission", "done"),
        ("decommission", "done"),
        ("decommission", "done"),
        ("decommission_destroy", "started"),
        ("decommission_destroy", "done"),
    ]
    for event in found:
        assert_terminal(event)
    assert found[3].detail == "credential removed for P002" and found[4].detail == "P001 all 0"
    assert found[7].detail.startswith("archived 0, destroyed 0, sealed in ")


@either_store  # the terminal's wording: one store shows it (tests/spread.py)
async def test_unlinking_someone_with_no_linked_account_says_nothing_changed(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """`practitioner unlink P001 --platform slack` with nothing linked said "Unlinked P001 on slack:
    0 identities removed", as if something had been done: it says nothing changed (and is still
    audited done, with its count)."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    on_slack = await cli.run("practitioner", "unlink", "P001", "--platform", "slack")
    assert on_slack.code == 0, on_slack.err
    assert on_slack.out == "P001 has no linked account on Slack: nothing changed.\n"
    anywhere = await cli.run("practitioner", "unlink", "p001")
    assert anywhere.out == "P001 has no linked account on any platform: nothing changed.\n"
    assert [(e.outcome, e.detail) for e in await events(db, "unlink")] == [
        ("done", "P001 slack 0"),
        ("done", "P001 all 0"),
    ]


async def test_a_backup_to_a_file_it_cannot_write_is_refused_before_it_starts(
    cli: Cli, db: Database, db_url: str, tmp_path: Path
) -> None:
    """A backup to a file that exists, into a folder that does not, or onto the store's own
    database file was audited `started`, then `failed`: the README calls bad arguments `refused`.
    Each is now refused in one line, audited `refused` with its kind alone (no path), no `started`."""
    taken = tmp_path / "taken.backup"
    taken.write_text("an earlier backup", encoding="utf-8")
    tries = [
        (taken, f"{taken} already exists: choose a new file name", "file exists"),
        (tmp_path / "gone" / "new.backup", f"the folder {tmp_path / 'gone'} does not exist", "no such folder"),
    ]
    live = sqlite_path(db_url) if db_url.startswith("sqlite") else None
    if live is not None:
        tries.append((live, f"{live} is Signpost's own database: back up to a new file", "the live database"))
    for target, said, _ in tries:
        run = await cli.run("backup", str(target))
        assert (run.code, run.out, run.said) == (2, "", f"signpost: {said}")
    assert [(e.outcome, e.detail) for e in await events(db, "backup")] == [("refused", kind) for _, _, kind in tries]
    assert taken.read_text(encoding="utf-8") == "an earlier backup"


@either_store  # the label an event gives a backup, not the backup: one store shows it
async def test_a_backup_named_after_a_child_leaves_its_name_out_of_the_audit(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """`signpost backup "Ava Price 05-01-2014 NS1 3LY.db"` wrote the file's name, as typed, into the
    permanent audit. Its events name the backup by a label the terminal prints (never the name
    typed), and its outcome by the written file's size and SHA-256, which `sha256sum` checks later."""
    import hashlib

    folder = tmp_path / "x"
    folder.mkdir()
    target = folder / "Ava Price 05-01-2014 NS1 3LY.db"
    run = await cli.run("backup", str(target))
    assert run.code == 0, run.err
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    found = await events(db, "backup")
    assert [e.outcome for e in found] == ["started", "done"]
    for event in found:
        for typed in ("Ava", "Price", "05-01-2014", "2014", "NS1", "3LY", ".db", str(folder)):
            assert typed not in (event.detail or ""), (event.outcome, typed)
    label = found[0].detail
    assert label.startswith("backup ") and label in run.out
    assert found[1].detail == f"{label}: {target.stat().st_size} bytes, sha256 {digest[:16]}"
    assert digest[:16] in run.out
