"""Admins are told after each destruction step: the "data" step blanks every notice's text and
drops those not sent (never marking one delivered that nobody sent), but leaves the admins' own
retention and decommissioning news to be delivered."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bot.app import Signpost
from bot.notify import Outbox
from handlers.clock import FakeClock
from handlers.vocabulary import Notice, Platform, Principal
from store.lifecycle import decommission
from store.tables.delivery import Notice as NoticeRow
from tests.handlers.lifecycle.test_decommission import Killed, destroy, schedule
from tests.store.lifecycle.lifecycle_data import MARKER, at, load, retention_on

ADMINS = ["AD01", "AD02"]


class ConsolePlatform:
    """Takes every notice for the console (where every active practitioner is reachable)."""

    platform = Platform.CONSOLE

    def __init__(self) -> None:
        self.sent: list[tuple[Principal, Notice]] = []

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.sent.append((to, notice))


def _dropped_metric(app: Signpost) -> float:
    return app.metrics.registry.get_sample_value("signpost_notices_total", {"state": "dropped"}) or 0.0


async def rows(app: Signpost) -> dict[str, NoticeRow]:
    async with app.ctx.db.read() as session:
        found = (await session.execute(select(NoticeRow).order_by(NoticeRow.id))).scalars()
        return {str(row.dedupe_key): row for row in found}


async def enqueue(app: Signpost, *found: Notice) -> None:
    async with app.ctx.db.write() as session:
        await app.ctx.notices.enqueue(session, list(found), app.ctx.clock.now())


async def test_each_step_notice_is_delivered_and_no_unsent_notice_is_marked_delivered(
    signpost: Signpost, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`decommission destroy` stopped after its keys and data steps: the step-1 notice, the
    schedule's and a retention run's are still pending with their text, and a real outbox pass
    delivers them to each admin; notices with personal text are blanked, those never sent dropped
    with a reason (not delivered), one sent before keeps its delivery time. Resumed, each admin is
    told of every step and gets the certificate."""
    await load(signpost)
    box_platform = ConsolePlatform()
    box = Outbox(signpost.ctx, [box_platform])
    await enqueue(signpost, Notice("AD01", "access_request", f"Request about {MARKER}", dedupe_key="sent-before"))
    await box.deliver_due(clock.now())
    sent_before = (await rows(signpost))["sent-before"].delivered_at
    assert sent_before is not None
    # Its notices are left pending; so is the schedule's, within their week at the pass below
    # (a notice a week old is closed unsent at the start of a pass, bot.notify._close_expired).
    await retention_on(signpost, date(2026, 11, 6))
    await schedule(signpost, "decommission schedule 10/11/2026 20/11/2026")
    await enqueue(
        signpost,
        Notice("P001", "lead", f"A colleague looked up {MARKER}", dedupe_key="lead-unsent"),
        Notice("AD02", "access_request", f"Request about {MARKER}", dedupe_key="admin-unsent"),
    )
    box_platform.sent.clear()

    clock.set(at(date(2026, 11, 12)))
    with monkeypatch.context() as patch:

        def killed(*args: object) -> None:
            raise Killed

        patch.setitem(decommission._STEP_FUNCTIONS, "compact", killed)
        dropped_before = _dropped_metric(signpost)
        with capture_logs() as logs, pytest.raises(Killed):
            await destroy(signpost)

    found = await rows(signpost)
    # Each notice the data step closed unsent is told as every dropped notice is: one line (id, kind
    # and reason only) and one count.
    lines = [entry for entry in logs if entry["event"] == "notice_dropped"]
    assert all(set(entry) == {"event", "log_level", "notice_id", "kind", "reason"} for entry in lines)
    assert sorted((e["notice_id"], e["kind"], e["reason"]) for e in lines) == sorted(
        (found[key].id, found[key].kind, decommission.NOT_SENT) for key in ("lead-unsent", "admin-unsent")
    )
    assert _dropped_metric(signpost) - dropped_before == 2
    for admin in ADMINS:
        for key in ("decommission:1:step:keys", "decommission:1:step:data", "decommission:1:scheduled"):
            row = found[f"{key}:{admin}"]
            assert (row.delivered_at, row.dropped_at) == (None, None), key
            assert json.loads(row.body)["text"] != "(removed at decommissioning)"
    retention = [row for row in found.values() if row.kind == "retention"]
    assert sorted(r.recipient_id for r in retention) == ADMINS and all(r.delivered_at is None for r in retention)
    for key in ("lead-unsent", "admin-unsent"):
        row = found[key]
        assert row.delivered_at is None and row.dropped_at is not None
        assert (row.last_error, row.body) == (decommission.NOT_SENT, decommission.WIPED_BODY)
    assert found["sent-before"].delivered_at == sent_before and found["sent-before"].body == decommission.WIPED_BODY
    assert not [key for key, row in found.items() if row.delivered_at is not None and row.attempts == 0]

    await box.deliver_due(clock.now())
    told = {(to.user_id, str(n.dedupe_key).rsplit(":", 1)[0]) for to, n in box_platform.sent}
    for admin in ADMINS:
        for key in ("decommission:1:step:keys", "decommission:1:step:data", "decommission:1:scheduled"):
            assert (admin, key) in told
    assert {to.user_id for to, n in box_platform.sent if n.kind == "retention"} == set(ADMINS)
    assert all(to.user_id in ADMINS and MARKER not in n.text for to, n in box_platform.sent)

    clock.advance(minutes=20)  # the stopped run's lease has run out: a retry resumes
    assert "decommissioning complete" in await destroy(signpost)
    await box.deliver_due(clock.now())
    steps = {
        (to.user_id, str(n.dedupe_key).split(":")[3]) for to, n in box_platform.sent if ":step:" in str(n.dedupe_key)
    }
    assert steps == {(admin, step) for admin in ADMINS for step in decommission.STEPS}
    assert len(box_platform.sent) == len(set((to, n.dedupe_key) for to, n in box_platform.sent)), "each once"
