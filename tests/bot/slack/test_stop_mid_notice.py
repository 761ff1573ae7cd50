"""A SIGTERM while a notice is being sent: `signpost run` as an operator stops it, a real process
against a recording fake Slack Web API on loopback that holds `chat.postMessage` until the test lets
it through. The delivery pass in flight finishes within SIGNPOST_DRAIN_SECONDS, so the notice
arrives once and a restart sends nothing more; no further notice of a backlog is started after the
SIGTERM; and a pass still going at the limit is cancelled, in one log line.

Nothing here waits for a time to pass: each step waits for a log line, a held call or a state."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bot.app import build
from handlers.vocabulary import Notice, Platform, Principal
from store.db import Database
from store.keys.crypto import KeyRing
from store.people import practitioners
from store.register.feeds import import_feeds
from store.tables.delivery import Notice as NoticeRow
from tests.bot.slack.test_run import start_slack_server
from tests.factories import standard_feeds
from tests.fakes.slack_api import FakeSlackApi

TEAM = "T0001"
# Two practitioners of the standard register, each linked to a Slack account (synthetic ids).
LINKED = {"P001": "U0LEADPRO", "P002": "U0NURSE"}
POST = "chat.postMessage"


def notice_for(practitioner_id: str, n: int) -> Notice:
    return Notice(practitioner_id, "lookup_alert", f"Synthetic notice {n}.", dedupe_key=f"stop-test:{n}")


async def prepare(db_url: str, key_file: Path, queued: list[Notice]) -> None:
    """The standard register, its two practitioners linked to Slack, and ``queued`` in the outbox."""
    keys = KeyRing.generate(key_file)
    keys.save()
    app = build(Database.connect(db_url), keys)
    try:
        now = app.ctx.clock.now()
        await import_feeds(app.ctx.db, app.ctx.keys, standard_feeds(), now)
        async with app.ctx.db.write() as session:
            for practitioner_id, user in LINKED.items():
                await practitioners.link_identity(session, Principal(Platform.SLACK, TEAM, user), practitioner_id, now)
            await app.ctx.notices.enqueue(session, queued, now)
    finally:
        await app.close()


async def stored(db_url: str) -> dict[str, tuple[bool, bool]]:
    """Each notice by dedupe key: (delivered, dropped)."""
    db = Database.connect(db_url)
    try:
        async with db.read() as session:
            rows = (await session.execute(select(NoticeRow))).scalars().all()
            return {str(r.dedupe_key): (r.delivered_at is not None, r.dropped_at is not None) for r in rows}
    finally:
        await db.close()


class Logged:
    """The process's log lines as it writes them (stderr, JSON), read in the background: a test
    waits for a line rather than for a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.ended = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None and self.process.stdout is not None
        drain_stdout = asyncio.create_task(self.process.stdout.read())
        async for raw in self.process.stderr:
            text = raw.decode()
            async with self._changed:
                self.raw.append(text)
                if text.startswith("{"):
                    self.lines.append(json.loads(text))
                self._changed.notify_all()
        await drain_stdout
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    def events(self) -> list[str]:
        return [str(line["event"]) for line in self.lines]

    async def logged_or_ended(self, event: str, timeout: float = 60.0) -> None:
        """Until the process logs ``event``, or has stopped writing (exited) without it."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: event in self.events() or self.ended), timeout)

    async def exited(self, timeout: float = 60.0) -> int:
        await asyncio.wait_for(self._reader, timeout)
        return await asyncio.wait_for(self.process.wait(), timeout)

    @property
    def text(self) -> str:
        return "".join(self.raw)[-3000:]


async def delivery_passes(base: str) -> float:
    """How many notice delivery passes this process has finished (its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
        text = await response.text()
    found = re.findall(r'^signpost_scheduler_runs_total\{[^}]*task="deliver_notices"[^}]*\} (\S+)$', text, re.M)
    return sum(float(value) for value in found)


async def restarted_and_one_pass_done(tmp_path: Path, fake: FakeSlackApi, env: dict[str, str]) -> None:
    """`signpost run` again until it has finished a notice delivery pass of its own; then a SIGTERM."""
    base, process = await start_slack_server(tmp_path, fake, **env)
    logged = Logged(process)
    try:
        async with asyncio.timeout(60):
            while await delivery_passes(base) < 1:
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert await logged.exited() == 0, logged.text
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def server_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"SIGNPOST_DATABASE_URL": db_url, "SIGNPOST_KEY_FILE": str(tmp_path / "stop.key")}


async def stopped_mid_post(process: asyncio.subprocess.Process, fake_slack: FakeSlackApi) -> Logged:
    """SIGTERM while a notice's post is held in flight; the post let go once the process says it
    waits for the scheduler (past the web drain: before the fix it was cancelled as the process
    exited, the post still held); the process exits 0. Killed if it did not."""
    logged = Logged(process)
    try:
        await fake_slack.wait_for_waiting(POST, 1, timeout=60)
        process.send_signal(signal.SIGTERM)
        await logged.logged_or_ended("scheduler_draining")
        fake_slack.release(POST)
        assert await logged.exited() == 0, logged.text
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return logged


async def test_a_sigterm_during_a_held_post_waits_for_it_so_the_notice_arrives_once(
    db_url: str, tmp_path: Path, fake_slack: FakeSlackApi
) -> None:
    env = server_env(db_url, tmp_path)
    await prepare(db_url, tmp_path / "stop.key", [notice_for("P001", 1)])
    fake_slack.hold(POST)
    _, process = await start_slack_server(tmp_path, fake_slack, **env)
    logged = await stopped_mid_post(process, fake_slack)
    assert len(fake_slack.of(POST)) == 1
    assert await stored(db_url) == {"stop-test:1": (True, False)}  # recorded delivered
    events = logged.events()
    assert events.index("stopping") < events.index("scheduler_draining") < events.index("drained"), events
    assert "scheduler_passes_cancelled" not in events

    await restarted_and_one_pass_done(tmp_path, fake_slack, env)
    assert len(fake_slack.of(POST)) == 1, "sent again after the restart"


async def test_a_pass_starts_no_further_notice_of_a_backlog_once_stopping(
    db_url: str, tmp_path: Path, fake_slack: FakeSlackApi
) -> None:
    """Two notices due, to two people: the first is in flight at the SIGTERM and finishes; the
    second is not begun (no DM opened, nothing posted) and stays due, sent once after the restart."""
    env = server_env(db_url, tmp_path)
    await prepare(db_url, tmp_path / "stop.key", [notice_for("P001", 1), notice_for("P002", 2)])
    fake_slack.hold(POST)
    _, process = await start_slack_server(tmp_path, fake_slack, **env)
    await stopped_mid_post(process, fake_slack)
    assert [c.body["users"] for c in fake_slack.of("conversations.open")] == ["U0LEADPRO"]
    assert len(fake_slack.of(POST)) == 1
    assert await stored(db_url) == {"stop-test:1": (True, False), "stop-test:2": (False, False)}

    await restarted_and_one_pass_done(tmp_path, fake_slack, env)
    assert [c.body["users"] for c in fake_slack.of("conversations.open")] == ["U0LEADPRO", "U0NURSE"]
    assert len(fake_slack.of(POST)) == 2  # each notice once
    assert await stored(db_url) == {"stop-test:1": (True, False), "stop-test:2": (True, False)}


async def test_a_pass_still_going_at_the_drain_limit_is_cancelled_and_said_in_one_line(
    db_url: str, tmp_path: Path, fake_slack: FakeSlackApi
) -> None:
    """Slack never answers: after SIGNPOST_DRAIN_SECONDS (the one budget) the pass is cancelled, one
    line names it, and the process exits; the notice stays due (it may arrive twice, never not at all)."""
    env = {**server_env(db_url, tmp_path), "SIGNPOST_DRAIN_SECONDS": "1"}
    await prepare(db_url, tmp_path / "stop.key", [notice_for("P001", 1)])
    fake_slack.hold(POST)
    _, process = await start_slack_server(tmp_path, fake_slack, **env)
    logged = Logged(process)
    try:
        await fake_slack.wait_for_waiting(POST, 1, timeout=60)
        process.send_signal(signal.SIGTERM)
        assert await logged.exited() == 0, logged.text  # no acknowledged request went unanswered
    finally:
        fake_slack.release(POST)
        if process.returncode is None:
            process.kill()
            await process.wait()
    [cancelled] = [line for line in logged.lines if line["event"] == "scheduler_passes_cancelled"]
    assert cancelled["tasks"] == ["deliver_notices"] and cancelled["limit_seconds"] == 1.0, cancelled
    assert await stored(db_url) == {"stop-test:1": (False, False)}  # still due
