"""Stamps made by a clock ahead of this one: the one rule for telling them, wherever a row records
a moment (a next run, a grant's start and end, a request's, a link's, a retry's).

A host whose clock was set years on and then put right leaves rows stamped at that clock's date. A
moment further ahead than the longest span that row's kind is ever stamped ahead of its clock, and
``CLOCK_SKEW`` more, was not stamped by a clock that agreed with this one: nothing waits for it.
What it means is the reader's: a permission (a grant, a request, a link) stamped so is not in force
and is closed by its usual expiry; work stamped so (a task's next run, a notice's retry) is due now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")

# More than replicas' clocks ever disagree. Replicas whose clocks differ by more than this judge
# each other's fresh stamps made ahead (that deployment's clocks need putting right).
CLOCK_SKEW = timedelta(hours=1)

NOW = timedelta(0)
"""The span of a start stamp (a grant's ``granted_at``, a request's ``created_at``): made at its
clock's now, so one later than this clock's now and ``CLOCK_SKEW`` was made by a clock ahead."""


def ahead_after(now: datetime, span: timedelta = NOW) -> datetime:
    """A moment stamped at most ``span`` ahead of its clock, later than this, was stamped by a clock
    ahead of ``now``'s."""
    return now + span + CLOCK_SKEW


async def due_then_ahead(read: Callable[[Any, int], Awaitable[list[T]]], due: Any, ahead: Any, limit: int) -> list[T]:
    """The first ``limit`` rows ``read(due, n)`` gives, then those ``read(ahead, n)`` gives (rows
    stamped by a clock ahead, due as well): each through its own index range, where an OR of the
    two would read every open row. The one home of that order for every expiry list and queue."""
    found = await read(due, limit)
    if len(found) < limit:
        found += await read(ahead, limit - len(found))
    return found


def stamped_ahead(stamp: datetime, now: datetime, span: timedelta = NOW) -> bool:
    """Whether ``stamp`` (at most ``span`` ahead of the clock that made it) was made by a clock
    ahead of ``now``'s."""
    return stamp > ahead_after(now, span)
