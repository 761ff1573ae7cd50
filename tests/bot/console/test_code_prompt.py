"""The console's code prompt takes codes only: a command typed there leaves the prompt without being
sent (or audited) as a wrong code and runs as the next input; anything shaped like a code still goes
to Signpost, which answers and counts it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.console.console import QUIT
from handlers.stepup.flow import MALFORMED
from store.tables.audit import AuditEvent
from tests.bot.console.console_session import session
from tests.factories import load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

README = (Path(__file__).parents[3] / "README.md").read_text("utf-8")

NO_CODE = "No code entered, so nothing was sent."
FULL_WIDTH = "\uff10\uff10\uff10 \uff10\uff10\uff10"  # 000 000 in full-width digits


async def audited(app: Signpost) -> list[tuple[str, str]]:
    """(action, detail) of each console command audited, in order."""
    query = select(AuditEvent.action, AuditEvent.detail).where(AuditEvent.platform == "console")
    async with app.ctx.db.read() as read:
        return [(action, detail) for action, detail in (await read.execute(query.order_by(AuditEvent.seq))).all()]


async def test_quit_at_the_code_prompt_quits_without_a_code_attempt(signpost: Signpost) -> None:
    """`:quit` (or `quit`, `exit`) at the code prompt ends the console: no "A code is 6 digits", no
    code audited, and the lines after it are never read."""
    await load_standard(signpost)
    for word in (":quit", "quit", "EXIT"):
        out = await session(signpost, ["enrol", word, "help"], as_id="P002", terminal=True)
        assert MALFORMED not in out and "Signpost tells you" not in out
        assert out.count(NO_CODE) == 1
    assert [action for action, _ in await audited(signpost)] == ["enrol"] * 3


async def test_a_command_at_the_code_prompt_runs_as_the_next_message(signpost: Signpost) -> None:
    """`help`, `?` and `enrol` typed at the code prompt are answered as if typed at the console's
    prompt, after one line saying no code was sent; none is a failed code attempt."""
    await load_standard(signpost)
    out = await session(signpost, ["enrol", "help", "enrol", "?"], as_id="P002", terminal=True)
    assert MALFORMED not in out
    assert out.count(NO_CODE) == 2
    assert out.count("Signpost tells you") == 2 and out.count("In this console also:") == 2
    assert [action for action, _ in await audited(signpost)] == ["enrol", "help", "enrol", "help"]


async def test_colon_as_at_the_code_prompt_switches_identity(signpost: Signpost) -> None:
    """`:as DM01` at the code prompt switches to the duty manager, whose `help` is then answered."""
    await load_standard(signpost)
    out = await session(signpost, ["enrol", ":as DM01", "help"], as_id="P002", terminal=True)
    assert MALFORMED not in out
    assert out.index(NO_CODE) < out.index("Now acting as DM01.") < out.index("Signpost tells you")
    assert [action for action, _ in await audited(signpost)] == ["enrol", "help"]


async def test_code_shaped_lines_still_go_as_codes(signpost: Signpost) -> None:
    """Five digits, seven digits and six full-width or spaced digits are sent as codes: Signpost says a
    code is 6 digits, or that it didn't match, and audits each attempt."""
    await load_standard(signpost)
    out = await session(signpost, ["enrol", "12345", "1234567", FULL_WIDTH, "000 000", ""], as_id="P002", terminal=True)
    assert out.count(MALFORMED) == 2
    assert out.count("That code didn't match") == 2
    assert out.count(NO_CODE) == 1  # the empty line at the end
    codes = [detail for action, detail in await audited(signpost) if action == "code"]
    assert len(codes) == 4 and codes.count("code malformed") == 2


async def test_a_mistyped_console_command_is_not_sent_to_signpost(signpost: Signpost) -> None:
    """`:ass NS-DM01` (or `:foo`) went to Signpost as a message and was audited as `usage`: the
    README says the console's commands are its own. It is answered by the console, with its list."""
    await load_standard(signpost)
    out = await session(signpost, [":ass DM01", ":foo"], as_id="P002")
    assert ":ass is not a console command." in out and ":foo is not a console command." in out
    assert "act as another practitioner" in out
    assert await audited(signpost) == []


def test_every_word_that_leaves_the_console_is_one_the_readme_names() -> None:
    """`:q` left the console at once, though README said every line starting with `:` but its own
    meta-commands is answered "not a console command": a newcomer reading that could not know
    `:q`, `:quit` and `:exit` were among them. README names each."""
    said = README.split("The console is interactive on a TTY", 1)[1].split("\n\n", 1)[0]
    assert [word for word in sorted(QUIT) if f"`{word}`" not in said] == []
