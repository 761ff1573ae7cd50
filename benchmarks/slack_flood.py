"""A flood of forged Slack requests against a real `signpost run` (Slack HTTP mode, a fake Slack Web
API on loopback): N bodies of 1 MiB at once, each with well-formed signature headers and a current
timestamp but a wrong signature, so only the body can show it is forged. Reports the bot process's
RSS before, at its peak and after, how each forged request was answered, and how long a correctly
signed `help` sent during the flood took.

    python -m benchmarks.slack_flood [N]      (default 600)

Uses the tests' harness (tests/bot/slack): a fresh store and key file in a temporary folder.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from tests.bot.slack.slack_requests import signed_headers
from tests.bot.slack.test_run import start_slack_server
from tests.fakes.slack_api import FakeSlackApi, running_fake_slack

BODY = b"a=" + b"x" * (1024 * 1024 - 10)
FORM = "application/x-www-form-urlencoded"


def rss_mib(pid: int, key: str = "VmRSS") -> int:
    """A field of /proc/PID/status, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) // 1024
    raise LookupError(key)


async def forged(session: aiohttp.ClientSession, url: str) -> str:
    headers = {
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
        "Content-Type": FORM,
    }
    try:
        async with session.post(url, data=BODY, headers=headers) as response:
            await response.read()
            return str(response.status)
    except aiohttp.ClientError as error:  # the server may answer before the body is all sent
        return type(error).__name__


async def signed_help(session: aiohttp.ClientSession, url: str, fake: FakeSlackApi) -> tuple[int, float]:
    form = {
        "team_id": "T0001",
        "user_id": "U0ANY",
        "command": "/signpost",
        "text": "help",
        "response_url": fake.response_url(),
        "trigger_id": "1.2.3",
        "channel_id": "C1",
        "user_name": "x",
    }
    body = urlencode(form)
    started = time.perf_counter()
    async with session.post(url, data=body, headers=signed_headers(body, content_type=FORM)) as response:
        await response.read()
        return response.status, time.perf_counter() - started


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with running_fake_slack() as fake:
            base, process = await start_slack_server(Path(folder), fake)
            url = base + "/slack/events"
            try:
                print(f"RSS at start: {rss_mib(process.pid)} MiB")
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                    print(f"signed help before the flood: {await signed_help(session, url, fake)}")
                    peak = 0

                    async def watch() -> None:
                        nonlocal peak
                        while True:
                            peak = max(peak, rss_mib(process.pid))
                            await asyncio.sleep(0.02)

                    watcher = asyncio.create_task(watch())
                    started = time.perf_counter()
                    flood = [asyncio.create_task(forged(session, url)) for _ in range(count)]
                    await asyncio.sleep(0.2)
                    during = await signed_help(session, url, fake)
                    answers = Counter(await asyncio.gather(*flood))
                    watcher.cancel()
                    print(f"{count} forged bodies answered {dict(answers)} in {time.perf_counter() - started:.2f} s")
                    print(f"signed help during the flood: status {during[0]}, {during[1]:.2f} s")
                    print(f"RSS peak {peak} MiB, high-water {rss_mib(process.pid, 'VmHWM')} MiB")
                    await asyncio.sleep(5)
                    print(f"RSS 5 s after: {rss_mib(process.pid)} MiB")
            finally:
                process.terminate()
                await process.communicate()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 600))
