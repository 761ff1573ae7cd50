"""The ceiling: a bare Bolt ``AsyncApp`` on aiohttp answering the slash command with a constant.

    python -m benchmarks.e2e.ceiling --port N --api-url http://127.0.0.1:M/api/

Same signing secret, same request verification, same ``process_before_response=True`` as
Signpost's Slack front end; the listener acks with a fixed private text and does nothing else. The
load generator drives it with the very bodies it sends to ``signpost run``.
"""

from __future__ import annotations

import argparse
import logging
import os

from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

CONSTANT = "Checked."


def application(signing_secret: str, token: str, api_url: str) -> web.Application:
    bolt = AsyncApp(
        name="ceiling",
        signing_secret=signing_secret,
        client=AsyncWebClient(token=token, base_url=api_url),
        process_before_response=True,
        logger=logging.getLogger("ceiling"),
    )

    async def constant(ack: AsyncAck) -> None:
        await ack(text=CONSTANT, response_type="ephemeral")

    bolt.command("/signpost")(constant)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app: web.Application = bolt.web_app(path="/slack/events")
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = application(os.environ["SLACK_SIGNING_SECRET"], os.environ["SLACK_BOT_TOKEN"], args.api_url)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
