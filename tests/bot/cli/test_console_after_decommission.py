"""README's decommissioning rehearsal on the demo store, then `make run` again: `seed-demo --if-empty`
says it is switched off and exits 0, and the console starts, says where Signpost stands, and answers
as README says (a command for someone in the register: that NS-P0001 is not in it), though nobody it
could act as is left in the register (the review's newcomer: `make run` ended "There is no
practitioner NS-P0001 in the register … on the demo data ADMIN-01", Error 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from handlers.dispatch.chain import NOT_IN_REGISTER_CONSOLE
from tests.bot.cli.conftest import Cli

OFF = "Signpost has been switched off, so it can no longer answer this. Its personal data was destroyed on"


async def rehearsed(cli: Cli) -> str:
    """`make run` on a fresh store, then README's rehearsal: switch off at once, destroy. Today, as printed."""
    assert (await cli.run("seed-demo", "--if-empty", "--children", "10")).code == 0
    today = datetime.now(UTC).date()
    assert (await cli.run("decommission", "schedule", "--switch-off", today.isoformat(), "--at-once")).code == 0
    destroyed = await cli.run("decommission", "destroy")
    assert destroyed.code == 0, destroyed.err
    again = await cli.run("seed-demo", "--if-empty")
    assert again.code == 0 and again.out.rstrip().endswith("not seeding."), again.out
    return f"{today:%d/%m/%Y}"


async def test_make_run_after_destruction_starts_the_console_answering_switched_off(cli: Cli) -> None:
    """Plain `signpost console` (NS-P0001, destroyed with the register) after destruction: greeted with
    where Signpost stands, each message answered and audited by the dispatcher ("switched off"), `:as`
    still the console's, exit 0 at the end of input; never "on the demo data" about a store whose data
    is destroyed."""
    today = await rehearsed(cli)
    console = await cli.run("console", stdin="help\nsearch 999 000 1006\n999 000 1006\n:as NOBODY\n")
    assert console.code == 0, console.err
    assert console.said == "", console.err
    lines = console.out.splitlines()
    assert lines[0] == "Signpost console — acting as NS-P0001. Type help, :as PRACTITIONER_ID, or quit."
    assert lines[1] == (
        "Signpost has been switched off: it no longer answers searches or requests, and its personal data "
        f"was destroyed on {today}. There is no practitioner NS-P0001 in the register."
    )
    assert console.out.count(f"{OFF} {today}.") == 1, console.out  # the search; help says where it stands
    assert "There is no practitioner with that id in the register, so still acting as NS-P0001." in lines
    # A command for someone in the register meets the identity gate first, as README says: not "switched off".
    assert NOT_IN_REGISTER_CONSOLE in lines, console.out
    # Answered through the dispatcher, so audited like every command (never by the console itself).
    exported = await cli.run("audit", "export", "--since", today)
    events = [json.loads(line) for line in exported.out.splitlines()]
    console_events = [(e["action"], e["outcome"]) for e in events if e["platform"] == "console"]
    assert console_events == [("help", "info"), ("usage", "switched_off"), ("lookup", "refused")], console_events
    assert "demo data" not in console.out, console.out


async def test_after_the_admins_are_purged_too_the_console_still_starts(cli: Cli) -> None:
    """Once the certificate reached the admins (a console acting as ADMIN-01 delivers it) their rows go
    too at the next tick: then nobody at all is left, and `signpost console` still starts."""
    today = await rehearsed(cli)
    assert today  # the greeting's status is asserted above; here, that the console starts at all
    for _ in range(2):  # the first delivers the certificate, the next tick purges the admins' rows
        assert (await cli.run("console", "--as", "ADMIN-01", stdin="help\n")).code in (0, 2)
    console = await cli.run("console", "--as", "ADMIN-01", stdin="decommission status\n")
    assert console.code == 0, console.err
    assert "acting as an id not in the register" in console.out, console.out
    # Each message is answered by the dispatcher's gate, which audits it: nobody by that id is left.
    assert "There is no practitioner with that id in the register." in console.out, console.out
