"""Rows in flight about a child when a backup was taken (an access request, a relayed message and
the notices they queued), the store restored beside a key file that has destroyed the child's
birth-date key since (forensic review). Until the next retention run deletes them, every command
that opens such a row must answer as if the child was destroyed (its rows gone): no failure (a
DecryptionError answered "something went wrong", which told the asker something was there), no
text sealed under the child's key, no grant, no notice delivered that names it.

The clock stays at the backup's time: the key file alone says the child is destroyed
(``children.destroyed_since``), so the requests are still in time and would otherwise be decided."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.app import Signpost, build
from bot.console.notices import ConsoleDeliverer
from bot.notify import Outbox
from handlers.vocabulary import Outcome, format_ref
from tests.access_helpers import notices
from tests.bot.cli.restored_store import BACKED_UP, DESTROYED, back_up_then_destroy, import_shielded_tara
from tests.stepup_helpers import say_fresh
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import TURNS_24


async def _backup_with_rows_in_flight(signpost: Signpost, tmp_path: Path) -> Path:
    await import_shielded_tara(signpost)
    asked = await say_fresh(signpost, "P002", f"request {TURNS_24} section 47 enquiry")
    told = await say_fresh(signpost, "P002", f"message {TURNS_24} worried about her, please call 0161 496 0002")
    assert (asked.outcome, told.outcome) == (Outcome.DONE, Outcome.DONE), (asked.text, told.text)
    assert await notices(signpost)  # queued, not yet delivered, when the backup is taken
    return await back_up_then_destroy(signpost, tmp_path)


async def test_rows_in_flight_about_a_child_destroyed_since_answer_as_gone(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    taken = await _backup_with_rows_in_flight(signpost, tmp_path)
    signpost.ctx.clock.set(BACKED_UP + timedelta(minutes=30))  # type: ignore[attr-defined]
    now_keys = current_key_material(signpost.ctx.keys, DESTROYED)
    async with restored(db_url, taken) as old:
        app = build(old, now_keys, signpost.ctx.clock)
        try:
            read_by_lead = await say_fresh(app, "P001", "relay 1")
            read_by_sender = await say_fresh(app, "P002", "relay 1")
            answered = await say_fresh(app, "P001", "reply 1 please call me on the usual number")
            waiting = await say_fresh(app, "DM01", "pending")
            approved = await say_fresh(app, "DM01", "approve 1 3d")
            denied = await say_fresh(app, "DM01", "deny 1")
            granted = await say_fresh(app, "P002", TURNS_24)
            printed: list[str] = []
            for who in ("P001", "DM01"):  # each recipient of a notice queued before the backup
                await Outbox(app.ctx, [ConsoleDeliverer(lambda: who, printed.append)]).deliver_due()  # noqa: B023
            queued = [notice for notice in await notices(app) if format_ref(int(TURNS_24)) in notice.text]
        finally:
            await app.ctx.audit.close()
    for reply in (read_by_lead, read_by_sender, answered):
        assert reply.outcome is Outcome.INVALID, reply.text
        assert reply.text == "There is no relayed message 1 for you."
    assert waiting.outcome is Outcome.INFO and TURNS_24 not in waiting.text + "".join(waiting.lines), waiting
    for reply in (approved, denied):
        assert reply.outcome is Outcome.INVALID, reply.text
        assert reply.text == "There is no access request 1 for you to decide."
    assert granted.outcome is Outcome.NO_MATCH and not granted.signposts
    assert queued  # the notices naming the child were there, and none was delivered
    assert not [text for text in printed if format_ref(int(TURNS_24)) in text], printed
