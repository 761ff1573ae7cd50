"""Every example that ``help`` and the usage texts print answers on the demo data: a newcomer who
copies one from chat onto the store `signpost seed-demo` makes is never told there is no such record.

The store is seeded as `make run` seeds it; the demo people have an authenticator, as after `enrol`.
"""

from __future__ import annotations

import re

import pytest

from bot.app import Signpost
from handlers import help as help_commands
from handlers.vocabulary import Outcome, Platform, Principal, Role
from tests.access_helpers import audit_events
from tests.factories import say, seed_demo
from tests.stepup_helpers import ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

# "… e.g. request 999 000 1146 section 47 enquiry (the purpose is required)": the command after
# "e.g.", up to a parenthesis or the end; "approve 12 3d / approve 12 36h" gives two.
EXAMPLE = re.compile(r"e\.g\. (?P<commands>[^(]+?)\s*(?:\(|$)")
NOT_FOUND = ("No record found", "No record matches")
UNREGISTERED = Principal(Platform.SLACK, "T0001", "U0001")  # who sends `register`: a chat account not yet linked


def printed_examples(app: Signpost) -> list[tuple[Role | None, str]]:
    """(role the command needs, command) for each example help and the usage texts show."""
    found: list[tuple[Role | None, str]] = [(None, line.split(" (", 1)[0]) for line in help_commands.EXAMPLES]
    for spec in app.dispatcher.specs.values():
        for match in EXAMPLE.finditer(spec.usage):
            found += [(spec.role, command.strip()) for command in match["commands"].split(" / ")]
    return found


async def test_every_help_and_usage_example_finds_its_record_on_the_demo_data(signpost: Signpost) -> None:
    """Each example, sent by a demo person allowed to send it, is not told "No record found" (or
    its kin), and help's two searches answer with signposts."""
    await seed_demo(signpost)
    as_role = {None: "NS-P0001", Role.PRACTITIONER: "NS-P0001", Role.DUTY_MANAGER: "NS-DM01", Role.ADMIN: "ADMIN-01"}
    for who in set(as_role.values()):
        await ensure_enrolled(signpost, who)
    examples = printed_examples(signpost)
    commands = [command for _, command in examples]
    assert {"999 000 1006", "Ava Price 05/01/2014 NS1 3LY", "register NS-P0001"} <= set(commands), commands
    for role, command in examples:
        sender = UNREGISTERED if command.startswith("register ") else as_role[role]
        reply = await say(signpost, sender, command)
        assert not any(text in reply.text for text in NOT_FOUND), (command, reply.text)
    # `register` answers alike whatever the id (nobody learns which are in the register): its audit
    # event says whether the example's id opened a registration.
    assert [e.detail for e in await audit_events(signpost, "register")] == ["registration R1"]
    shown = (await say(signpost, "NS-P0001", "help")).lines
    assert [f"• {line}" for line in help_commands.EXAMPLES] == list(shown[:2]), shown  # the demo's own, here
    assert any("e.g. request 999 000 1146" in line for line in shown), shown
    for line in help_commands.EXAMPLES:
        reply = await say(signpost, "NS-P0001", line.split(" (", 1)[0])
        assert reply.outcome is Outcome.ANSWERED and reply.signposts, (line, reply.text)
