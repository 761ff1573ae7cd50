"""Socket Mode frames slack_sdk drops or ends the link on: a binary frame (Slack sends text) was
dropped, and a frame over aiohttp's 4 MiB closed the WebSocket (1009), both without a log line, so
nobody could tell why a request went unanswered or the link kept dropping. Each is now one line,
nothing of the frame in it, and the link goes on answering (reconnected after the oversized one).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from bot.app import Signpost
from tests.bot.slack.test_socket_mode_link import NURSE, command, envelope, linked, settle
from tests.factories import load_standard
from tests.fakes.slack_api import FakeSlackApi
from tests.hostile.observe import LogTap, identity_in

# Socket Mode frames, dropped or ending the link before any handler: one store shows it (tests/spread.py)
pytestmark = pytest.mark.one_store
CHILD = "Amy Jones 03/04/2014 M1 2AB"


def one_line(log: str) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(lines) == 1, log
    assert "Traceback" not in log and identity_in(log) is None and "Amy" not in log
    return lines[0]


async def test_a_binary_frame_is_dropped_in_one_line_and_the_link_answers_on(
    signpost: Signpost, fake_slack: FakeSlackApi, logs: LogTap
) -> None:
    await load_standard(signpost)
    async with linked(signpost, fake_slack) as app:
        await app.link("P002", NURSE)
        logs.new()
        await fake_slack.sockets[-1].send_bytes(envelope(command(app, CHILD), envelope_id="e-binary").encode())
        await fake_slack.send_frame(envelope(command(app, "help"), envelope_id="e-after"))
        await settle(lambda: any(f.get("envelope_id") == "e-after" for f in fake_slack.frames_back), app)
        assert [f["envelope_id"] for f in fake_slack.frames_back] == ["e-after"]  # the binary one: never acked
        assert len(fake_slack.sockets) == 1
        refused = [json.loads(line) for line in logs.new().splitlines() if '"slack_envelope_refused"' in line]
        assert [(line["reason"], line["acked"]) for line in refused] == [("binary_frame", False)]


async def test_a_frame_too_large_closes_the_link_in_one_line_and_it_reconnects(
    signpost: Signpost, fake_slack: FakeSlackApi, logs: LogTap
) -> None:
    await load_standard(signpost)
    async with linked(signpost, fake_slack) as app:
        await app.link("P002", NURSE)
        logs.new()
        first = fake_slack.sockets[-1]
        with contextlib.suppress(ConnectionError):  # Signpost may close the link before it has all of it
            await first.send_str(envelope(command(app, CHILD + " " + "x" * (5 * 1024 * 1024)), envelope_id="e-big"))
        await fake_slack.wait_until(lambda: len(fake_slack.sockets) > 1, timeout=60)
        assert first.close_code == 1009
        line = one_line(logs.new())
        assert (line["event"], line["code"]) == ("slack_link_closed", 1009)
        await fake_slack.send_frame(envelope(command(app, "help"), envelope_id="e-after"))
        await settle(lambda: any(f.get("envelope_id") == "e-after" for f in fake_slack.frames_back), app)
        assert [f["envelope_id"] for f in fake_slack.frames_back] == ["e-after"]
