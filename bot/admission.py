"""Admission control: how much acknowledged work may be in flight, and draining it at shutdown.

A front end asks ``admit()`` before it acknowledges a request: above the limit (or once the server
is stopping) it answers "busy" instead, so nothing is acknowledged that cannot be done. Every piece
of acknowledged work is ``hold()``-ed until it has finished. On SIGTERM ``drain()`` refuses new
work and waits, up to its limit, for what is in flight; what is still unfinished is reported, never
hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import structlog

log = structlog.get_logger("signpost.admission")

BUSY_TEXT = "Signpost is busy, please try again in a moment."
PER_CORE = 32  # requests in flight per CPU core by default (each waits mostly on the database)
MAX_LIMIT = 10_000  # SIGNPOST_MAX_IN_FLIGHT's ceiling (also the pool's size): 32 a core on 312 cores


def default_limit() -> int:
    return min(PER_CORE * (os.cpu_count() or 1), MAX_LIMIT)


class Admission:
    """A count of work in flight, a limit on starting more, and a drain for shutdown."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_busy_log = 0.0

    def admit(self, kind: str) -> bool:
        """Whether a new request may be acknowledged now; if not, one log line with counts only."""
        if not self.draining and self.in_flight < self.limit:
            return True
        self.refused += 1
        now = time.monotonic()
        if now - self._last_busy_log >= 1.0:  # at most one line a second, however hard the flood
            self._last_busy_log = now
            log.warning(
                "busy_refused",
                kind=kind,
                in_flight=self.in_flight,
                limit=self.limit,
                draining=self.draining,
                refused=self.refused,
            )
        return False

    def hold(self) -> None:
        """One more piece of acknowledged work (counted even above the limit: it was admitted)."""
        self.in_flight += 1
        self._idle.clear()

    def release(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    async def drain(self, seconds: float) -> int:
        """Refuse new work, wait up to ``seconds`` for work in flight; returns how much is unfinished."""
        if not self.draining:  # said once: a front end's own clean-up drains again, after the server
            self.draining = True
            log.info("draining", in_flight=self.in_flight, limit_seconds=seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=seconds)
        return self.in_flight
