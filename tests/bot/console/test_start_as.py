"""The console starts only as someone in the register, and says in one line what to do instead;
a console identity Signpost does not know is never told to `register` (the console cannot)."""

from __future__ import annotations

import io

import pytest

from bot.app import Signpost
from bot.console.console import DEFAULT_AS, Console
from handlers.vocabulary import Outcome
from tests.factories import load_standard, say, seed_demo

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


async def start(app: Signpost, as_id: str) -> tuple[int, str, str]:
    """Start the console as ``as_id`` with one search piped in: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = await Console(app, as_id, io.StringIO("999 000 1006\n"), out, err).run()
    return code, out.getvalue(), err.getvalue()


async def test_an_unknown_as_id_is_refused_in_one_line_naming_the_demo_people(signpost: Signpost) -> None:
    """`signpost console --as NOBODY` on the demo store: no greeting "acting as NOBODY", no advice
    to register, one line naming the ids that work."""
    await seed_demo(signpost)
    code, out, err = await start(signpost, "NOBODY")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "There is no practitioner with that id in the register. Start with --as ID: on the demo data "
        "NS-P0001, NS-DM01 or ADMIN-01."
    ]


async def test_as_reads_the_id_whatever_its_case_as_the_colon_as_command_does(signpost: Signpost) -> None:
    """`--as ns-dm01` starts as NS-DM01."""
    await seed_demo(signpost)
    code, out, err = await start(signpost, "ns-dm01")
    assert code == 0 and err == "" and "acting as NS-DM01" in out


async def test_the_default_id_on_a_store_without_the_demo_says_to_choose_one(signpost: Signpost) -> None:
    """Plain `signpost console` on a store with no NS-P0001 says to start with --as. It names the
    setting that chose the store: a newcomer who tried `examples/` and left SIGNPOST_DATABASE_URL
    exported meets this at their next `make run`, which said only "the demo data is not loaded here"."""
    await load_standard(signpost)
    code, out, err = await start(signpost, DEFAULT_AS)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"There is no practitioner {DEFAULT_AS} in the register (the demo data is not loaded in the store "
        "SIGNPOST_DATABASE_URL names). Start with "
        "--as and a practitioner_id from your practitioners feed, or load the demo data into an empty store: "
        "signpost seed-demo --if-empty."
    ]


async def test_an_unknown_console_identity_is_told_to_use_colon_as_not_register(signpost: Signpost) -> None:
    """The refusal for a console id not in the register points at ':as', which the console has,
    not at `register`, which the console answers with "use ':as'"."""
    await load_standard(signpost)
    reply = await say(signpost, "NOBODY", "999 000 1006")
    assert reply.outcome is Outcome.REFUSED
    assert reply.text == (
        "There is no practitioner with that id in the register. Use ':as PRACTITIONER_ID' with an id that is."
    )


async def test_what_the_console_echoes_of_a_typed_line_is_inert_for_the_terminal(signpost: Signpost) -> None:
    """`:x` lines are echoed ("… is not a console command"): an escape sequence in them (a piped
    script clearing the screen, setting the title or planting a hyperlink) was written raw. It is
    shown as escapes. An id typed after `:as` or `--as` that is nobody's is not echoed at all."""
    await seed_demo(signpost)
    typed = [":x\x1b[2J\x1b]0;title\x07", ":as \x1b]8;;https://evil.example\x07P001"]
    out = io.StringIO()
    assert await Console(signpost, "NS-P0001", io.StringIO("".join(f"{t}\n" for t in typed)), out).run() == 0
    shown = out.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown
    assert ":x\\x1b[2J\\x1b]0;title\\x07 is not a console command." in shown
    code, _, err = await start(signpost, "\x1b[2JNOBODY")
    assert code == 2 and "\x1b" not in err and "NOBODY" not in err


async def test_colon_as_refuses_an_id_with_a_hidden_character_in_one_line(signpost: Signpost) -> None:
    """`:as` with a control character, a bidi override or a lone surrogate (undecodable bytes on a
    piped stdin) says so in one line and keeps the identity: the id is never looked up (a lone
    surrogate cannot be encoded for the query) nor echoed."""
    await seed_demo(signpost)
    typed = [":as NS-DM01\x00", ":as \u202eNS-DM01", ":as NS-DM01\udcff", "999 000 1006"]
    out = io.StringIO()
    assert await Console(signpost, "NS-P0001", io.StringIO("".join(f"{t}\n" for t in typed)), out).run() == 0
    refusal = (
        "That practitioner id holds a control character or an invisible formatting mark, so still acting as NS-P0001."
    )
    shown = out.getvalue()
    assert shown.count(refusal) == 3
    assert "Now acting as" not in shown and "There is no practitioner" not in shown
