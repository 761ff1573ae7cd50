"""What one "busy" refusal costs the bot: CPU per signed slash command answered "busy".

    python -m benchmarks.busy_refusal [--requests 20000] [--connections 64]

Signpost's one aiohttp application with the Slack front end serves on loopback in this process,
draining (so every command is refused "busy"); a child process sends signed slash commands as
fast as it can on ``--connections`` connections. The server's CPU (this process's, the client's
is apart) is divided by the requests answered, for two paths in the same run:

- ``before_bolt``: the refusal as it is now, straight after the signature check (bot/slack/front.py
  ``busy_answer``);
- ``through_bolt``: the same refusal given by Bolt's listener after its full pipeline (the way
  it was before), by switching the early refusal off on this instance only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.admission import BUSY_TEXT
from bot.app import build
from bot.config import load_settings
from bot.slack.front import SLACK_KEY, add_slack
from bot.web import create_app
from handlers.clock import SystemClock
from store.db import Database
from store.keys.crypto import KeyRing

SECRET = "benchmark-signing-secret"

CLIENT = r"""
import asyncio, hashlib, hmac, json, sys, time
from urllib.parse import urlencode
import aiohttp

url, secret, total, connections = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bodies = []
for i in range(256):
    body = urlencode({"team_id": "T0001", "user_id": f"U{i:05d}", "command": "/signpost", "text": "1234567890",
                      "response_url": "https://hooks.slack.com/commands/T0001/1/x", "trigger_id": f"{i}.1.x"})
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    bodies.append((body.encode(), {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
                                   "Content-Type": "application/x-www-form-urlencoded"}))

async def main():
    left = [total]
    busy = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def sender(k):
            while left[0] > 0:
                left[0] -= 1
                body, headers = bodies[left[0] % len(bodies)]
                async with session.post(url, data=body, headers=headers) as response:
                    busy[0] += (await response.json()).get("text") == sys.argv[5]
        t0 = time.monotonic()
        await asyncio.gather(*(sender(k) for k in range(connections)))
        print(json.dumps({"busy": busy[0], "seconds": time.monotonic() - t0}))

asyncio.run(main())
"""


async def measure(url: str, requests: int, connections: int) -> dict[str, Any]:
    cpu0 = time.process_time()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, url, SECRET, str(requests), str(connections), BUSY_TEXT,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await child.communicate()
    cpu = time.process_time() - cpu0
    sent: dict[str, Any] = json.loads(out)
    return {
        "requests": requests,
        "answered_busy": sent["busy"],
        "per_s": round(requests / sent["seconds"]),
        "server_cpu_ms_per_request": round(cpu * 1000 / requests, 3),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="signpost-busy-"))
    db = await Database.open(f"sqlite+aiosqlite:///{folder / 'busy.db'}")
    signpost = build(db, KeyRing.generate(), SystemClock())

    # Bolt authorises a request (auth.test, cached) before its listener runs: a minimal fake Web API.
    async def auth_test(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "user_id": "UBOT0001", "team_id": "T0001", "bot_id": "B0001"})

    fake = web.Application()
    fake.router.add_post("/api/auth.test", auth_test)
    fake_runner = web.AppRunner(fake, access_log=None)
    await fake_runner.setup()
    fake_site = web.TCPSite(fake_runner, "127.0.0.1", 0)
    await fake_site.start()
    fake_port = fake_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = load_settings(
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN="xoxb-benchmark",
        SIGNPOST_SLACK_API_URL=f"http://127.0.0.1:{fake_port}/api/",
    )
    app = create_app(signpost, settings, [add_slack])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/slack/events"
    front = app[SLACK_KEY]
    await front.admission.drain(0)  # refuse everything from here on
    results: dict[str, Any] = {}
    try:
        await measure(url, 2000, args.connections)  # warm
        results["before_bolt"] = await measure(url, args.requests, args.connections)
        front.busy_answer = lambda body: None  # type: ignore[method-assign]  # the path before: through Bolt
        await measure(url, 2000, args.connections)
        results["through_bolt"] = await measure(url, args.requests, args.connections)
    finally:
        await runner.cleanup()
        await fake_runner.cleanup()
        await signpost.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
