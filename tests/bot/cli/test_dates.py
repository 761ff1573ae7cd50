"""Every `signpost` option that takes a date reads it by one rule: DD/MM/YYYY or YYYY-MM-DD (and,
for `audit export --since/--until`, a time YYYY-MM-DDTHH:MM[:SS], UTC unless it says Z or ±HH:MM),
any year of the calendar in either spelling; anything else is a usage error (status 2) in one line
naming those forms. Run in this process, against the test's store."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.app import Signpost
from bot.cli.main import commands, parser
from tests.bot.cli.conftest import Cli
from tests.factories import load_standard
from tests.spread import spread

pytestmark = [
    pytest.mark.fresh_keys,
    pytest.mark.one_store,
]  # `signpost` works to the real date (tests/conftest.py keys)

NEXT_YEAR = date.today().year + 1
DATE_FORMS = "DD/MM/YYYY or YYYY-MM-DD"
TIME_FORM = "YYYY-MM-DDTHH:MM[:SS]"

# Every option that takes a date, as typed before the date.
DATE_OPTIONS = {
    "--since": ("audit", "export", "--since"),
    "--until": ("audit", "export", "--until"),
    "--as-of": ("retention", "run", "--dry-run", "--as-of"),
    "--catch-up-to": ("retention", "run", "--catch-up-to"),
    "--switch-off": ("decommission", "schedule", "--switch-off"),
    "--destroy-by": ("decommission", "schedule", "--switch-off", f"31/03/{NEXT_YEAR}", "--destroy-by"),
}
MOMENT_OPTIONS = ("--since", "--until")

# What Python 3.11's date.fromisoformat and datetime.fromisoformat read, and Signpost documents not.
UNDOCUMENTED = [
    "20261205",  # ISO 8601 basic
    "2026-W49-6",  # ISO week date
    "2026W496",
    "2026-339",  # ordinal date
    "20261205T120000",
    "2026-W49-6T12:00",
    "2026-12-05 12:00",  # a space for the T
    "2026-12-05T12",  # the hour alone
    "2026-02-30T10:00",  # in the right form, but no such day
    "2026-12-05T25:00",
    "9999-12-31T23:59:59-12:00",  # past the calendar's end in UTC
]


def refused_naming_the_forms(err: str, option: str) -> None:
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert said[0].startswith("usage: signpost "), err
    [line] = [line for line in said if ": error: " in line]  # after the usage, one line says why
    assert line == said[-1] and f"argument {option}" in line and DATE_FORMS in line, err
    assert (TIME_FORM in line) == (option in MOMENT_OPTIONS), err
    assert "Traceback" not in err


@pytest.mark.parametrize("option", DATE_OPTIONS)
@spread("typed", UNDOCUMENTED)
async def test_a_form_signpost_does_not_document_is_refused_by_every_date_option(
    cli: Cli, signpost: Signpost, option: str, typed: str
) -> None:
    """`--since 20261205` and `--until 2026-W49-6` were read (fromisoformat), where `--as-of` refused
    them: every date option now refuses them alike, in one line naming the forms it reads."""
    await load_standard(signpost)
    run = await cli.run(*DATE_OPTIONS[option], typed)
    assert run.code == 2 and run.out == ""
    refused_naming_the_forms(run.err, option)


@pytest.mark.parametrize("option", MOMENT_OPTIONS)
async def test_the_last_day_of_the_calendar_is_read_in_either_spelling(
    cli: Cli, signpost: Signpost, option: str
) -> None:
    """`--until 9999-12-31` was read and `--until 31/12/9999` refused: both are the same day."""
    await load_standard(signpost)
    iso = await cli.run("audit", "export", option, "9999-12-31")
    uk = await cli.run("audit", "export", option, "31/12/9999")
    assert (iso.code, uk.code) == (0, 0), iso.err + uk.err

    def events(out: str) -> list[str]:
        return [e["action"] for e in map(json.loads, out.splitlines())]

    if option == "--since":
        assert events(iso.out) == events(uk.out) == []
    else:  # every event, and the second export has the first's too (an export is audited first)
        assert events(iso.out)[-1] == "export" and events(uk.out) == [*events(iso.out), "export"]


async def test_the_first_day_of_the_calendar_is_read_in_either_spelling(cli: Cli, signpost: Signpost) -> None:
    await load_standard(signpost)
    for typed in ("0001-01-01", "01/01/0001"):
        run = await cli.run("audit", "export", "--since", typed)
        assert run.code == 0, run.err


@pytest.mark.parametrize("typed", ["31/12/9999", "9999-12-31"])
async def test_a_far_switch_off_is_refused_for_being_far_in_either_spelling(
    cli: Cli, signpost: Signpost, typed: str
) -> None:
    """The year 9999 is a date in both spellings: refused as too far away, not as no date (and not
    by a crash working out the default destroy-by date past the calendar's end)."""
    await load_standard(signpost)
    run = await cli.run("decommission", "schedule", "--switch-off", typed)
    assert run.code == 2 and "Traceback" not in run.err
    assert run.said == "signpost: the switch-off date is more than 5 years away: schedule it nearer the time"


@pytest.mark.parametrize("typed", ["31/12/9999", "9999-12-31"])
async def test_a_far_as_of_is_refused_for_being_far_in_either_spelling(
    cli: Cli, signpost: Signpost, typed: str
) -> None:
    await load_standard(signpost)
    run = await cli.run("retention", "run", "--dry-run", "--as-of", typed)
    assert run.code == 2 and run.said.startswith("signpost: --as-of can be at most 7 years ahead, ")


@pytest.mark.parametrize(
    "typed",
    [
        "2026-11-03T10:00",
        "2026-11-03T10:00:00",
        "2026-11-03T10:00:00Z",
        "2026-11-03T10:00:00.123456+00:00",
        "2026-11-03T11:00+01:00",
        "03/11/2026",
        "2026-11-03",
        "3/11/2026",
    ],
)
@pytest.mark.parametrize("option", MOMENT_OPTIONS)
async def test_the_documented_forms_are_read_by_since_and_until(
    cli: Cli, signpost: Signpost, option: str, typed: str
) -> None:
    await load_standard(signpost)
    run = await cli.run("audit", "export", option, typed)
    assert run.code == 0, run.err


def test_help_names_the_forms_each_date_option_reads() -> None:
    """--help says what the parser reads: the date forms everywhere, the time form for --since/--until."""
    found = commands(parser())
    for option, typed in DATE_OPTIONS.items():
        command = " ".join(word for word in typed[:2])
        text = " ".join(found[command].format_help().split())
        assert DATE_FORMS in text, command
        assert (TIME_FORM in text) == (option in MOMENT_OPTIONS) or command != "audit export", command
