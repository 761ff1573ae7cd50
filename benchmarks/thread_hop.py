"""What one hand-off to a driver's thread costs on this machine: the floor under every SQLite statement.

    python -m benchmarks.thread_hop [--hops 20000]

aiosqlite runs each call on the connection's own thread: the event loop puts it on a queue (waking
the thread), the thread runs it and hands the result back with ``call_soon_threadsafe`` (waking the
loop through its self-pipe). This times exactly that round trip with nothing to run, as aiosqlite
does it, and prints JSON: CPU (user and system) and wall time per hop. On a virtual machine with idle
vCPUs each wake-up can cost an exit to the hypervisor, so the figure depends on the host and on how
busy it is (a busy box wakes nobody from idle): compare it only within one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import threading
import time
from typing import Any


async def _measure(hops: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    calls: queue.SimpleQueue[asyncio.Future[int] | None] = queue.SimpleQueue()

    def worker() -> None:  # aiosqlite's _connection_worker_thread, with nothing to execute
        while (future := calls.get()) is not None:
            loop.call_soon_threadsafe(future.set_result, 1)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    for _ in range(200):  # warm up
        future = loop.create_future()
        calls.put(future)
        await future
    before, wall = os.times(), time.perf_counter()
    for _ in range(hops):
        future = loop.create_future()
        calls.put(future)
        await future
    wall, after = time.perf_counter() - wall, os.times()
    calls.put(None)
    thread.join()
    user, system = after.user - before.user, after.system - before.system
    return {
        "hops": hops,
        "cpu_us_per_hop": round((user + system) / hops * 1e6, 1),
        "user_us_per_hop": round(user / hops * 1e6, 1),
        "system_us_per_hop": round(system / hops * 1e6, 1),
        "wall_us_per_hop": round(wall / hops * 1e6, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hops", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_measure(args.hops)), indent=1))


if __name__ == "__main__":
    main()
