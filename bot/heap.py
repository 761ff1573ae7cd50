"""The serving process's heap and Python's cycle collector: a full collection must not hold the loop.

Python's cycle collector walks every object it tracks in a full (generation 2) collection, and the
event loop waits while it does. A serving process holds ~180,000 such objects from start-up alone —
modules, SQLAlchemy's tables and compiled statements, Bolt, aiohttp, the key ring's chains — that
live as long as the process. In an end-to-end run (issue 15) each full collection held every
request for 130–180 ms, about once every ten seconds at 50 enquiries a second: most of the p99.

So once the server is ready to listen, and before it accepts a request, start-up's objects are
collected once and frozen (``gc.freeze``): later collections walk only what was made after. Frozen
objects are still freed when their last reference goes (reference counting); only a reference
cycle among them would outlive its use, and start-up's garbage is collected just before the freeze.
Nothing is frozen again later, so that cost is bounded and paid once.

Every collection's pause is measured (``signpost_gc_pause_seconds``, by generation) so an operator
sees what the collector costs the loop, and how many objects were frozen.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Pause = Callable[[int, float], None]
"""Told each collection's generation and how long it held the process, in seconds. Called inside
the collection: it must take no lock (the code the collection interrupted may hold it)."""

PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
GENERATIONS = (0, 1, 2)


class PauseTally:
    """Collection pauses by generation, counted into ``PAUSE_BUCKETS`` (seconds, upper bounds)
    with plain integers: ``record`` runs inside a collection, so it takes no lock and makes no
    object the collector tracks."""

    def __init__(self) -> None:
        self.counts = {generation: [0] * (len(PAUSE_BUCKETS) + 1) for generation in GENERATIONS}
        self.sums = dict.fromkeys(GENERATIONS, 0.0)
        self.frozen = 0

    def record(self, generation: int, seconds: float) -> None:
        if generation not in self.sums:
            return
        slot = 0
        while slot < len(PAUSE_BUCKETS) and seconds > PAUSE_BUCKETS[slot]:
            slot += 1
        self.counts[generation][slot] += 1
        self.sums[generation] += seconds


def freeze_start_up() -> int:
    """Collect start-up's garbage, then freeze every object left (``gc.freeze``): later
    collections skip them. Returns how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextmanager
def pauses_measured(tell: Pause) -> Iterator[None]:
    """While inside, every cycle collection's pause is told to ``tell`` (one callback on
    ``gc.callbacks``, removed on the way out)."""
    started: list[float] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            tell(int(info["generation"]), time.perf_counter() - started.pop())

    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)
