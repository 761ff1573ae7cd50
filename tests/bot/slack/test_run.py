"""`signpost run` as an operator starts it: a real process, configured only by environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import select

from bot.admission import BUSY_TEXT
from store.db import Database
from store.tables.audit import AuditEvent
from tests.bot.slack.slack_requests import BOT_TOKEN, SIGNING_SECRET, signed_headers
from tests.fakes.slack_api import FakeSlackApi

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell but PATH and HOME."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'signpost.db'}",
        "SIGNPOST_KEY_FILE": str(tmp_path / "signpost.key"),
        "SIGNPOST_LOG_FORMAT": "json",
    }


async def start_slack_server(
    tmp_path: Path, fake_slack: FakeSlackApi, **extra_env: str
) -> tuple[str, asyncio.subprocess.Process]:
    """`signpost run` in Slack HTTP mode as a real process on a free loopback port, once healthy."""
    port = free_port()
    env = {
        **base_env(tmp_path),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SIGNPOST_SLACK_API_URL": fake_slack.api_url,
        "SIGNPOST_HOST": "127.0.0.1",
        "SIGNPOST_PORT": "1",  # overridden by --port below, which must win
        **extra_env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, process)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return base, process


@pytest.fixture
async def served(tmp_path: Path, fake_slack: FakeSlackApi) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    base, process = await start_slack_server(tmp_path, fake_slack)
    try:
        yield base, process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def wait_healthy(base: str, process: asyncio.subprocess.Process, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                _, err = await process.communicate()
                raise AssertionError(f"signpost run exited {process.returncode}: {err.decode()[-2000:]}")
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("signpost run did not become healthy")


async def test_run_with_only_slack_settings_answers_a_signed_help_on_loopback(
    served: tuple[str, asyncio.subprocess.Process], fake_slack: FakeSlackApi
) -> None:
    base, process = served
    form = {
        "team_id": "T0001",
        "user_id": "U0ANYONE",
        "user_name": "someone",
        "command": "/signpost",
        "text": "help",
        "channel_id": "C0001",
        "channel_name": "general",
        "api_app_id": "A0001",
        "response_url": fake_slack.response_url("run"),
        "trigger_id": "1.1700000000.run",
    }
    body = urlencode(form)
    async with aiohttp.ClientSession() as session:
        headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
        async with session.post(f"{base}/slack/events", data=body.encode(), headers=headers) as response:
            assert response.status == 200
        async with session.post(
            f"{base}/slack/events",
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            assert response.status == 401
    [posted] = await fake_slack.wait_for("response_url")
    assert posted.body["response_type"] == "ephemeral" and "who else is working" in posted.body["text"]
    process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    # Without SIGNPOST_PUBLIC_URL, enrolment links would point at the loopback address: said once.
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    [unset] = [line for line in lines if line["event"] == "public_url_unset"]
    assert unset["level"] == "warning"
    assert "SIGNPOST_PUBLIC_URL" in unset["message"] and base in unset["message"]


async def test_run_without_chat_settings_is_the_console(tmp_path: Path) -> None:
    """No Slack or Teams settings: `signpost run` is the console, as whoever --as names."""
    seed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "seed-demo", "--children", "60", cwd=tmp_path, env=base_env(tmp_path)
    )
    assert await asyncio.wait_for(seed.wait(), 120) == 0
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--as",
        "NS-P0001",  # the demo's practitioner: the console starts only as someone in the register
        cwd=tmp_path,
        env=base_env(tmp_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(b"help\n"), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    assert "Signpost console" in out.decode() and "who else is working" in out.decode()


async def test_run_reports_a_port_in_use_in_one_line(tmp_path: Path, fake_slack: FakeSlackApi) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **base_env(tmp_path),
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SIGNPOST_SLACK_API_URL": fake_slack.api_url,
            "SIGNPOST_PORT": str(port),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    said = err.decode().splitlines()[-1]
    assert said.startswith(f"signpost: cannot listen on 127.0.0.1:{port}: "), said
    # A newcomer's second `signpost run` meets this: say what to do, not only what failed.
    assert "already in use" in said and "--port" in said and "SIGNPOST_PORT" in said, said


def command_form(fake_slack: FakeSlackApi, name: str, text: str = "help", user: str = "U0ANYONE") -> dict[str, str]:
    """A slash command as Slack posts it; ``name`` makes its response_url and trigger id unique."""
    return {
        "team_id": "T0001",
        "user_id": user,
        "user_name": "someone",
        "command": "/signpost",
        "text": text,
        "channel_id": "C0001",
        "channel_name": "general",
        "api_app_id": "A0001",
        "response_url": fake_slack.response_url(name),
        "trigger_id": f"1.1700000000.{name}",
    }


async def post_signed(
    session: aiohttp.ClientSession, base: str, form: dict[str, str], **headers: str
) -> tuple[int, str]:
    body = urlencode(form)
    signed = {**signed_headers(body, content_type="application/x-www-form-urlencoded"), **headers}
    async with session.post(f"{base}/slack/events", data=body.encode(), headers=signed) as response:
        return response.status, await response.text()


async def wait_draining(session: aiohttp.ClientSession, base: str) -> None:
    """Until /healthz says 503: the server has taken the SIGTERM and admits nothing new."""
    for _ in range(600):
        async with session.get(f"{base}/healthz") as response:
            if response.status == 503:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the server never started draining")


async def help_events(tmp_path: Path, url: str | None = None) -> int:
    db = Database.connect(url or base_env(tmp_path)["SIGNPOST_DATABASE_URL"])
    try:
        async with db.read() as session:
            found = await session.execute(select(AuditEvent).where(AuditEvent.action == "help"))
            return len(found.scalars().all())
    finally:
        await db.close()


async def test_sigterm_drains_every_acknowledged_command_then_exits_0(tmp_path: Path, fake_slack: FakeSlackApi) -> None:
    """Acknowledged means answered: five commands in flight at SIGTERM are all answered and audited;
    a command arriving while draining is told "busy" rather than acknowledged and dropped."""
    base, process = await start_slack_server(tmp_path, fake_slack, SIGNPOST_PUBLIC_URL="https://signpost.example")
    fake_slack.hold("response_url")
    async with aiohttp.ClientSession() as session:
        for i in range(5):
            assert await post_signed(session, base, command_form(fake_slack, f"drain{i}")) == (200, "")
        await fake_slack.wait_for_waiting("response_url", 5)  # all five acknowledged, none answered
        process.send_signal(signal.SIGTERM)
        await wait_draining(session, base)
        status, text = await post_signed(session, base, command_form(fake_slack, "late"))
    assert status == 200 and json.loads(text) == {"text": BUSY_TEXT, "response_type": "ephemeral"}
    fake_slack.release("response_url")
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    answered = sorted(c.path for c in fake_slack.of("response_url"))
    assert answered == [f"/response/drain{i}" for i in range(5)]
    assert await help_events(tmp_path) == 5
    assert '"drained"' in err.decode() and "slack_tasks_unfinished" not in err.decode()
    assert "public_url_unset" not in err.decode()  # set: enrolment links go to it
    events = [json.loads(line)["event"] for line in err.decode().splitlines() if line.startswith("{")]
    assert [e for e in events if e in ("stopping", "draining", "drained")] == ["stopping", "draining", "drained"]


async def test_work_still_unanswered_at_the_drain_limit_is_reported_and_the_exit_code_says_so(
    tmp_path: Path, fake_slack: FakeSlackApi
) -> None:
    """Slack never takes the answers: after SIGNPOST_DRAIN_SECONDS the log says how many requests
    were left unanswered (truthfully, not count=0) and `signpost run` exits 1."""
    base, process = await start_slack_server(tmp_path, fake_slack, SIGNPOST_DRAIN_SECONDS="1")
    fake_slack.hold("response_url")
    async with aiohttp.ClientSession() as session:
        for i in range(3):
            assert await post_signed(session, base, command_form(fake_slack, f"stuck{i}")) == (200, "")
    await fake_slack.wait_for_waiting("response_url", 3)
    process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    [incomplete] = [line for line in lines if line["event"] == "drain_incomplete"]
    assert incomplete["unfinished"] == 3
    [unfinished] = [line for line in lines if line["event"] == "slack_tasks_unfinished"]
    assert unfinished["count"] == 3


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_socket_mode_without_slack_serves_health_at_once_backs_off_quietly_and_stops_on_the_first_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Socket Mode configured but Slack unreachable (nothing listens at its API URL): /healthz is served
    at once, each failed attempt is one log line (no traceback), and one SIGTERM or Ctrl-C stops it."""
    port, nowhere = free_port(), free_port()
    env = {
        **base_env(tmp_path),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": "xapp-1-test",
        "SIGNPOST_SLACK_API_URL": f"http://127.0.0.1:{nowhere}/api/",
        "SIGNPOST_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    seen: list[bytes] = []

    async def collect(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            seen.append(line)

    readers = [asyncio.create_task(collect(process.stdout)), asyncio.create_task(collect(process.stderr))]

    def attempts() -> list[str]:
        return [line.decode() for line in seen if b"slack_socket_mode_unreachable" in line]

    try:
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", process)  # served while Slack is unreachable
        except AssertionError as failed:  # its output went to the readers: show it
            await asyncio.gather(*readers)
            raise AssertionError(f"{failed}\n{b''.join(seen).decode(errors='replace')[-3000:]}") from None
        for _ in range(1200):  # two failed attempts logged (an attempt at once, one after 1 s): no fixed sleep
            if len(attempts()) >= 2:
                break
            await asyncio.sleep(0.05)
        process.send_signal(stop)
        await asyncio.wait_for(process.wait(), 30)
        await asyncio.gather(*readers)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for reader in readers:
            reader.cancel()
    assert process.returncode == 0
    text = b"".join(seen).decode()
    tries = attempts()
    assert len(tries) >= 2, text[-3000:]
    assert '"attempt": 1' in tries[0] and '"retry_in_s": 1.0' in tries[0]
    assert '"attempt": 2' in tries[1] and '"retry_in_s": 2.0' in tries[1]
    assert "Traceback" not in text and "xapp-1-test" not in text
