"""`signpost run --workers N` as an operator starts it: a supervisor and N real worker processes
sharing one loopback port, real signed Slack requests, a shared PostgreSQL store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.bot.slack.slack_requests import BOT_TOKEN, SIGNING_SECRET
from tests.bot.slack.test_run import base_env, command_form, free_port, help_events, post_signed, wait_healthy
from tests.fakes.slack_api import FakeSlackApi


def slack_env(tmp_path: Path, fake_slack: FakeSlackApi, **extra: str) -> dict[str, str]:
    return {
        **base_env(tmp_path),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SIGNPOST_SLACK_API_URL": fake_slack.api_url,
        **extra,
    }


async def run_signpost(env: dict[str, str], cwd: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        *args,
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own process group: a failing test kills the workers with it
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def kill_all(process: asyncio.subprocess.Process) -> None:
    """After a failure: the supervisor and every worker (its process group), so that no worker keeps
    the pipes open and ``wait`` returns."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await asyncio.wait_for(process.wait(), 30)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def pids_answering(base: str, want: int) -> set[int]:
    """The process ids /healthz reports over fresh connections, until ``want`` different ones answer."""
    seen: set[int] = set()
    connector = aiohttp.TCPConnector(force_close=True)  # a new connection, so the kernel picks again
    # A worker may still be starting when the first answers (a loaded machine): keep asking, for
    # up to a generous deadline rather than a count of tries.
    deadline = asyncio.get_running_loop().time() + 120
    async with aiohttp.ClientSession(connector=connector) as session:
        while len(seen) < want and asyncio.get_running_loop().time() < deadline:
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
                seen.add((await response.json())["pid"])
            await asyncio.sleep(0.02)
    return seen


@pytest.mark.postgres_only
async def test_two_workers_share_the_port_both_answer_and_one_sigterm_drains_them_all(
    tmp_path: Path, fake_slack: FakeSlackApi, db_url: str
) -> None:
    port = free_port()
    env = slack_env(tmp_path, fake_slack, SIGNPOST_DATABASE_URL=db_url, SIGNPOST_DRAIN_SECONDS="20")
    process = await run_signpost(env, tmp_path, "--port", str(port), "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, process)
        workers = await pids_answering(base, 2)
        assert len(workers) == 2 and process.pid not in workers
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            for i in range(20):
                assert await post_signed(session, base, command_form(fake_slack, f"w{i}")) == (200, "")
        posted = await fake_slack.wait_for("response_url", 20)
        assert all("who else is working" in p.body["text"] for p in posted)
        assert await help_events(tmp_path, db_url) == 20
        assert all(alive(pid) for pid in workers)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            await kill_all(process)
    log = err.decode()
    assert process.returncode == 0, log[-3000:]
    assert not any(alive(pid) for pid in workers)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert sorted(line["worker"] for line in lines if line["event"] == "drained") == [0, 1]
    assert {line["worker"] for line in lines if line["event"] == "listening"} == {0, 1}
    assert [line["event"] for line in lines].count("workers_started") == 1
    assert "Traceback" not in log


@pytest.mark.postgres_only
async def test_a_worker_that_dies_stops_the_rest_and_the_exit_status_says_so(
    tmp_path: Path, fake_slack: FakeSlackApi, db_url: str
) -> None:
    """Nothing is restarted silently: one line names the dead worker, the others drain, exit 1."""
    port = free_port()
    env = slack_env(tmp_path, fake_slack, SIGNPOST_DATABASE_URL=db_url)
    process = await run_signpost(env, tmp_path, "--port", str(port), "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, process)
        first, second = sorted(await pids_answering(base, 2))
        os.kill(first, signal.SIGKILL)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            await kill_all(process)
    assert process.returncode == 1
    assert not alive(second)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    [died] = [line for line in lines if line["event"] == "worker_exited"]
    assert died["pid"] == first and died["exit_code"] == -signal.SIGKILL
    assert len([line for line in lines if line["event"] == "drained"]) == 1  # the survivor, drained


@pytest.mark.postgres_only
async def test_workers_stop_when_their_supervisor_is_killed_outright(
    tmp_path: Path, fake_slack: FakeSlackApi, db_url: str
) -> None:
    """A supervisor killed with SIGKILL cannot forward a signal: its workers notice they were
    orphaned, drain and exit on their own, so nothing keeps serving (or holding the port) unwatched."""
    port = free_port()
    env = slack_env(tmp_path, fake_slack, SIGNPOST_DATABASE_URL=db_url)
    process = await run_signpost(env, tmp_path, "--port", str(port), "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    workers: set[int] = set()
    try:
        await wait_healthy(base, process)
        workers = await pids_answering(base, 2)
        process.kill()  # the supervisor alone
        await asyncio.wait_for(process.wait(), 60)  # the workers' pipes close as they exit
        for _ in range(600):
            if not any(alive(pid) for pid in workers):
                break
            await asyncio.sleep(0.1)
        assert not any(alive(pid) for pid in workers)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.returncode is None:
            await kill_all(process)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({}, "--workers needs PostgreSQL"),  # the SQLite store of base_env
        ({"SLACK_APP_TOKEN": "xapp-1-test"}, "--workers needs Slack's HTTP mode"),
        ({"SLACK_SIGNING_SECRET": "", "SLACK_BOT_TOKEN": ""}, "the console is one process"),
    ],
)
async def test_a_combination_that_cannot_have_workers_is_refused_in_one_line(
    tmp_path: Path, fake_slack: FakeSlackApi, extra: dict[str, str], said: str
) -> None:
    env = {k: v for k, v in slack_env(tmp_path, fake_slack, **extra).items() if v}
    process = await run_signpost(env, tmp_path, "--port", str(free_port()), "--workers", "2")
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert out == b""
    [line] = err.decode().splitlines()
    assert line.startswith("signpost: ") and said in line
    assert "xapp-1-test" not in line
    assert not (tmp_path / "signpost.db").exists()  # refused before the store was opened


async def test_workers_must_be_a_count_or_auto(tmp_path: Path, fake_slack: FakeSlackApi) -> None:
    process = await run_signpost(slack_env(tmp_path, fake_slack), tmp_path, "--workers", "0")
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "argument --workers: not a number of workers: use 1, 2, … or auto" in err.decode()
