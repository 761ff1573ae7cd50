"""/readyz and /metrics as an operator's monitor sees them: status codes, the checks, the metric lines."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.app import Signpost, build
from bot.config import load_settings
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.vocabulary import Command, Notice, Outcome, Platform, Principal
from store.audit import chain as audit_chain
from store.db import Database
from store.keys.crypto import KeyRing

STRANGER = Principal(Platform.SLACK, "T0SECRET", "U0PRIVATE")


async def serving(signpost: Signpost) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(signpost, load_settings()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def server(signpost: Signpost) -> AsyncIterator[str]:
    runner, url = await serving(signpost)
    try:
        yield url
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (a state reached, not a time elapsed); fail if it never comes."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


def value(text: str, line: str) -> float:
    """The value of one exact metric line (name and labels)."""
    [match] = re.findall(rf"^{re.escape(line)} (\S+)$", text, re.MULTILINE)
    return float(match)


async def test_ready_when_the_database_answers_and_the_audit_writer_is_well(server: str) -> None:
    status, _, body = await get(server + "/readyz")
    assert status == 200 and '"status": "ready"' in body and '"database": "ok"' in body and '"audit": "ok"' in body
    assert (await get(server + "/healthz"))[0] == 200


async def test_not_ready_when_the_database_cannot_be_reached(keys: KeyRing) -> None:
    """A database nobody answers at: /readyz is 503 and says which check failed; once a command's audit
    event cannot be written, the audit check fails too. /healthz still answers 200."""
    unreachable = Database.connect("postgresql+asyncpg://signpost@127.0.0.1:9/nothing")
    app = build(unreachable, keys, FakeClock())
    runner, url = await serving(app)
    try:
        status, _, body = await get(url + "/readyz")
        assert status == 503 and '"status": "not ready"' in body and '"database": "unreachable (' in body
        reply = await app.dispatcher.handle(Command(STRANGER, "help", "c1"))
        assert reply.outcome is Outcome.FAILED
        status, _, body = await get(url + "/readyz")
        assert status == 503 and "the audit writer's last batch failed" in body
        assert (await get(url + "/healthz"))[0] == 200
    finally:
        await runner.cleanup()
        await app.ctx.audit.close()
        await unreachable.close()


async def test_metrics_count_commands_latency_audit_batches_stepup_failures_and_notices(
    signpost: Signpost, server: str
) -> None:
    for n in range(3):
        await signpost.dispatcher.handle(Command(STRANGER, "help", f"h{n}"))
    await signpost.dispatcher.handle(Command(STRANGER, "code", "c1", code="123456", challenge_id="x"))
    await signpost.dispatcher.refuse_unheard(Command(STRANGER, "help", "u1"), "tenant not allowed")
    now = signpost.ctx.clock.now()
    async with signpost.ctx.db.write() as session:
        await signpost.ctx.notices.enqueue(session, [Notice("P001", "test", "A test notice.", dedupe_key="k1")], now)
    async with signpost.ctx.db.write() as session:  # the same notice again: its dedupe key stores nothing
        await signpost.ctx.notices.enqueue(session, [Notice("P001", "test", "A test notice.", dedupe_key="k1")], now)
    with pytest.raises(RuntimeError):
        async with signpost.ctx.db.write() as session:  # rolled back: nothing was queued
            await signpost.ctx.notices.enqueue(session, [Notice("P001", "test", "Never stored.")], now)
            raise RuntimeError("the command failed after storing its notice")

    status, content_type, text = await get(server + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert value(text, 'signpost_commands_total{action="help",outcome="info"}') == 3
    assert value(text, 'signpost_commands_total{action="untrusted_source",outcome="refused"}') == 1
    assert value(text, 'signpost_command_seconds_count{action="help"}') == 3
    assert value(text, 'signpost_command_seconds_bucket{action="help",le="+Inf"}') == 3
    assert value(text, "signpost_audit_batch_size_sum") == 5  # every command's event, in some batches
    assert value(text, "signpost_audit_batch_size_count") >= 1
    assert value(text, "signpost_audit_lag_seconds_count") == 5  # each event's wait to be durable
    assert value(text, "signpost_audit_waiting") == 0
    assert value(text, "signpost_stepup_failures_total") == 1  # the code from someone with no credential
    assert value(text, 'signpost_notices_total{state="queued"}') == 1
    assert value(text, 'signpost_notices_total{state="delivered"}') == 0
    assert value(text, 'signpost_notices_total{state="failed"}') == 0
    for private in ("T0SECRET", "U0PRIVATE", "P001", "123456"):
        assert private not in text


async def test_an_audit_writer_that_cannot_commit_makes_readyz_503_and_its_lag_is_measured(
    signpost: Signpost, clock: FakeClock, server: str
) -> None:
    """Another transaction holds the audit chain (a stalled disk or a stray lock look the same): a
    command's event waits. Waiting a little is slow, not broken; past 10 s /readyz is 503 naming the
    audit writer, and once the lock goes the event is written and its lag (queued → durable) is
    counted. /healthz stays 200 throughout."""
    audit = signpost.ctx.audit
    async with signpost.ctx.db.write() as session:
        await audit_chain.lock_head(session)
        answering = asyncio.create_task(signpost.dispatcher.handle(Command(STRANGER, "help", "h1")))
        await until(lambda: audit.waiting == 1)
        status, _, text = await get(server + "/metrics")
        assert value(text, "signpost_audit_waiting") == 1
        clock.advance(seconds=4)
        status, _, body = await get(server + "/readyz")
        assert status == 200 and '"audit": "ok"' in body
        clock.advance(seconds=7)
        status, _, body = await get(server + "/readyz")
        assert status == 503 and '"status": "not ready"' in body
        assert "the audit writer is stuck: an event has waited over 10 s to be written" in body
        assert (await get(server + "/healthz"))[0] == 200
        assert not answering.done()  # no answer before its audit event is durable
    reply = await answering
    assert reply.outcome is Outcome.INFO
    status, _, body = await get(server + "/readyz")
    assert status == 200 and '"audit": "ok"' in body
    _, _, text = await get(server + "/metrics")
    assert value(text, "signpost_audit_waiting") == 0
    assert value(text, "signpost_audit_lag_seconds_count") == 1
    assert value(text, "signpost_audit_lag_seconds_sum") == 11
    assert value(text, 'signpost_audit_lag_seconds_bucket{le="5.0"}') == 0
    assert value(text, 'signpost_audit_lag_seconds_bucket{le="+Inf"}') == 1


async def test_metrics_count_scheduled_task_runs_by_task_and_result(
    signpost: Signpost, clock: FakeClock, server: str, tmp_path: Path
) -> None:
    """Every scheduled task shows its runs (0 before the first), ok or failed: here the checkpoint
    export fails because its folder is a file, and the other tasks run."""
    not_a_folder = tmp_path / "checkpoints"
    not_a_folder.write_text("an operator's mistake: a file where the folder should be\n")
    tasks = standard_tasks(Outbox(signpost.ctx, []), not_a_folder)
    scheduler = Scheduler(signpost.ctx, tasks)
    await signpost.dispatcher.handle(Command(STRANGER, "help", "h1"))  # a chain to export

    _, _, text = await get(server + "/metrics")
    for task in tasks:
        assert value(text, f'signpost_scheduler_runs_total{{result="ok",task="{task.name}"}}') == 0
        assert value(text, f'signpost_scheduler_runs_total{{result="failed",task="{task.name}"}}') == 0

    assert "export_checkpoint" not in await scheduler.run_due()
    await scheduler.run_due()  # nothing is due again yet
    clock.advance(minutes=1)
    await scheduler.run_due()  # the one-minute tasks again; hourly and five-minute ones not

    _, _, text = await get(server + "/metrics")
    assert value(text, 'signpost_scheduler_runs_total{result="ok",task="expire_grants"}') == 2
    assert value(text, 'signpost_scheduler_runs_total{result="failed",task="expire_grants"}') == 0
    assert value(text, 'signpost_scheduler_runs_total{result="ok",task="retention"}') == 1
    assert value(text, 'signpost_scheduler_runs_total{result="failed",task="export_checkpoint"}') == 1
    assert value(text, 'signpost_scheduler_runs_total{result="ok",task="export_checkpoint"}') == 0
    assert value(text, 'signpost_scheduler_task_seconds_count{task="expire_grants"}') == 2
    assert value(text, 'signpost_scheduler_task_seconds_count{task="export_checkpoint"}') == 1


async def test_a_stopped_audit_writer_makes_readyz_503_until_the_next_command_starts_it_again(
    signpost: Signpost, server: str
) -> None:
    """Something cancels the audit writer's task (the task itself, found by its name, as any code in
    the process could): /readyz is 503 saying it stopped; the next command starts a new writer, is
    answered and audited, and /readyz is 200 again."""
    await signpost.dispatcher.handle(Command(STRANGER, "help", "h1"))
    [writer] = [task for task in asyncio.all_tasks() if task.get_name() == "audit-writer"]
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    status, _, body = await get(server + "/readyz")
    assert status == 503 and '"audit": "the audit writer has stopped"' in body
    assert (await get(server + "/healthz"))[0] == 200
    reply = await signpost.dispatcher.handle(Command(STRANGER, "help", "h2"))
    assert reply.outcome is Outcome.INFO
    status, _, body = await get(server + "/readyz")
    assert status == 200 and '"audit": "ok"' in body


async def test_healthz_answers_the_body_the_readme_gives_wherever_it_gives_one(server: str) -> None:
    """Every body the README shows for /healthz is the one served: status ok and this process's id."""
    status, _, body = await get(server + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "pid": os.getpid()}
    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    shown = re.findall(r"/healthz` answers `(\{[^`]*\})`", readme)
    assert len(shown) == 2 and set(shown) == {'{"status": "ok", "pid": …}'}, shown
