"""The `signpost` command: wiring only. Each feature adds its sub-commands from bot/cli/; they call
the use cases in handlers/operator/ and print what those return.

Building the parser imports nothing heavy (no store, SQLAlchemy, aiohttp or front end: a test
holds this), so that `signpost --help` and a usage error answer at once; settings, logging and
the store are imported once the arguments are parsed, and each command imports what it runs."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from bot.cli import audit, core, db, declared, lifecycle, match, practitioner, report, totp
from bot.cli import teams as teams_commands
from bot.cli.arguments import Formatter, example, signpost_version
from bot.cli.examples import EXAMPLES
from handlers.vocabulary import sentence

COMMAND_GROUPS = (
    core,
    audit,
    db,
    lifecycle,
    match,
    practitioner,
    report,
    teams_commands,
    totp,
)


class _SubParsers(argparse._SubParsersAction):  # type: ignore[type-arg]  # argparse's own extension point
    """Each sub-command's ``--help`` opens with its one-line help as a description."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if "help" in kwargs and "description" not in kwargs:
            kwargs["description"] = sentence(kwargs["help"]) + "."
        return super().add_parser(name, **kwargs)  # type: ignore[no-any-return]


class SignpostParser(argparse.ArgumentParser):
    """Help laid out as written (examples keep their lines), with descriptive sub-command help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _SubParsers)

    def parse_known_args(  # type: ignore[override]  # typeshed overloads it on the namespace type
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Arguments no command takes are refused by the command's own parser, with its usage
        (`signpost console --workers 2`: console's usage, not `signpost [-h] COMMAND ...`). Every
        sub-command's parser is of this class (add_subparsers makes its parsers of its parent's)."""
        self._typed = [str(arg) for arg in (sys.argv[1:] if args is None else args)]  # for error()
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        """argparse's error, with the nearest sub-command named after an invalid choice (Python 3.11's
        argparse has no ``suggest_on_error``): `signpost totp enroll` is told 'enrol'."""
        typed = _INVALID_CHOICE.search(message)
        choices = [
            name
            for action in self._actions
            if isinstance(action, argparse._SubParsersAction)
            for name in action.choices
        ]
        if typed is None:  # `retention run --dryrun`: the nearest option this command takes
            options = [option for action in self._actions for option in action.option_strings]
            stray = [arg for arg in getattr(self, "_typed", []) if arg.startswith("-") and arg not in options]
            if _REQUIRED.match(message) and stray:
                # `signpost --verison`: argparse misses the command before it reaches the unknown option
                message = f"unrecognized arguments: {' '.join(stray)}"
            unknown = _UNRECOGNISED.search(message)
            typed = unknown and _OPTION.match(unknown[1])
            choices = [option for option in options if option != "-h"]
        nearest = difflib.get_close_matches(typed[1], choices, n=1) if typed else []
        message = unsaid(message)
        super().error(f"{message}. Did you mean '{nearest[0]}'?" if nearest else message)


_REPR = r"'(?:[^'\\]|\\.)*'" + "|" + r'"(?:[^"\\]|\\.)*"'  # a string as repr() writes it, in either quotes
_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)'")
_INVALID_CHOICE_ANY = re.compile(rf"invalid choice: (?:{_REPR})")
_INVALID_VALUE = re.compile(rf"invalid (\S+) value: (?:{_REPR})")
_REQUIRED = re.compile(r"the following arguments are required: ")
_UNRECOGNISED = re.compile(r"unrecognized arguments: (.*)")
_OPTION = re.compile(r"(--[\w-]+)")
_SAYABLE = re.compile(r"-[\w-]+|[0-9]+")  # an option, or a number: never a name, date or postcode


def unsaid(message: str) -> str:
    """argparse's refusal without the words it would repeat from the command line: what is typed
    where a command, a choice or a value goes may be a child's name, date of birth and postcode
    typed by a slip, and stderr is many an operator's log. Options and plain numbers are said (they
    name nobody); any other word is counted."""
    message = _INVALID_CHOICE_ANY.sub("invalid choice", message)
    message = _INVALID_VALUE.sub(r"invalid \1 value", message)
    unknown = _UNRECOGNISED.search(message)
    if unknown is None:
        return message
    words = unknown[1].split()
    said = [word for word in words if _SAYABLE.fullmatch(word)]
    others = len(words) - len(said)
    if others:
        counted = f"{others} word{'s' if others != 1 else ''} (not repeated here)"
        said.append(f"and {counted}" if said else counted)
    return message[: unknown.start(1)] + " ".join(said)


def commands(top: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every sub-command's parser by its path ("audit export"), groups included."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                child_path = f"{path} {name}".strip()
                found[child_path] = child
                found.update(commands(child, child_path))
    return found


def is_group(command: argparse.ArgumentParser) -> bool:
    """Whether ``command`` only gathers sub-commands (`signpost audit`), rather than running one."""
    return any(isinstance(action, argparse._SubParsersAction) for action in command._actions)


def _add_examples(top: argparse.ArgumentParser) -> None:
    """Each command's example as its epilog; a group shows its sub-commands' examples."""
    found = commands(top)
    for path, command in found.items():
        lines = [
            line
            for key, example_lines in EXAMPLES.items()
            if key == path or key.startswith(path + " ")
            for line in example_lines
        ]
        if lines:
            command.epilog = example(*lines) if command.epilog is None else f"{command.epilog}\n\n{example(*lines)}"


def parser() -> argparse.ArgumentParser:
    top = SignpostParser(
        prog="signpost",
        description=(
            "Signpost: who else is working, or has worked, with this child? Contact signposts only, "
            "after a step-up check. Every query is audited, and so is every command below that opens the store, "
            "except db upgrade, current, history and check (the schema, and a read-only check). Settings "
            "come from the environment or .env: SIGNPOST_DATABASE_URL, SIGNPOST_KEY_FILE, and SLACK_* / "
            "CONNECTIONS__* for the chat front ends. `signpost help COMMAND` (or `signpost COMMAND --help`) "
            "gives a command's options and an example."
        ),
    )
    top.add_argument("--version", action="version", version=f"signpost {signpost_version('unknown')}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    declared.describe(commands(top))
    _add_examples(top)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    if sys.stderr is None:  # started with it closed (`2>&-`): Python leaves None, and logging crashed on it
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (for the process: said nowhere, as asked)
    given = sys.argv[1:] if argv is None else list(argv)
    top = parser()
    if given[:1] == ["help"]:  # `signpost help [COMMAND]`: what `--help` prints, not "invalid choice"
        named = commands(top).get(" ".join(given[1:])) if given[1:] != ["help"] else top
        if named is None and given[1:]:  # `signpost help totp enroll`: told the nearest command, exit 2
            top.parse_args([*given[1:], "--help"])
        sys.stdout.write((named or top).format_help())
        return 0
    alone = top if not given else commands(top).get(" ".join(given))
    if alone is not None and is_group(alone):  # `signpost` or `signpost audit` alone: the commands there are,
        sys.stderr.write(alone.format_help())  # not only that one is required
        return 2
    args = top.parse_args(given)
    # Only now: `--help` and a usage error have exited above without settings, logging or the store.
    # Loading them takes a second or so: a Ctrl-C meanwhile ends Signpost as one at the prompt does,
    # not with Python's traceback through the imports.
    try:
        import asyncio

        import structlog

        from bot.cli.common import CommandFailed
        from bot.config import SettingsError, environment_warnings, load_settings
        from bot.logging import configure
        from handlers.operator.common import Refused
        from store.db import SQLITE_BUSY_SECONDS, store_busy, store_damage, store_read_only
        from store.keys.crypto import KeyFileError
    except KeyboardInterrupt:
        return 130

    waited = SQLITE_BUSY_SECONDS  # for another process's SQLite write lock: the setting's, once read
    try:
        # Signpost's log until the settings say which: a failure reading them (a .env the disk
        # cannot read) is logged as any other, not by structlog's default (rich's traceback on
        # stdout, every frame's variables and the library's message).
        configure()
        for warning in environment_warnings():  # SettingsError for a .env that cannot be read
            print(f"signpost: {warning}", file=sys.stderr)
        settings = load_settings()
        waited = settings.sqlite_busy_seconds
        configure(settings.log_format, settings.log_level)
        result: int = asyncio.run(args.func(args))
        return result
    except (SettingsError, KeyFileError, CommandFailed, Refused) as exc:
        for line in str(exc).splitlines() or [""]:  # several bad settings: one line each
            print(f"signpost: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `signpost audit export | head`: the reader has all it wanted
        # Python flushes stdout again at exit; point it at nothing so that flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    except Exception as exc:  # a bug or a library's surprise: one line, and the log
        damage = store_damage(exc)
        if damage is not None:  # a damaged or unfinished store is no bug: said as what it is, where found
            structlog.get_logger("signpost.cli").error("store_damaged", error=type(exc).__name__)
            print(f"signpost: {damage}", file=sys.stderr)
            return 2
        # Another account's store or a standby, or one another command held too long: said as what it is.
        busy = store_busy(exc, waited)
        for event, said in (("store_read_only", store_read_only(exc)), ("store_busy", busy)):
            if said is not None:
                structlog.get_logger("signpost.cli").error(event, error=type(exc).__name__)
                print(f"signpost: {said}", file=sys.stderr)
                return 2
        # Python's own report would print the library's message, which may quote the value it was
        # given (a row of a feed, what was typed); the log line's traceback withholds it.
        structlog.get_logger("signpost.cli").error("command_crashed", exc_info=exc)
        print(f"signpost: stopped by an unexpected error ({type(exc).__name__}); the log says where", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
