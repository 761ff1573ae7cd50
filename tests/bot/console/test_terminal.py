"""The console behaves like a terminal: meta-commands, help that lists them, `:as` that checks the id,
a refused code said once, and a QR code drawn for light and dark themes alike."""

from __future__ import annotations

import io
import re

import pyotp
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from bot.app import Signpost
from bot.console.console import NOT_A_TERMINAL, Console
from bot.enrol_page import qr_terminal
from store.tables.audit import AuditEvent
from store.tables.people import ParkedCommand, TotpCredential
from tests.bot.console.console_session import Terminal, session
from tests.factories import AMY, load_standard, seed_demo

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


async def actions(app: Signpost) -> list[str]:
    """The audited chat commands from the console (not the scheduler's own work)."""
    query = select(AuditEvent.action).where(AuditEvent.platform == "console").order_by(AuditEvent.seq)
    async with app.ctx.db.read() as session_:
        return list((await session_.execute(query)).scalars())


async def test_quit_and_exit_leave_without_an_answer_or_an_audit_event(signpost: Signpost) -> None:
    """`quit` and `exit` (any case) end the session: no "Sorry, I didn't understand", nothing audited."""
    await load_standard(signpost)
    for word in ("quit", "EXIT", ":quit", "exit()", "Quit()"):
        out = await session(signpost, [word, "help"], as_id="P002")
        assert "Sorry" not in out and "Signpost tells you" not in out
    assert await actions(signpost) == []


async def test_clear_is_not_sent_to_signpost(signpost: Signpost) -> None:
    """`clear` clears a terminal (nothing on a pipe) and is neither answered nor audited."""
    await load_standard(signpost)
    out = await session(signpost, ["clear"], as_id="P002")
    assert "Sorry" not in out and "\033[2J" not in out
    assert await actions(signpost) == []


async def test_question_mark_and_colon_help_are_help_and_help_lists_the_meta_commands(signpost: Signpost) -> None:
    """`?`, `:help` and `help` each show Signpost's help followed by the console's meta-commands."""
    await load_standard(signpost)
    for word in ("?", ":help", "help"):
        out = await session(signpost, [word], as_id="P002")
        assert "Sorry" not in out
        assert "Signpost tells you" in out
        assert "In this console also:" in out
        for meta in (":as PRACTITIONER_ID", "clear", "? or :help", "quit or exit"):
            assert meta in out
    assert await actions(signpost) == ["help", "help", "help"]


async def test_as_refuses_an_id_that_is_not_in_the_register(signpost: Signpost) -> None:
    """`:as NOBODY` says kindly there is no such practitioner and keeps the current identity."""
    await load_standard(signpost)
    out = await session(signpost, [":as NOBODY", ":as dm01", ":as"], as_id="P002")
    assert "There is no practitioner with that id in the register, so still acting as P002." in out
    assert "Now acting as DM01." in out
    assert "Usage: :as PRACTITIONER_ID" in out


async def test_a_wrong_code_is_explained_in_one_line(signpost: Signpost) -> None:
    """A wrong step-up code shows what went wrong once, then asks again (no "Code not accepted." too)."""
    await load_standard(signpost)
    out = await session(signpost, ["enrol", "000000", ""], as_id="P002", terminal=True)
    assert "Code not accepted." not in out
    assert out.count("That code didn't match") == 1


def test_terminal_qr_is_black_on_white_in_explicit_colours() -> None:
    """On a terminal the QR code names both colours (black and bright white), so a dark theme does not
    invert it; every line ends by resetting the colours; piped, it carries no escape codes."""
    uri = pyotp.TOTP(pyotp.random_base32()).provisioning_uri(name="P002", issuer_name="Signpost")
    coloured = qr_terminal(uri, colour=True).splitlines()
    assert all(line.endswith("\033[0m") for line in coloured)
    text = "".join(coloured)
    assert "\033[97;107m" in text and "\033[30;40m" in text  # light and dark modules both painted
    assert "\033[7m" not in text  # not reverse video, which follows the theme
    assert "\033[" not in qr_terminal(uri, colour=False)


async def test_console_output_has_no_log_lines(signpost: Signpost) -> None:
    """What the console prints is the conversation only (logs go to the log file)."""
    await load_standard(signpost)
    out = io.StringIO()
    await Console(signpost, "P002", io.StringIO(f"{AMY}\n"), out).run()
    assert "correlation_id" not in out.getvalue() and "[info" not in out.getvalue()


async def test_enrol_on_a_terminal_draws_the_qr_code_in_colour_not_as_escape_text(signpost: Signpost) -> None:
    """On a terminal `enrol` draws the QR code with real colour codes: printed through the console's
    inert text (every ESC shown as the letters \\x1b), it showed a screenful of escape text and no code
    to scan (newcomer). The secret is still printed as text beneath it."""
    await load_standard(signpost)
    out = Terminal()
    await Console(signpost, "P002", io.StringIO("enrol\n"), out).run()
    text = out.getvalue()
    assert "\\x1b" not in text
    assert "\033[97;107m▀" in text and "\033[30;40m▀" in text
    assert "Secret (if you can't scan): " in text
    secret = text.split("Secret (if you can't scan): ", 1)[1].splitlines()[0].replace(" ", "")
    assert pyotp.parse_uri(scanned(text)).secret == secret


async def test_a_piped_console_issues_no_secret_and_says_why(signpost: Signpost) -> None:
    """`enrol` in a console whose output is a pipe or a file (`make run > session.log`) issues nothing:
    no secret and no QR code are printed (a QR code encodes the secret: none can be read from what it
    printed), none is made or stored, no set-up is left pending; the console says why and what to do,
    as `signpost totp enrol` does, and the refusal is audited as a refused `enrol`."""
    await load_standard(signpost)
    out = await session(signpost, ["enrol", "enrol"], as_id="P002")
    assert "Secret" not in out and "otpauth" not in out
    assert not {"▀", "▄", "█"} & set(out) and "\033[" not in out
    assert codes_drawn(out) == []
    assert out.count(NOT_A_TERMINAL) == 2, out
    assert "terminal" in NOT_A_TERMINAL and "nothing was issued" in NOT_A_TERMINAL
    async with signpost.ctx.db.read() as read:
        assert (await read.execute(select(TotpCredential.practitioner_id))).all() == []
        assert (await read.execute(select(ParkedCommand.challenge_id))).all() == []
        events = (
            await read.execute(
                select(AuditEvent.action, AuditEvent.outcome, AuditEvent.detail, AuditEvent.actor_id).where(
                    AuditEvent.platform == "console"
                )
            )
        ).all()
    assert [tuple(event) for event in events] == [("enrol", "refused", "not a terminal", "P002")] * 2


async def test_the_refusal_leaves_a_terminal_console_enrolling_as_ever(signpost: Signpost) -> None:
    """The same console on a terminal still issues the secret (the refusal is for pipes and files only)."""
    await load_standard(signpost)
    out = Terminal()
    await Console(signpost, "P002", io.StringIO("enrol\n"), out).run()
    assert NOT_A_TERMINAL not in out.getvalue() and "Secret (if you can't scan): " in out.getvalue()


def codes_drawn(text: str) -> list[str]:
    """Every QR code a camera could read from ``text`` printed without colour (half blocks drawn as
    light modules on a dark ground, as segno's compact output draws them)."""
    rows: list[list[bool]] = []
    for line in text.splitlines():
        if not {"▀", "▄", "█"} & set(line):
            continue
        rows.append([char in "▀█" for char in line])
        rows.append([char in "▄█" for char in line])
    if not rows:
        return []
    width = max(len(row) for row in rows)
    scale, margin = 8, 32
    image = Image.new("L", (width * scale + 2 * margin, len(rows) * scale + 2 * margin), 255)
    for y, row in enumerate(rows):
        for x in range(width):
            if not (x < len(row) and row[x]):
                left, top = margin + x * scale, margin + y * scale
                image.paste(0, (left, top, left + scale, top + scale))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [str(code.text) for code in found]


def test_codes_drawn_reads_a_plain_qr_code() -> None:
    """The reader above would find a plain QR code, so finding none proves none was printed."""
    uri = pyotp.TOTP(pyotp.random_base32()).provisioning_uri(name="P002", issuer_name="Signpost")
    assert codes_drawn(qr_terminal(uri)) == [uri]


DARK_CODES = {"30", "40"}  # black foreground (the top module) and black background (the bottom one)


def scanned(text: str) -> str:
    """What a phone's camera reads from a terminal showing ``text``: each half block painted as the
    two modules its colour codes give, scaled up with a wide light margin, decoded by zxing."""
    grid = []
    for line in text.splitlines():
        cells = re.findall(r"\x1b\[(\d+);(\d+)m▀", line)
        if cells:
            grid.append([fg in DARK_CODES for fg, _ in cells])
            grid.append([bg in DARK_CODES for _, bg in cells])
    scale, margin = 8, 32
    width, height = len(grid[0]) * scale + 2 * margin, len(grid) * scale + 2 * margin
    image = Image.new("L", (width, height), 255)
    for y, row in enumerate(grid):
        for x, dark in enumerate(row):
            if dark:
                left, top = margin + x * scale, margin + y * scale
                image.paste(0, (left, top, left + scale, top + scale))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    assert len(found) == 1, "no QR code could be read from the terminal"
    return str(found[0].text)


@pytest.mark.parametrize("demo", [False, True], ids=["imported", "demo"])
async def test_as_alone_shows_the_demos_duty_manager_as_its_example_only_on_the_demo_store(
    signpost: Signpost, demo: bool
) -> None:
    """`:as` with no id answered "Usage: :as PRACTITIONER_ID, e.g. :as NS-DM01" on any store: on one
    imported from feeds that id names nobody. The example is the demo's, on the demo store only."""
    await (seed_demo(signpost, 20) if demo else load_standard(signpost))
    out = await session(signpost, [":as"], as_id="NS-P0001" if demo else "P002")
    usage = "Usage: :as PRACTITIONER_ID, e.g. :as NS-DM01\n" if demo else "Usage: :as PRACTITIONER_ID\n"
    assert usage in out and ("NS-DM01" in out) is demo, out
