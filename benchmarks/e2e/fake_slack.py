"""A lean recording fake of Slack's Web API and response URLs for the end-to-end benchmark.

It runs as a process of its own (``python -m benchmarks.e2e.fake_slack --port N``), so that its
work is not charged to the load generator's event loop, and records for every call only what the
benchmark counts: the request it belongs to, what kind of reply it is, and when it arrived
(``time.monotonic()``, the system-wide CLOCK_MONOTONIC the load generator reads too).

The request id travels in what Slack itself would echo: the first field of the ``trigger_id``
(``views.open``), the path of the ``response_url``, and for ``views.update`` the view id this fake
handed out when that view was opened; ``chat.postEphemeral`` names only its user.
``GET /_records?since=N`` returns the records from the N-th on; ``GET /_wait/RID?user=U`` waits
until request RID's answer (or an ephemeral answer to U) has arrived: a closed loop on the answer.
It answers every call ``ok`` with the few fields Bolt and Signpost read (as tests/fakes/slack_api.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from typing import Any

from aiohttp import web

from bot.admission import BUSY_TEXT
from bot.slack.render import CODE_CALLBACK, ENTER_CODE, PLACEHOLDER_TEXT

ENTER_CODE_MARK = json.dumps(ENTER_CODE)  # the code fallback button's action id, as JSON text


def kind_of(doc: Any) -> str:
    """What a delivered reply is: the answer, or a placeholder, a code prompt, "busy"."""
    raw = json.dumps(doc, ensure_ascii=False)
    if PLACEHOLDER_TEXT in raw:
        return "placeholder"
    if BUSY_TEXT in raw:
        return "busy"
    if isinstance(doc, dict) and (doc.get("callback_id") == CODE_CALLBACK or ENTER_CODE_MARK in raw):
        return "code"
    return "answer"


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, float, str]] = []  # (method, request id, monotonic, kind)
        self.methods: Counter[str] = Counter()
        self.view_owner: dict[str, str] = {}
        self.answered: set[str] = set()
        self.ephemeral: Counter[str] = Counter()  # answers by chat.postEphemeral, per user
        self.claimed: Counter[str] = Counter()  # … of which a waiter has taken
        self.changed = asyncio.Condition()
        self._ids = itertools.count(1)

    def record(self, method: str, rid: str, kind: str) -> None:
        self.records.append((method, rid, time.monotonic(), kind))
        if kind == "answer" and rid.startswith("@"):
            self.ephemeral[rid[1:]] += 1
        elif kind == "answer" and rid:
            self.answered.add(rid)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, request: web.Request) -> web.Response:
        """Long poll: answers once request ``rid``'s answer has arrived, or an ephemeral message
        to its ``user`` that no other waiter took (or after ``timeout`` seconds)."""
        rid, user = request.match_info["rid"], request.query.get("user", "")

        def arrived() -> bool:
            if rid in self.answered:
                return True
            if user and self.ephemeral[user] > self.claimed[user]:
                self.claimed[user] += 1
                return True
            return False

        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(arrived), float(request.query.get("timeout", "30")))
        return web.json_response({"answered": rid in self.answered})

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.methods[method] += 1
        body = await _body(request)
        n = next(self._ids)
        answer: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            answer.update(user_id="UBOT0001", bot_id="B0001", team_id="T0001", team="Bench", url="https://b.example/")
        elif method in ("views.open", "views.update", "views.push"):
            view = body.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            if method == "views.update":
                rid = self.view_owner.get(str(body.get("view_id")), "")
                view_id = str(body.get("view_id"))
            else:
                rid = str(body.get("trigger_id", "")).split(".", 1)[0]
                view_id = f"V{n:08d}"
                self.view_owner[view_id] = rid
            self.record(method, rid, kind_of(view))
            answer["view"] = {"id": view_id, "hash": f"h{n}"}
        elif method in ("chat.postEphemeral", "chat.postMessage"):
            # An ephemeral answer names its user, not its request: told apart by user (the load
            # generator matches them to that user's requests in order). A message is a notice.
            if method == "chat.postEphemeral":
                self.record(method, "@" + str(body.get("user", "")), kind_of(body))
            else:
                self.record(method, "", "notice")
            answer.update(channel="D00000", ts=f"1700000000.{n:06d}", message_ts=f"1700000000.{n:06d}")
        elif method == "conversations.open":
            answer["channel"] = {"id": f"D{n:05d}"}
        elif method == "users.info":
            answer["user"] = {"id": str(body.get("user", "")), "profile": {}}
        return web.json_response(answer)

    async def response_url(self, request: web.Request) -> web.Response:
        self.methods["response_url"] += 1
        self.record("response_url", request.match_info["rid"], kind_of(await _body(request)))
        return web.Response(text="ok")

    async def dump(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response({"records": self.records[since:], "methods": dict(self.methods)})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def application(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024**2)
        app.router.add_post("/api/{method}", self.api)
        app.router.add_get("/api/{method}", self.api)
        app.router.add_post("/response/{rid}", self.response_url)
        app.router.add_get("/_records", self.dump)
        app.router.add_get("/_wait/{rid}", self.wait)
        app.router.add_get("/healthz", self.healthz)
        return app


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        doc = await request.json()
        return doc if isinstance(doc, dict) else {"_": doc}
    form = await request.post()
    return {key: str(value) for key, value in [*request.query.items(), *form.items()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(Recorder().application(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
