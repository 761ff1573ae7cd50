"""/readyz and /metrics as an operator's monitor sees them: status codes, the checks, the metric lines."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.app import Signpost, build
from bot.config import load_settings
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.vocabulary import Command, Notice, Outcome, Platform, Principal
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
    async with signpost.ctx.db.write() as session:
        await signpost.ctx.notices.enqueue(
            session, [Notice("P001", "test", "A test notice.")], signpost.ctx.clock.now()
        )

    status, content_type, text = await get(server + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert value(text, 'signpost_commands_total{action="help",outcome="info"}') == 3
    assert value(text, 'signpost_command_seconds_count{action="help"}') == 3
    assert value(text, 'signpost_command_seconds_bucket{action="help",le="+Inf"}') == 3
    assert value(text, "signpost_audit_batch_size_sum") == 4  # every command's event, in some batches
    assert value(text, "signpost_audit_batch_size_count") >= 1
    assert value(text, "signpost_stepup_failures_total") == 1  # the code from someone with no credential
    assert value(text, 'signpost_notices_total{state="queued"}') == 1
    assert value(text, 'signpost_notices_total{state="delivered"}') == 0
    assert value(text, 'signpost_notices_total{state="failed"}') == 0
    for private in ("T0SECRET", "U0PRIVATE", "P001", "123456"):
        assert private not in text
