"""A store restored from a backup holding more rows about a child destroyed since than a scheduled
job reads in one run, all of them ahead of one live row due (the oldest first): each job passes the
dead rows over and still does its live work in that run. Had each read taken its batch first and
only then left the dead rows out, every run would read the same dead rows and do nothing (no
escalation, no expiry, no notice) until the next retention run deleted them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.app import Signpost, build
from bot.console.notices import ConsoleDeliverer
from bot.notify import Outbox
from handlers.access import jobs
from handlers.access.policy import POLICY
from handlers.vocabulary import Notice
from store.people import access
from tests.bot.cli.restored_store import BACKED_UP, DESTROYED, back_up_then_destroy, import_shielded_tara
from tests.factories import AMY
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import TURNS_24

DEAD = jobs.BATCH + 1  # more rows about the destroyed child than one run reads
NOTICE_BATCH = 10  # the outbox pass's limit in this test (its default is DUE_LIMIT)
LIFETIME = timedelta(days=1)


async def _rows(signpost: Signpost, ref: int, requester: str, count: int) -> list[tuple[int, int]]:
    """``count`` pending requests about ``ref`` by ``requester``, each approved as a grant for an
    hour (left active) and with a notice naming it to P001: their (request, grant) ids."""
    made = []
    async with signpost.ctx.db.write() as session:
        for _ in range(count):
            new = access.NewRequest(requester, ref, "Northshire", None, None)
            request_id = await access.open_request(session, new, BACKED_UP, LIFETIME, BACKED_UP + POLICY.escalate_after)
            request = await access.get_request(session, signpost.ctx.keys, request_id)
            assert request is not None
            grant_id = await access.create_grant(session, request, "DM01", BACKED_UP, BACKED_UP + timedelta(hours=1))
            told = Notice("P001", "grant_note", f"request {request_id}", dedupe_key=f"access:{request_id}:note")
            await signpost.ctx.notices.enqueue(session, [told], BACKED_UP)
            made.append((request_id, grant_id))
    return made


async def test_dead_rows_ahead_of_the_batch_do_not_stall_the_jobs(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    await import_shielded_tara(signpost)
    await _rows(signpost, int(TURNS_24), "P002", DEAD)
    [(live_request, _)] = await _rows(signpost, int(AMY), "P003", 1)
    taken = await back_up_then_destroy(signpost, tmp_path)
    escalating = BACKED_UP + POLICY.escalate_after + timedelta(minutes=1)
    expiring = BACKED_UP + LIFETIME + timedelta(minutes=1)
    now_keys = current_key_material(signpost.ctx.keys, DESTROYED)
    async with restored(db_url, taken) as old:
        app = build(old, now_keys, signpost.ctx.clock)
        try:
            async with old.read() as session:
                listed = [row.id for row in await access.pending_requests(session, now_keys, None, escalating)]
            printed: list[str] = []
            deliverer = ConsoleDeliverer(lambda: "P001", printed.append)
            sent = await Outbox(app.ctx, [deliverer]).deliver_due(escalating, limit=NOTICE_BATCH)
            escalated = await jobs.escalate_requests(app.ctx, escalating)
            ended = await jobs.expire_grants(app.ctx, expiring)
            expired = await jobs.expire_requests(app.ctx, expiring)
        finally:
            await app.ctx.audit.close()
    done = (listed, sent.delivered, printed, escalated, ended, expired)
    assert done == ([live_request], 1, [f"[notice] request {live_request}"], 1, 1, 1), done
