"""What is typed where a practitioner id goes, and is no practitioner's id, is never said back: it
may be a child's name, date of birth and postcode typed by a slip (into the wrong window, the wrong
argument), and the terminal's stderr is kept as a log by many operators. Every command that looks
an id up says the same thing instead (``handlers.vocabulary.NO_SUCH_PRACTITIONER``): that no
practitioner with that id is in the register."""

from __future__ import annotations

from pathlib import Path

from bot.app import Signpost
from handlers.vocabulary import Outcome
from tests.access_helpers import fresh_say
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_console_after_decommission import rehearsed
from tests.bot.cli.test_main import write_feeds
from tests.factories import load_standard, say
from tests.spread import either_store, spread

TYPED = "Lily Testperson 14/02/2016 EX1 2AB"
PARTS = ("lily", "testperson", "14/02/2016", "ex1 2ab")  # none of them, in any case
SAID = "no practitioner with that id in the register"

COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {  # the command line, and what is piped to it
    "practitioner leave": (("practitioner", "leave", TYPED), ""),
    "practitioner return": (("practitioner", "return", TYPED), ""),
    "practitioner unlink": (("practitioner", "unlink", TYPED), ""),
    "totp reset": (("totp", "reset", TYPED), ""),
    "totp enrol": (("totp", "enrol", TYPED, "--secret-file", "new.secret"), ""),
    "console --as": (("console", "--as", TYPED), ""),
    "console :as": (("console", "--as", "P001"), f":as {TYPED}\n"),
    "audit export --actor": (("audit", "export", "--actor", TYPED), ""),
}


def unsaid(text: str) -> list[str]:
    """The parts of what was typed that ``text`` repeats, in any case."""
    return [part for part in PARTS if part in text.lower()]


@spread("command", COMMANDS)  # the words said, not the store: each command on one store
async def test_an_id_not_in_the_register_is_not_said_back(
    command: tuple[tuple[str, ...], str], cli: Cli, tmp_path: Path
) -> None:
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    args, stdin = command
    run = await cli.run(*args, stdin=stdin)
    assert unsaid(run.out + run.err) == [], (run.out, run.err)
    assert SAID in (run.out + run.err).lower(), (run.out, run.err)
    assert not Path("new.secret").exists()  # nobody was enrolled
    exported = await cli.run("audit", "export")  # nor is it kept in the audit
    assert exported.code == 0 and exported.out and unsaid(exported.out) == []


@either_store  # the words said, not the store: one store shows it (tests/spread.py)
async def test_chat_says_no_practitioner_with_that_id_without_repeating_it(signpost: Signpost) -> None:
    """An admin's `unlink WORD` in chat, and the console's answer to an id it does not know (once
    Signpost is switched off the console starts as any id), say the same, naming nothing typed."""
    await load_standard(signpost)
    reply = await fresh_say(signpost, "AD01", "unlink Lily")
    assert reply.outcome is Outcome.INVALID and "lily" not in reply.text.lower()
    assert reply.text == "There is no practitioner with that id in the register."
    reply = await say(signpost, TYPED, "history")
    assert reply.outcome is Outcome.REFUSED and unsaid(reply.text) == []
    assert reply.text.startswith("There is no practitioner with that id in the register.")


async def test_once_switched_off_the_console_started_as_a_typed_id_neither_says_nor_keeps_it(cli: Cli) -> None:
    """After a decommissioning the console starts as any id (README's rehearsal, then `make run`):
    one typed that is nobody's is not greeted, prompted or answered by name (nor audited: the
    audit keeps an unrecognised console id as "unrecognised")."""
    today = await rehearsed(cli)
    run = await cli.run("console", "--as", TYPED, stdin="help\nsearch 999 000 1006\n:as NOBODY\n")
    assert run.code == 0, run.err
    assert unsaid(run.out + run.err) == [], (run.out, run.err)
    assert "acting as an id not in the register" in run.out and SAID in run.out.lower()
    exported = await cli.run("audit", "export", "--since", today)
    assert exported.code == 0 and '"platform":"console"' in exported.out and unsaid(exported.out) == []


MISPLACED: dict[str, tuple[tuple[str, ...], str]] = {  # the command line, and what the refusal still says
    "as a command": ((TYPED,), "invalid choice"),
    "as a command, with a quote in it": ((TYPED.replace("Lily", "Lily's"),), "invalid choice"),  # repr()'s "…"
    "as words no command takes": (("retention", "run", "--dryrun", *TYPED.split()), "--dryrun and 5 words"),
    "unquoted, after an id": (("practitioner", "leave", *TYPED.split()), "arguments: 4 words (not repeated here)"),
    "unquoted, after --actor": (("audit", "export", "--actor", *TYPED.split()), "arguments: 4 words"),
    "as a date": (("audit", "export", "--since", TYPED), "argument --since: not a date"),
    "as a real-looking date": (("audit", "export", "--until", "31/02/2016"), "argument --until: not a real date"),
    "as a port": (("run", "--port", TYPED), "argument --port: not a port"),
    "as a number of workers": (("run", "--workers", TYPED), "argument --workers: not a number of workers"),
    "as a number of candidates": (("match", "--as", "AD01", "--top", TYPED, "roll.csv"), "argument --top: not a"),
}


@either_store  # refused by the argument parser before any store is opened
def test_what_argparse_refuses_is_not_said_back(cli: Cli) -> None:
    """argparse repeats what it refuses ("invalid choice: 'Lily Testperson 14/02/2016 EX1 2AB'",
    "unrecognized arguments: …", "'…' is not a date"): each refusal still says what is wrong, and
    options and plain numbers are still named, but no other typed word (``bot.cli.main.unsaid``)."""
    for name, (args, still) in MISPLACED.items():
        run = cli(*args)
        assert run.code == 2, (name, run.err)
        assert unsaid(run.out + run.err) == [] and "31/02/2016" not in run.err, (name, run.err)
        assert still in run.err.splitlines()[-1], (name, run.err)
