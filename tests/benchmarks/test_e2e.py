"""The end-to-end benchmark harness runs and counts right (a tiny register, half a second a phase).

No timing is asserted: only that every request is accounted for, that an answer counts only when
it was delivered and audited, and that the table and the README section are written.

The harness's subject is its counting, not the store: the one-replica run is on SQLite and the
two-worker run on PostgreSQL, so each store's path through the harness (a database file, or a
fresh PostgreSQL database read back and dropped) runs once (tests/spread.py).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from benchmarks.e2e.fake_slack import Recorder
from benchmarks.e2e.load import Sent, Shot
from benchmarks.e2e.run import END, START, FakeSlack, Phase, parse, record, report, run, settle
from bot.admission import BUSY_TEXT
from bot.slack.render import challenge_modal, placeholder_modal, result_modal
from handlers.vocabulary import Challenge, Outcome, Reply
from tests.databases import postgres_url


def shot(rid: str, user: str, ref: int | None) -> Shot:
    return Shot(rid, "keyed" if ref else "demographic", user, ref, b"", {})


def test_an_answer_counts_only_once_delivered_and_audited_and_each_event_vouches_once() -> None:
    sent = [
        Sent(shot("1", "U1", 9000000009), 0.0, 0.01, 200, "empty"),  # delivered, audited
        Sent(shot("2", "U1", 9000000009), 0.1, 0.11, 200, "empty"),  # delivered, same child: no second event
        Sent(shot("3", "U1", 9000000017), 0.2, 0.21, 200, "empty"),  # audited, never delivered
        Sent(shot("4", "U2", 9000000025), 0.3, 0.31, 200, "answer"),  # answered in the ack, audited
        Sent(shot("5", "U2", 9000000033), 0.4, 0.41, 200, "busy"),  # refused: neither
        Sent(shot("6", "U3", None), 0.5, 0.51, 200, "empty"),  # demographic, delivered, audited
        Sent(shot("7", "U4", None), 0.6, 0.61, 200, "empty"),  # demographic, delivered, no event
    ]
    phase = Phase("p", sent, 0.0, 1.0, delivered={"1": 0.05, "2": 0.15, "6": 0.6, "7": 0.7})
    events = [("U1", "9000000009"), ("U1", "9000000017"), ("U2", "9000000025"), ("U3", "")]
    settle([phase], events)
    assert [s.shot.rid for s in phase.answered] == ["1", "4", "6"]
    assert phase.busy() == 1
    assert [round(ms) for ms in phase.latencies_ms()] == [50, 10, 100]


# The smallest run that still has every phase answered and counted (none of it is timed).
TINY = [
    *("--children", "50", "--seconds", "0.5", "--connections", "4", "--flood-connections", "8", "--rate", "20"),
    *("--drain", "60", "--quiet-window", "0.5"),
]


# SQLite only: the harness, not the store, is under test; its PostgreSQL path is the two-worker run's below.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_tiny_run_accounts_for_every_request_and_writes_the_table(backend: str, tmp_path: Path) -> None:
    args = parse([*TINY, "--backend", backend, "--postgres", postgres_url(), "--no-readme"])
    measured = await run(args)
    assert measured.register.children == 50 and measured.register.involvements >= 50
    assert measured.ceiling.sent and all(s.ack == "answer" for s in measured.ceiling.sent)
    [config] = measured.configs
    closed = config.phases["closed"]
    # Four users each waiting for their answer never meet "busy": every request is answered.
    assert closed.sent and len(closed.answered) == len(closed.sent)
    for name in ("flood", "keyed", "demographic"):
        phase = config.phases[name]
        assert len(phase.answered) == len(phase.acknowledged) > 0, name
        assert len(phase.sent) == len(phase.acknowledged) + phase.busy(), name
        assert all(ms > 0 for ms in phase.latencies_ms()), name
    assert closed.cpu_s > 0 and all(mb > 0 for mb in config.rss_mb)
    [(collections, slow, paused)] = config.full_collections  # read from the bot's /metrics
    assert collections >= slow >= 0 and paused >= 0 and (paused > 0) == (collections > 0)
    assert config.methods.get("views.update", 0) + config.in_ack >= len(closed.answered)

    result = report(args, measured)
    table = str(result["table"])
    assert "keyed enquiries answered" in table and "ratio answered / ceiling" in table
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n")
    record(result, readme)
    record(result, readme)  # a second run of the same kind replaces the first
    text = readme.read_text()
    assert text.count(START) == 1 and text.count(END) == 1 and text.count(table) == 1


async def test_the_fake_tells_answers_from_placeholders_busy_and_code_prompts_and_finds_their_request() -> None:
    runner = web.AppRunner(Recorder().application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        client = AsyncWebClient(token="xoxb-bench", base_url=f"{base}/api/")
        opened = await client.views_open(trigger_id="11.1700000000.bench11", view=placeholder_modal())
        await client.views_update(view_id=opened["view"]["id"], view=result_modal(Reply(Outcome.ANSWERED, "Found.")))
        await client.views_open(trigger_id="12.1700000000.bench12", view=placeholder_modal())  # never updated
        await client.views_open(trigger_id="13.1700000000.bench13", view=challenge_modal(Challenge("c1", "Code?")))
        await client.chat_postEphemeral(channel="C0001", user="UBENCH0001", text="Found.")
        await client.chat_postMessage(channel="D0001", text="A notice, not an answer.")
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/response/14", json={"text": BUSY_TEXT}) as response:
                assert response.status == 200
            async with session.post(f"{base}/response/15", json={"text": "Found.", "response_type": "ephemeral"}):
                pass
            async with session.get(f"{base}/_wait/16", params={"user": "UBENCH0001", "timeout": "5"}) as response:
                assert response.status == 200  # the ephemeral answer to that user ends the wait
            fake = FakeSlack(base, session)
            await fake.poll()
            users = {rid: "UBENCH0001" if rid == 16 else "UBENCH0002" for rid in range(11, 17)}
            pending = [Sent(shot(str(rid), user, None), rid, rid, 200, "empty") for rid, user in users.items()]
            fake.attribute(pending)
        # 11 updated with its answer, 15 answered at its response_url, 16 by the ephemeral message
        # (the one request of that user); 12 only ever saw "Checking…", 13 a code prompt, 14 "busy".
        assert sorted(fake.answers) == ["11", "15", "16"]
        assert fake.methods["chat.postMessage"] == 1
    finally:
        await runner.cleanup()


@pytest.mark.postgres_only
async def test_a_tiny_run_with_two_workers_on_one_port_answers_everything_and_counts_both(backend: str) -> None:
    two = ["--replicas", "2", "--workers", "--no-readme"]
    args = parse([*TINY, *two, "--backend", backend, "--postgres", postgres_url()])
    measured = await run(args)
    [config] = measured.configs
    closed = config.phases["closed"]
    assert closed.sent and len(closed.answered) == len(closed.sent)
    assert len(config.rss_mb) == 2 and all(mb > 0 for mb in config.rss_mb)  # both workers, not the supervisor
    assert "PostgreSQL, 2 workers" in str(report(args, measured)["table"])
