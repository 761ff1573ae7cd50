"""Every example the console's greeting prints answers as the greeting says it will, on the demo
store that `signpost seed-demo` makes (the same synthetic register, the same defaults)."""

from __future__ import annotations

import io
import re

import pytest

from bot.app import Signpost
from bot.console.console import DEFAULT_AS, FIRST_CODE_WAITS, Console
from handlers.operator import people
from handlers.operator.common import audited
from handlers.vocabulary import Action, Outcome
from store.register.feeds import Feed, import_feeds
from store.register.synthetic import SyntheticRegister, feeds_text
from store.tables.lifecycle import Meta
from tests.bot.console.console_session import Terminal
from tests.factories import ready, say
from tests.stepup_helpers import say_fresh

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

DEMO_CHILDREN = 3000  # seed-demo's default
EXPECTED = {
    "by reference": Outcome.ANSWERED,
    "by name and date of birth": Outcome.ANSWERED,
    "a shielded child": Outcome.SHIELDED,
}
EXAMPLE = re.compile(r"^\s+(?P<command>\S.*?)\s+\((?P<label>[^)]*)\)$")


async def seed_demo(app: Signpost, children: int = DEMO_CHILDREN) -> None:
    """What `signpost seed-demo` writes: the synthetic feeds, and how many children were asked for."""
    register = SyntheticRegister(children=children)
    feeds = [Feed(name, text) for name, text in feeds_text(register).items()]
    await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
    async with app.ctx.db.write() as session:
        await session.merge(Meta(key="demo_children", value=str(children)))


@pytest.mark.parametrize("children", [DEMO_CHILDREN, 10])
async def test_every_printed_demo_example_answers_as_the_console_says(signpost: Signpost, children: int) -> None:
    """The greeting's reference, name-and-date and shielded examples, typed as printed by the
    practitioner the console acts as: signposts, signposts, and the shielded notice. A small demo
    store (`seed-demo --children 10`) may hold no child for an example: it is left out, never
    printed blank."""
    await seed_demo(signpost, children)
    out = io.StringIO()
    await Console(signpost, DEFAULT_AS, io.StringIO(), out).greet()
    # Only the searches the greeting offers (it lists the demo people to act as after them).
    searches = out.getvalue().split("Try these on the demo data:", 1)[1].split("Demo people to act as", 1)[0]
    printed = [EXAMPLE.match(line) for line in searches.splitlines() if line]
    assert all(printed), out.getvalue()  # each line an example with its command
    labels = sorted(match["label"] for match in printed if match)
    if children == DEMO_CHILDREN:
        assert labels == sorted(EXPECTED), out.getvalue()
    assert labels and set(labels) <= set(EXPECTED), out.getvalue()
    await ready(signpost, DEFAULT_AS)
    for match in filter(None, printed):
        reply = await say(signpost, DEFAULT_AS, match["command"])
        assert reply.outcome is EXPECTED[match["label"]], (match["label"], reply.text)
        if reply.outcome is Outcome.ANSWERED:
            assert reply.child_ref is not None and reply.signposts


async def test_the_greeting_shows_searches_only_to_someone_who_may_search(signpost: Signpost) -> None:
    """Started as the demo admin (not a practitioner), the console offered searches that Signpost then
    refused; it now shows the demo people to act as, and the searches only to a practitioner."""
    await seed_demo(signpost, 10)
    examples = SyntheticRegister(children=10).examples()
    for who, searches in ((examples.admin_id, False), (examples.practitioner_id, True)):
        out = io.StringIO()
        await Console(signpost, who, io.StringIO(), out).greet()
        assert ("Try these on the demo data:" in out.getvalue()) is searches, (who, out.getvalue())
        assert "Demo people to act as (:as ID):" in out.getvalue()


async def test_after_switch_off_the_greeting_offers_no_search(signpost: Signpost) -> None:
    """Once Signpost was switched off, the greeting still said "Try these on the demo data:" with the
    three searches, and each was answered that Signpost is switched off."""
    await seed_demo(signpost, 10)
    examples = SyntheticRegister(children=10).examples()
    today = signpost.ctx.clock.now().strftime("%d/%m/%Y")
    done = await say_fresh(signpost, examples.admin_id, f"decommission schedule {today} at once")
    assert done.outcome is Outcome.DONE, done.text
    out = io.StringIO()
    await Console(signpost, examples.practitioner_id, io.StringIO(), out).greet()
    assert "Try these on the demo data:" not in out.getvalue(), out.getvalue()
    assert examples.keyed not in out.getvalue(), out.getvalue()
    assert "Demo people to act as (:as ID):" in out.getvalue()  # the admin may still ask for status


ENROL_FIRST = "Send enrol first: Signpost asks for a code from an authenticator app before any search."


async def test_the_greeting_says_to_enrol_first_until_an_authenticator_is_set_up(signpost: Signpost) -> None:
    """On a new demo store the greeting's first example was answered "... you haven't set one up
    yet ... Send: enrol": the greeting now says so before the examples, and no longer once the
    practitioner it acts as has an authenticator."""
    await seed_demo(signpost, 10)
    out = Terminal()  # a piped console, where enrol is refused, says what works there (test_piped_enrol.py)
    await Console(signpost, DEFAULT_AS, io.StringIO(), out).greet()
    greeting = out.getvalue()
    assert ENROL_FIRST in greeting and greeting.index(ENROL_FIRST) < greeting.index("Try these on the demo data:")
    await ready(signpost, DEFAULT_AS)
    again = io.StringIO()
    await Console(signpost, DEFAULT_AS, io.StringIO(), again).greet()
    assert "Try these on the demo data:" in again.getvalue() and "enrol" not in again.getvalue(), again.getvalue()


async def test_the_greeting_after_an_admins_set_up_asks_for_the_first_code_not_an_enrol(signpost: Signpost) -> None:
    """After `signpost totp enrol ID --secret-file` the greeting still said "Send enrol first" (a
    newcomer), though the first search asks for the set-up's first code and no enrol is needed."""
    await seed_demo(signpost, 10)
    async with audited(signpost.ctx, "operator", Action.TOTP_ENROL) as audit:
        await people.totp_enrol(signpost.ctx, audit, DEFAULT_AS, replace=False)
    out = Terminal()
    await Console(signpost, DEFAULT_AS, io.StringIO(), out).greet()
    greeting = out.getvalue()
    assert FIRST_CODE_WAITS in greeting and ENROL_FIRST not in greeting and "send enrol" not in greeting.lower()
    assert greeting.index(FIRST_CODE_WAITS) < greeting.index("Try these on the demo data:")
