"""The load generator: signed slash commands over aiohttp, closed loop and open loop.

Every request is a real signed Slack slash command (form body, ``X-Slack-Signature`` over the raw
bytes, as Slack signs it) with its own child reference (or name, date of birth and postcode), its
own ``trigger_id`` and its own ``response_url``; both carry the request id, so the recording fake
Slack API can tell which request a reply belongs to. Bodies are signed before they are sent (a
signature costs a few microseconds; it is not the work being measured).

Closed loop: ``connections`` senders, each sending its next request when the last one was
acknowledged (a flood: the bot acknowledges at once and works after), or when its answer arrived
(users waiting for their answer), for a fixed time. Open loop: requests at a fixed rate whatever the answers do; the
latency of each is measured from its scheduled send time (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from benchmarks.e2e.fake_slack import kind_of
from benchmarks.e2e.register import TEAM, slack_user

SIGNING_SECRET = "bench-signing-secret-not-a-real-one"
BOT_TOKEN = "xoxb-bench-token"


@dataclass(frozen=True, slots=True)
class Shot:
    """One signed request, ready to send."""

    rid: str
    kind: str  # "keyed" or "demographic"
    user: str
    ref: int | None
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Sent:
    shot: Shot
    t_send: float  # monotonic: when it was (scheduled to be) sent
    t_ack: float
    status: int  # HTTP status, 0 when the connection failed
    ack: str  # "empty", "answer", "busy", "code", "placeholder" or "error"


class Shots:
    """Signed requests for a phase: texts taken in turn, users in turn, a fresh request id each."""

    def __init__(self, fake_base: str, rids: Iterator[int], secret: str = SIGNING_SECRET) -> None:
        self.fake_base = fake_base
        self.rids = rids
        self.verifier = SignatureVerifier(secret)

    def make(self, kind: str, text: str, user: int, ref: int | None) -> Shot:
        rid = str(next(self.rids))
        form = {
            "token": "deprecated-verification-token",
            "team_id": TEAM,
            "team_domain": "bench",
            "channel_id": "C0001",
            "channel_name": "safeguarding",
            "user_id": slack_user(user),
            "user_name": "someone",
            "command": "/signpost",
            "text": text,
            "api_app_id": "A0001",
            "response_url": f"{self.fake_base}/response/{rid}",
            "trigger_id": f"{rid}.1700000000.bench{rid}",
        }
        body = urlencode(form)
        ts = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=ts, body=body) or ""
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return Shot(rid, kind, slack_user(user), ref, body.encode(), headers)

    def keyed(self, refs: Iterator[int], users: Sequence[int]) -> Iterator[Shot]:
        for ref, user in zip(refs, itertools.cycle(users)):
            digits = f"{ref:010d}"
            yield self.make("keyed", f"{digits[:3]} {digits[3:6]} {digits[6:]}", user, ref)

    def demographic(self, texts: Iterator[str], users: Sequence[int]) -> Iterator[Shot]:
        for query, user in zip(texts, itertools.cycle(users)):
            yield self.make("demographic", query, user, None)


def ack_kind(status: int, raw: bytes) -> str:
    if status != 200:
        return "error"
    if not raw.strip():
        return "empty"
    try:
        doc = json.loads(raw)
    except ValueError:
        return "answer"  # a plain-text ack body is shown to the user as the answer
    return kind_of(doc)


async def send(session: aiohttp.ClientSession, base: str, shot: Shot, scheduled: float | None = None) -> Sent:
    started = time.monotonic()
    try:
        async with session.post(f"{base}/slack/events", data=shot.body, headers=shot.headers) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, OSError):
        raw, status = b"", 0
    return Sent(shot, started if scheduled is None else scheduled, time.monotonic(), status, ack_kind(status, raw))


def target(bases: Sequence[str], shot: Shot) -> str:
    """The replica a request goes to: round robin by request id (a load balancer's share)."""
    return bases[int(shot.rid) % len(bases)]


async def closed_loop(
    session: aiohttp.ClientSession,
    bases: Sequence[str],
    shots: Iterator[Shot],
    connections: int,
    seconds: float,
    wait_url: str | None = None,
) -> list[Sent]:
    """``connections`` senders for ``seconds``; each sends its next request once the last one was
    acknowledged, or (``wait_url``, the fake's long poll) once its answer arrived: users who read
    the answer before asking again."""
    sent: list[Sent] = []
    deadline = time.monotonic() + seconds

    async def sender() -> None:
        while time.monotonic() < deadline:
            shot = next(shots)
            done = await send(session, target(bases, shot), shot)
            sent.append(done)
            if wait_url is not None and done.ack in ("empty", "placeholder"):
                params = {"timeout": "30", "user": shot.user}
                async with session.get(f"{wait_url}/{shot.rid}", params=params) as response:
                    await response.read()

    await asyncio.gather(*(sender() for _ in range(connections)))
    return sent


async def open_loop(
    session: aiohttp.ClientSession, bases: Sequence[str], shots: Iterator[Shot], rate: float, seconds: float
) -> list[Sent]:
    planned = [next(shots) for _ in range(max(1, round(rate * seconds)))]  # signed before the clock starts
    started = time.monotonic()
    tasks: list[asyncio.Task[Sent]] = []
    for i, shot in enumerate(planned):
        due = started + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(session, target(bases, shot), shot, scheduled=due)))
    return list(await asyncio.gather(*tasks))
