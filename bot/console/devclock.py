"""A movable clock for rehearsing time-bound flows in the console (development and tests only).

Enabled only when the console starts with SIGNPOST_DEV_CLOCK=1; then ``:clock +25h`` moves
Signpost's time forward (grants and requests expire as they would a day later). Without the
variable the console refuses ``:clock`` and runs on the system clock; no other front end reads it.

Moving the clock acts on the store for real (retention destroys children, key chains advance,
audit events are future-dated), so the console refuses to start with the variable set unless the
store is a disposable demo store: created by ``seed-demo`` from nothing (store/lifecycle/demo.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from handlers.clock import Clock, uk_time

ENV = "SIGNPOST_DEV_CLOCK"
_STEP = re.compile(r"^\+(\d{1,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
REFUSED = f"':clock' is for development and tests only: start the console with {ENV}=1 to use it."
NOT_DEMO = (
    f"{ENV}=1 refused: this store was not created by 'signpost seed-demo' from an empty store, and the dev "
    "clock would change it for real (destroy children early, advance keys). Unset it, or use a fresh demo store."
)
USAGE = "Usage: :clock +30m, :clock +25h or :clock +2d (moves Signpost's clock forward)"


def enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(ENV, "") == "1"


class DevClock:
    """The wrapped clock plus an offset that only ever grows."""

    def __init__(self, base: Clock) -> None:
        self._base = base
        self.offset = timedelta()

    def now(self) -> datetime:
        return self._base.now() + self.offset


def clock_command(clock: Clock, text: str) -> str:
    """Answer a ':clock ...' line: move a DevClock forward, or refuse on any other clock."""
    if not isinstance(clock, DevClock):
        return REFUSED
    _, _, step = text.partition(" ")
    match = _STEP.match(step.strip())
    if match is None:
        return USAGE
    clock.offset += timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return f"Dev clock moved forward: it is now {uk_time(clock.now())}."
