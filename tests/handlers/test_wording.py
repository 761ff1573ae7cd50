"""What every command says reads as a sentence (issue 17 item 13): each reply and each notice it
causes starts with a capital, counts agree with their nouns ("1 row", "3 rows", never "row(s)"), and
platforms are spelt as people spell them. Every command is sent bare, with a wrong argument and with
plausible ones, by a practitioner, a duty manager and an admin."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Platform, Principal
from store.delivery.notices import decode
from store.tables.delivery import Notice as NoticeRow
from tests.factories import load_standard, say
from tests.stepup_helpers import say_fresh

PEOPLE = ("P001", "DM01", "AD01")
ARGUMENTS = ("", " ?", " 0", " P002", " 999 000 0018", " Amy Jones 03/04/2014", " 1 please call me", " lots")
COUNT_NOUNS = "rows|records|problems|children|lookups|events|notices|requests|messages|days|hours|minutes|tries"
WRONG_COUNT = re.compile(rf"(?<![\d.,])1 ({COUNT_NOUNS})\b")
LOWER_PLATFORM = re.compile(r"\b(slack|teams) (account|user|workspace|tenant)")


def problems_in(text: str) -> list[str]:
    found = []
    start = text.lstrip()[:1]
    if start.islower():
        found.append("starts in lower case")
    if "(s)" in text or "(es)" in text:
        found.append("a count written with (s)")
    if WRONG_COUNT.search(text):
        found.append("1 with a plural noun")
    if LOWER_PLATFORM.search(text):
        found.append("a platform spelt in lower case")
    if "/signpost" in text:
        found.append("Slack's slash command in a reply every front end shows (Slack adds it)")
    return found


def words(signpost: Signpost) -> list[str]:
    """Every command's first word, sub-commands included (``decommission schedule``)."""
    names = []
    for spec in signpost.dispatcher.specs.values():
        if spec.keyword:
            names.append(spec.name)
            names.extend(f"{spec.name} {sub}" for sub in spec.subcommands)
    return sorted(set(names))


async def test_every_reply_and_notice_reads_as_a_sentence(signpost: Signpost) -> None:
    await load_standard(signpost)
    # A Slack account waiting to be linked, so duty managers' and admins' pages list it.
    registered = await say(signpost, Principal(Platform.SLACK, "T0TEST", "U0NEW"), "register P002")
    assert registered.text.startswith("If the id you gave is an active practitioner's")
    bad: list[str] = [f"register → {registered.text!r}: {p}" for p in problems_in(registered.text)]
    home = await say_fresh(signpost, "DM01", "home")
    assert any("a Slack account asks to act as P002" in line for line in home.lines), home.lines
    sent = 0
    for who in PEOPLE:
        for word in words(signpost):
            for argument in ARGUMENTS:
                text = word + argument
                reply = await say_fresh(signpost, who, text)
                sent += 1
                bad.extend(f"{who} {text!r} → {reply.text!r}: {p}" for p in problems_in(reply.text))
                for line in reply.lines:
                    bad.extend(f"{who} {text!r} line {line!r}: {p}" for p in problems_in(line) if "lower" not in p)
    async with signpost.ctx.db.read() as session:
        notices = [decode(row) for row in (await session.execute(select(NoticeRow))).scalars()]
    for notice in notices:
        bad.extend(f"notice {notice.kind} {notice.text!r}: {p}" for p in problems_in(notice.text))
    assert sent > 100 and notices
    assert bad == []
