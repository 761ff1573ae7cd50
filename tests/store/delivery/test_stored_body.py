"""A notice as stored (``store.delivery.notices.encode`` / ``decode``): read back by a later version."""

from __future__ import annotations

import json

from bot.app import Signpost
from handlers.vocabulary import Notice, ThenEnrol
from store.delivery import notices
from store.tables.delivery import Notice as NoticeRow


async def test_a_stored_notice_whose_enrol_marker_no_longer_rebuilds_its_text_is_delivered_as_written(
    app: Signpost,
) -> None:
    """A notice stored by a version that worded "send: enrol" otherwise keeps a marker whose lead no
    longer rebuilds its text (review): reading it raised, and with it the whole batch, so nobody's
    notices went out while it was first in line. It is delivered as it was written, unmarked, and
    the notice queued after it is delivered too."""
    now = app.ctx.clock.now()
    written = "Your authenticator was reset. To see results again, send: enrol"
    async with app.ctx.db.write() as session:
        session.add(
            NoticeRow(
                recipient_id="P001",
                kind="reset",
                body=json.dumps({"text": written, "buttons": [], "then_enrol": "Worded otherwise then,"}),
                created_at=now,
                not_before=now,
            )
        )
        await session.flush()
        await notices.post(session, [Notice("P001", "info", "the next notice", dedupe_key="next")], now, now)
    async with app.ctx.db.read() as session:
        due = [notice for _, notice in await notices.pending(session, app.ctx.keys, now)]
    assert [(n.text, n.then_enrol) for n in due] == [(written, None), ("the next notice", None)]


async def test_a_stored_notice_asking_to_enrol_keeps_its_marker(app: Signpost) -> None:
    """The marker a notice was stored with comes back with it, so a piped console can still put what
    works there in the instruction's place."""
    now = app.ctx.clock.now()
    marker = ThenEnrol("Your authenticator was reset by an administrator. To see results again,")
    asked = Notice("P001", "reset", marker.text, dedupe_key="reset", then_enrol=marker)
    async with app.ctx.db.write() as session:
        await notices.post(session, [asked], now, now)
    async with app.ctx.db.read() as session:
        [(_, due)] = await notices.pending(session, app.ctx.keys, now)
    assert (due.text, due.then_enrol) == (asked.text, asked.then_enrol) and due.then_enrol is not None
