"""Every example the README and the console's greeting give works on the demo data, in the console.

The store is seeded as `make run` seeds it (the deterministic synthetic register, 3000 children);
the demo practitioner has an authenticator, as they would after `enrol`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.app import Signpost
from handlers.operator import register
from store.register.synthetic import DemoExamples
from tests.bot.console.console_session import session
from tests.factories import seed_demo
from tests.stepup_helpers import enrol_and_step_up

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

README = (Path(__file__).parents[3] / "README.md").read_text("utf-8")


async def seeded(app: Signpost) -> DemoExamples:
    await seed_demo(app)
    examples = await register.demo_examples(app.ctx)
    assert examples is not None
    await enrol_and_step_up(app, examples.practitioner_id)
    return examples


def readme_table() -> list[str]:
    """The examples in README's "Asking Signpost" table, in order."""
    section = README.split("## Asking Signpost", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def readme_as_ids() -> set[str]:
    return set(re.findall(r"`:as ([A-Z0-9][A-Z0-9-]+)`", README))


async def test_readme_and_greeting_examples_answer_as_documented(signpost: Signpost) -> None:
    """The greeting's reference and shielded examples are README's, and each answers as README says:
    signposts for the reference, "shielded" with Request access, help for help."""
    examples = await seeded(signpost)
    keyed, demographic, shielded, help_ = readme_table()
    assert (keyed, shielded) == (examples.keyed, examples.shielded)  # spaced as README and the answers show them
    assert demographic == examples.demographic
    out = await session(signpost, [keyed, shielded, help_, examples.keyed, examples.shielded])
    greeting, _, answers = out.partition("Demo people to act as")
    for command in (examples.keyed, examples.demographic, examples.shielded):
        assert command in greeting
    assert answers.count(f"Signposts for {keyed}") == 2
    assert answers.count("A record exists and is shielded") == 2 and "[Request access]" in answers
    assert "Signpost tells you who else is working" in answers
    assert "No record found" not in answers and "Sorry" not in answers


async def test_every_demo_id_in_the_readme_and_greeting_can_be_acted_as(signpost: Signpost) -> None:
    """`:as` accepts each id the README and the greeting name (practitioner, duty manager, admin)."""
    examples = await seeded(signpost)
    ids = readme_as_ids() | {examples.practitioner_id, examples.duty_manager_id, examples.admin_id}
    assert {"NS-DM01", "ADMIN-01"} <= ids
    out = await session(signpost, [f":as {who}" for who in sorted(ids)])
    greeting = out.split("Demo people to act as (:as ID):", 1)[1]
    for who in (examples.practitioner_id, examples.duty_manager_id, examples.admin_id):
        assert f"  {who} " in greeting
    for who in ids:
        assert f"Now acting as {who}." in out
    assert "There is no practitioner" not in out


async def test_demo_demographic_example_finds_its_child(signpost: Signpost) -> None:
    """The greeting's (and README's) name-and-date example answers with that child's signposts.

    Kept apart: whether it matches depends on the matching model (handlers/matching), not on the
    console or the README."""
    examples = await seeded(signpost)
    out = await session(signpost, [examples.demographic])
    answer = out.split("Demo people to act as", 1)[1]
    assert "Signposts for" in answer, answer
