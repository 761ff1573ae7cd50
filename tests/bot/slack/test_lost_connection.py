"""`signpost run` on PostgreSQL when the server ends every pooled connection (a restart,
``pg_terminate_backend``): the next signed slash command gets its real answer, audited once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.bot.slack.test_crash import answered, lookup_events, prepare, user_of
from tests.bot.slack.test_run import command_form, post_signed, start_slack_server
from tests.databases import terminate_backends
from tests.factories import AMY
from tests.fakes.slack_api import FakeSlackApi

pytestmark = pytest.mark.postgres_only


async def test_a_lookup_after_the_backends_are_killed_is_answered_and_audited_once(
    db_url: str, tmp_path: Path, fake_slack: FakeSlackApi
) -> None:
    """Before: the dead connection failed the command ("something went wrong"), and the audit write
    after it met another dead one, so nothing was audited. Whether the command or a scheduled task
    meets a dead connection first (the scheduler ticks meanwhile), the command is answered."""
    names = ["first", "after"]
    key_file = tmp_path / "lost.key"
    await prepare(db_url, key_file, names)
    # The answer after the ack (placeholder, then views.update): what reached the person is recorded.
    env = {"SIGNPOST_DATABASE_URL": db_url, "SIGNPOST_KEY_FILE": str(key_file), "SIGNPOST_SLACK_ANSWER_BUDGET": "0"}
    base, process = await start_slack_server(tmp_path, fake_slack, **env)
    try:
        async with aiohttp.ClientSession() as session:
            form = command_form(fake_slack, "first", AMY, user_of("first"))
            assert await post_signed(session, base, form) == (200, "")
            await fake_slack.wait_for("views.update", 1, timeout=60)  # the pool holds connections now
            assert await terminate_backends(db_url) >= 1
            form = command_form(fake_slack, "after", AMY, user_of("after"))
            assert await post_signed(session, base, form) == (200, "")
            [*_, late] = await fake_slack.wait_for("views.update", 2, timeout=60)
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    shown = str(late.body["view"])
    assert "Sam Carter" in shown and "went wrong" not in shown, shown[:2000]
    assert answered(fake_slack) == {"first": 1, "after": 1}
    assert await lookup_events(db_url) == {user_of("first"): 1, user_of("after"): 1}
