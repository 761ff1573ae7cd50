"""The e2e benchmark's askers are set up as real Slack users would be, so the bot's work is the product's."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from benchmarks.e2e.register import TEAM, build_register, enrol_askers, matching_identities, slack_user
from bot.app import Signpost
from handlers.vocabulary import Action, Command, Outcome, Platform, Principal
from store.tables.audit import AuditEvent


async def test_askers_step_up_in_slack_so_asking_there_raises_no_misuse_alert(signpost: Signpost) -> None:
    """Stepped up at the terminal and asking in Slack, every asker's identity was "used from two
    platforms": an alert (and notices) per asker, work no real practitioner causes."""
    now = signpost.ctx.clock.now()
    register = await build_register(signpost, matching_identities, 40, 3, now, demographic_sample=10)
    await enrol_askers(signpost, [0, 1], now)
    for n, ref in enumerate(register.refs[:2]):
        who = Principal(Platform.SLACK, TEAM, slack_user(n))
        reply = await signpost.dispatcher.handle(Command(who, str(ref), uuid.uuid4().hex))
        assert reply.outcome is Outcome.ANSWERED, reply.text
    await signpost.ctx.audit.settle()
    async with signpost.ctx.db.read() as session:
        alerts = (await session.execute(select(AuditEvent.detail).where(AuditEvent.action == Action.ALERT))).all()
        platforms = set(
            (await session.execute(select(AuditEvent.platform).where(AuditEvent.actor_id.is_not(None)))).scalars()
        )
    assert alerts == []
    assert "console" not in platforms
