"""Time is injected everywhere, so tests can freeze and move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from handlers.vocabulary import UK


def waited(since: datetime, now: datetime) -> str:
    """How long something has waited, to the minute: "4 min", "2 h 5 min", "1 d 3 h"."""
    start = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    end = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    minutes = max(0, int((end - start) // timedelta(minutes=1)))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def uk_time(moment: datetime) -> str:
    """A UTC instant as a person in the UK reads it, with the zone that makes it unambiguous:
    ``02/11/2026 09:00 GMT``, ``01/07/2026 10:00 BST`` (the repeated hour in October included).

    Stored times are UTC; a naive one (SQLite returns them so) is read as UTC.
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    local = aware.astimezone(UK)
    return f"{local:%d/%m/%Y %H:%M} {local.tzname()}"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until moved."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment
