"""`signpost run --workers N`: N worker processes serving the same app on one port (SO_REUSEPORT).

The supervisor opens the store once before any worker starts (it creates the key file if there is
none and migrates, unless SIGNPOST_MIGRATE_ON_START=0, in which case it refuses a database behind
this version), then starts N copies of `signpost run` that each listen on the same address with
SO_REUSEPORT, so the kernel spreads connections between them. Each worker is a whole replica: its
own pool, admission limit, audit writer and scheduler (the scheduler claims its runs in the
database, so replicas run each task once).

SIGTERM or SIGINT is passed on to every worker; each drains as a lone `signpost run` does and the
supervisor exits with the worst of their exit codes (0 all drained, 1 some work left unanswered).
A worker that exits on its own is not restarted here: the supervisor logs one line, stops the
others (draining them) and exits 1, so the orchestrator (systemd, Kubernetes, Docker) restarts
the whole unit with its own backoff and its own record of the restart.

Only PostgreSQL is served by more than one worker: SQLite has a single writer, every answered
enquiry writes its audit event, and the group commit that batches those writes works within one
process, so more processes would queue on SQLite's write lock instead of adding capacity.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import structlog

from bot.cli.common import CommandFailed, opened
from bot.config import Settings

log = structlog.get_logger("signpost.supervise")

# Beyond the workers' own drain limit, how long to wait for them to exit before killing them.
EXIT_GRACE_SECONDS = 15.0


def refusal(settings: Settings, workers: int, has_front_ends: bool) -> str | None:
    """Why this configuration cannot run ``workers`` processes (one line), or None when it can."""
    if workers <= 1:
        return None
    if not has_front_ends:
        return "--workers applies to the HTTP front ends; the console is one process (no Slack or Teams is configured)"
    if settings.slack_app_token is not None:
        return (
            "--workers needs Slack's HTTP mode: Socket Mode events come over Signpost's own connection to "
            "Slack, not the shared port, so run it as one process (or unset SLACK_APP_TOKEN to serve "
            "/slack/events from several workers)"
        )
    if settings.database_url.startswith("sqlite"):
        return (
            "--workers needs PostgreSQL: SQLite has one writer and every answer writes its audit event, "
            "so run one process on SQLite (PostgreSQL is the scale-out store)"
        )
    return None


async def supervise(settings: Settings, workers: int) -> int:
    """Prepare the store once, run ``workers`` workers until a signal or a worker's exit; the exit code."""
    async with opened(settings, create=True):  # the key file and the schema, once, before any worker starts
        pass
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    env = {**os.environ, "SIGNPOST_MIGRATE_ON_START": "0"}  # migrated above; workers only check
    command = [sys.executable, "-m", "bot", "run", "--host", settings.host, "--port", str(settings.port)]
    procs: list[asyncio.subprocess.Process] = []
    try:
        for index in range(workers):
            procs.append(await asyncio.create_subprocess_exec(*command, "--worker-index", str(index), env=env))
        log.info(
            "workers_started", workers=workers, pids=[p.pid for p in procs], host=settings.host, port=settings.port
        )
        waits = {asyncio.ensure_future(p.wait()): p for p in procs}
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopping, *waits], return_when=asyncio.FIRST_COMPLETED)
        died = [waits[task] for task in done if task in waits]
        for proc in died:
            log.error("worker_exited", pid=proc.pid, exit_code=proc.returncode, restart="no: stopping every worker")
        if not stopping.done():
            stopping.cancel()
        log.info("stopping_workers", workers=sum(1 for p in procs if p.returncode is None))
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(settings.drain_seconds + EXIT_GRACE_SECONDS):
                codes = await asyncio.gather(*(p.wait() for p in procs))
        except TimeoutError:
            log.error("workers_killed", after_seconds=settings.drain_seconds + EXIT_GRACE_SECONDS)
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
            await asyncio.gather(*(p.wait() for p in procs))
            return 1
        if died:  # its own code when it refused to start (2: one line on stderr), else 1
            return max(1, *(p.returncode or 1 for p in died))
        worst = max(codes)
        log.info("workers_stopped", exit_codes=codes)
        return 1 if worst else 0
    finally:
        for proc in procs:  # an error above: no worker outlives the supervisor
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)


def refuse(settings: Settings, workers: int, has_front_ends: bool) -> None:
    """CommandFailed (one line, exit 2) when ``workers`` processes cannot serve this configuration."""
    reason = refusal(settings, workers, has_front_ends)
    if reason is not None:
        raise CommandFailed(reason)
