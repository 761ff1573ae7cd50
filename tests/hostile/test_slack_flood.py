"""A flood of forged Slack requests. Slack signs the body, so a body is read before anyone knows who
sent it: a hostile review sent 400 forged 1 MiB bodies at once (well-formed signature headers, a
current timestamp, a wrong signature) and each was read in full before being refused, taking the
process from 140 to over 600 MiB and a signed command's answer to within a second of Slack's 3 s
deadline. The bytes of bodies being read unverified are now bounded across the process
(``bot.web.BodyBudget``): a forged body that would go over is refused at once, unread, in one line,
and a small signed request (as every slash command is) still has room.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from bot import web as signpost_web
from bot.app import Signpost
from bot.config import load_settings
from bot.web import MAX_BODY, READ_CHUNK, UNVERIFIED_KEY, BodyBudget, create_app
from tests.bot.conftest import SlackHarness
from tests.hostile.observe import LogTap, identity_in, without_info
from tests.hostile.slack_world import NURSE, ack_body, populate, send_command

# The HTTP front end's budget for bodies not yet verified: one store shows it (tests/spread.py)
pytestmark = pytest.mark.one_store
FORGED_CHUNK = 256 * 1024  # a flood body: over the small share's bodies, under the one-body cap


@pytest.fixture
async def world(slack_app: SlackHarness) -> AsyncIterator[SlackHarness]:
    yield await populate(slack_app)


def budget_of(world: SlackHarness) -> BodyBudget:
    app: web.Application | None = world.slack.client.app
    assert app is not None
    return app[UNVERIFIED_KEY]


def forged_head(*, length: int | None) -> bytes:
    """Headers Slack's would pass every check made before the body: only the body can show that
    the signature is wrong."""
    size = b"Transfer-Encoding: chunked\r\n" if length is None else b"Content-Length: %d\r\n" % length
    signature = b"X-Slack-Request-Timestamp: %d\r\nX-Slack-Signature: v0=%s\r\n" % (int(time.time()), b"0" * 64)
    form = b"Content-Type: application/x-www-form-urlencoded\r\n"
    return b"POST /slack/events HTTP/1.1\r\nHost: x\r\n" + form + signature + size + b"\r\n"


def chunked(body: bytes, piece: int = 16 * 1024) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + piece]), body[i : i + piece]) for i in range(0, len(body), piece)]
    return b"".join(parts) + b"0\r\n\r\n"


async def status_of(port: int, data: bytes) -> int:
    """The status Signpost answers a request with, sent whole on a fresh connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        line = await asyncio.wait_for(reader.readline(), 60)
        return int(line.split()[1])
    finally:
        writer.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (a state, never a time, is what the test asserts) for the server to get there."""
    async with asyncio.timeout(60):
        while not condition():
            await asyncio.sleep(0.01)


def refusals(log: str) -> Counter[int]:
    """The statuses of the refusals logged; every JSON line must be one."""
    lines = [json.loads(line) for line in without_info(log).splitlines() if line.startswith("{")]
    assert all(line["event"] == "slack_request_refused" for line in lines), [line["event"] for line in lines]
    assert '"exception"' not in log and "Traceback" not in log and identity_in(log) is None
    return Counter(line["status"] for line in lines)


async def test_forged_bodies_over_the_unverified_budget_are_refused_unread_and_a_signed_command_is_answered(
    world: SlackHarness, logs: LogTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signpost_web, "BODY_SECONDS", 300.0)  # the held bodies wait for the test, however slow
    port = world.slack.client.port
    assert port is not None
    budget = budget_of(world)
    # Forged bodies of the most one request may send, held open with all but their last byte sent,
    # as a slow sender would: as many as the budget lets large bodies take (what was received is held).
    held_count = budget.large_limit // MAX_BODY
    assert held_count >= 1
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(held_count)]
    for _, writer in held:
        writer.write(forged_head(length=MAX_BODY) + b"a=" + b"x" * (MAX_BODY - 3))
        await writer.drain()
    await until(lambda: budget.held == held_count * (MAX_BODY - 1))
    logs.new()

    # The flood: forged bodies that say how long they are and bodies sent chunked, each refused on
    # the first piece that would take the large bodies' share past what is left.
    body = b"a=" + b"x" * (FORGED_CHUNK - 2)
    flood = [forged_head(length=len(body)) + body] * 20 + [forged_head(length=None) + chunked(body)] * 20
    statuses = await asyncio.gather(*(status_of(port, data) for data in flood))
    assert Counter(statuses) == {429: len(flood)}
    assert refusals(logs.new()) == {429: len(flood)}
    assert budget.held == held_count * (MAX_BODY - 1)  # the refused took nothing and kept nothing

    # A correctly signed command while the forged bodies are still being read: answered.
    sent, response_path = await send_command(world, logs, NURSE, "help")
    assert sent.status == 200
    answers = [c for c in sent.calls if c.method == "response_url" and c.path.endswith(response_path)]
    if sent.ack:
        answers.append(ack_body(sent.ack))
    assert len(answers) == 1, sent.calls
    assert refusals(sent.log) == {}

    # The held bodies, sent in full, are read and refused for their signature: the budget is free again.
    for _, writer in held:
        writer.write(b"x")
    held_statuses = []
    for reader, writer in held:
        await writer.drain()
        held_statuses.append(int((await asyncio.wait_for(reader.readline(), 60)).split()[1]))
        writer.close()
    assert Counter(held_statuses) == {401: held_count}
    await until(lambda: budget.held == 0)
    assert refusals(logs.new()) == {401: held_count}


async def test_connections_that_declare_a_body_and_send_none_hold_nothing_and_starve_no_signed_command(
    world: SlackHarness, logs: LogTap
) -> None:
    """The diff review: connections each declaring a small body (64 KiB) and sending not one byte of
    it had reserved the whole budget between them, at no cost to the sender, and a signed command
    was refused until they timed out. Only bytes received are held now."""
    port = world.slack.client.port
    assert port is not None
    budget = budget_of(world)
    count = budget.limit // budget.small
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    try:
        for _, writer in held:
            writer.write(forged_head(length=budget.small))  # headers only: no byte of the body
            await writer.drain()
        sent, _ = await send_command(world, logs, NURSE, "help")
        assert sent.status == 200
        assert budget.held == 0
    finally:
        for _, writer in held:
            writer.close()


async def test_a_small_signed_request_has_room_however_many_large_forged_bodies_are_read(
    world: SlackHarness, logs: LogTap
) -> None:
    """Large bodies (clicks on Signpost's biggest messages) may take only part of the budget; the
    rest is kept for small ones, which every slash command is."""
    budget = budget_of(world)
    assert budget.take(budget.large_limit, budget.small + 1)  # large bodies at their limit
    try:
        assert not budget.take(1, budget.small + 1)
        sent, _ = await send_command(world, logs, NURSE, "help")
        assert sent.status == 200
    finally:
        budget.give(budget.large_limit)
    assert budget.held == 0


@pytest.fixture
async def runner(signpost: Signpost) -> AsyncIterator[web.AppRunner]:
    """Signpost's app behind the runner ``signpost run`` uses, on loopback."""
    served = signpost_web.runner(create_app(signpost, load_settings()))
    await served.setup()
    try:
        await web.TCPSite(served, "127.0.0.1", 0).start()
        yield served
    finally:
        await served.cleanup()


async def test_a_connection_takes_its_body_off_the_socket_a_piece_at_a_time(runner: web.AppRunner) -> None:
    """asyncio reads up to 256 KiB from a socket at once, and aiohttp keeps what was read until its
    flow control pauses the connection: 600 connections each sending a large body (forged, or to a
    path that does not exist) held over 250 MiB between them before any handler looked at one."""
    port = runner.addresses[0][1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(forged_head(length=MAX_BODY))
        await writer.drain()
        assert runner.server is not None
        await until(lambda: len(runner.server.connections) == 1 if runner.server else False)
        [connection] = runner.server.connections
        assert connection.transport is not None
        assert getattr(connection.transport, "max_size", 0) == READ_CHUNK
    finally:
        writer.close()
