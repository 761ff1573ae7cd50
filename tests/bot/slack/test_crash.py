"""Crash durability, as CI checks it on every change: a real `signpost run` in Slack HTTP mode,
concurrent signed lookups, `kill -9` mid-flight a few times with restarts, then Slack's
redeliveries. Every answer that reached Slack has its audit event, every request ends audited
exactly once (none is left "Already received" with no answer and no event), and the chain verifies.

Bounded and without timing luck: each kill waits for observable progress (answers at the fake
Slack API), not for a sleep; what is asserted holds wherever the kill lands.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.app import build
from handlers.vocabulary import Platform, Principal
from store.db import Database
from store.keys.crypto import KeyRing
from store.people import practitioners
from store.register.feeds import Feed, import_feeds
from store.tables.audit import AuditEvent
from tests.bot.slack.test_run import ROOT, base_env, command_form, post_signed, start_slack_server
from tests.factories import AMY, standard_feeds
from tests.fakes.slack_api import FakeSlackApi
from tests.stepup_helpers import enrol_and_step_up

ROUNDS = 3  # kills
PER_ROUND = 10  # concurrent lookups in flight at each kill
TEAM = "T0001"


def user_of(name: str) -> str:
    return f"U0{name.upper()}"


def practitioner_of(name: str) -> str:
    return f"X{name.upper()}"


async def prepare(db_url: str, key_file: Path, names: list[str]) -> None:
    """The standard register plus one practitioner per request, each linked to Slack and stepped up now.

    One asker per request lets each audit event be matched to its request by user id.
    """
    keys = KeyRing.generate(key_file)
    keys.save()
    app = build(Database.connect(db_url), keys)  # the system clock, as the server will use
    extra = "".join(
        f"{practitioner_of(n)},Test,Asker,School nurse,Northshire School Health,Northshire,0161 496 0999,"
        f"asker.{n}@nhs.example,practitioner\n"
        for n in names
    )
    feeds = [Feed(f.name, f.text + extra) if f.name == "practitioners.csv" else f for f in standard_feeds()]
    try:
        await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
        async with app.ctx.db.write() as session:
            for name in names:
                principal = Principal(Platform.SLACK, TEAM, user_of(name))
                await practitioners.link_identity(session, principal, practitioner_of(name), app.ctx.clock.now())
        for name in names:
            await enrol_and_step_up(app, practitioner_of(name))
    finally:
        await app.close()


def answered(fake: FakeSlackApi) -> dict[str, int]:
    """How many answers reached Slack for each request: its modal updated, or its response_url posted."""
    view_of = {c.answer["view"]["id"]: c.body["trigger_id"].rsplit(".", 1)[1] for c in fake.of("views.open")}
    counts: dict[str, int] = {}
    for call in fake.of("views.update"):
        name = view_of[call.body["view_id"]]
        counts[name] = counts.get(name, 0) + 1
    for call in fake.of("response_url"):
        name = call.path.rsplit("/", 1)[1]
        counts[name] = counts.get(name, 0) + 1
    return counts


async def lookup_events(db_url: str) -> dict[str, int]:
    """Audit events of the requests' lookups, counted per request (by the asker's user id)."""
    db = Database.connect(db_url)
    try:
        async with db.read() as session:
            users = (await session.execute(select(AuditEvent.user_id).where(AuditEvent.action == "lookup"))).scalars()
            counts: dict[str, int] = {}
            for user in users:
                counts[user] = counts.get(user, 0) + 1
            return counts
    finally:
        await db.close()


async def test_answers_survive_kill_9_and_redelivery_with_one_event_each_and_a_verifying_chain(
    db_url: str, tmp_path: Path, fake_slack: FakeSlackApi
) -> None:
    names = [f"k{r}n{i}" for r in range(ROUNDS) for i in range(PER_ROUND)]
    key_file = tmp_path / "crash.key"
    await prepare(db_url, key_file, names)
    # The answer budget at 0: every lookup is answered after its ack (placeholder, then views.update),
    # the path where a kill can land between the ack and the answer. (An answer in the ack dies with
    # its HTTP request, and Slack's redelivery is answered as any other.)
    env = {"SIGNPOST_DATABASE_URL": db_url, "SIGNPOST_KEY_FILE": str(key_file), "SIGNPOST_SLACK_ANSWER_BUDGET": "0"}

    async with aiohttp.ClientSession() as session:
        for r in range(ROUNDS):
            base, process = await start_slack_server(tmp_path, fake_slack, **env)
            batch = names[r * PER_ROUND : (r + 1) * PER_ROUND]
            before = len(fake_slack.of("views.update"))
            acks = await asyncio.gather(
                *(post_signed(session, base, command_form(fake_slack, n, AMY, user_of(n))) for n in batch)
            )
            assert acks == [(200, "")] * PER_ROUND  # every request acknowledged
            await fake_slack.wait_for("views.update", before + 2, timeout=60)  # answers are flowing
            process.kill()  # kill -9, with the rest of the batch in flight
            await process.wait()

        # Slack redelivers what it saw no answer to; the server drains and stops cleanly.
        base, process = await start_slack_server(tmp_path, fake_slack, **env)
        unanswered = [n for n in names if n not in answered(fake_slack)]
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        for n in unanswered:
            assert await post_signed(session, base, command_form(fake_slack, n, AMY, user_of(n)), **retry) == (200, "")
    process.terminate()
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]

    events, answers = await lookup_events(db_url), answered(fake_slack)
    assert all(events.get(user_of(n)) for n in answers), "an answer reached Slack without its audit event"
    assert {n: events.get(user_of(n), 0) for n in names} == dict.fromkeys(names, 1), "not audited exactly once"
    assert all(count == 1 for count in answers.values()), "a request was answered twice"
    verify = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "audit",
        "verify",
        cwd=tmp_path,
        env={**base_env(tmp_path), **env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(verify.communicate(), 60)
    assert verify.returncode == 0, (out + err).decode()[-2000:]
    assert out.decode().startswith("OK:")
