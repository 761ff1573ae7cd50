"""The sealing workers' pool: answers in order, a worker's error returned, and a worker that dies
— mid-task, mid-reply or idle — fails the call at once instead of leaving the import waiting for
ever (CPython's ProcessPoolExecutor waits for the rest of a half-written reply)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import struct

import pytest

from store.register.sealers import SealerDied, Sealers

HANG_GUARD = 120  # seconds: a hang fails the test instead of the whole run; a pass takes < 1 s


def nothing_to_set_up() -> None:
    pass


def square(n: int) -> int:
    return n * n


def refuse(n: int) -> int:
    raise ValueError(f"no {n}")


def die(_: int) -> int:
    os._exit(9)


def half_a_reply(_: int) -> int:
    """Write the first bytes of a long reply to the pool, as a worker killed while writing one would."""
    (pipe,) = [o for o in gc.get_objects() if isinstance(o, multiprocessing.connection.Connection)]
    os.write(pipe.fileno(), struct.pack("!i", 10_000_000) + b"the first bytes of a long reply")
    os._exit(9)


def wait_to_be_killed(_: int) -> int:
    signal.pause()
    return 0


def pool(work: object, count: int = 2) -> Sealers[int, int]:
    return Sealers(count, work, nothing_to_set_up, ())  # type: ignore[arg-type]


async def test_every_task_is_answered_in_the_order_given() -> None:
    sealers = pool(square)
    try:
        answers = await asyncio.wait_for(asyncio.gather(*(sealers.run(n) for n in range(40))), HANG_GUARD)
    finally:
        sealers.close()
    assert answers == [n * n for n in range(40)]


async def test_what_the_work_raises_is_raised_to_the_caller_and_the_worker_goes_on() -> None:
    sealers = pool(refuse, count=1)
    try:
        with pytest.raises(ValueError, match="no 3"):
            await asyncio.wait_for(sealers.run(3), HANG_GUARD)
        with pytest.raises(ValueError, match="no 4"):
            await asyncio.wait_for(sealers.run(4), HANG_GUARD)
    finally:
        sealers.close()


@pytest.mark.parametrize("work", [die, half_a_reply], ids=["mid-task", "mid-reply"])
async def test_a_worker_that_dies_fails_its_call_and_the_pool_closes(work: object) -> None:
    sealers = pool(work)
    pids = sealers.pids
    with pytest.raises(SealerDied, match="stopped") as died:
        await asyncio.wait_for(sealers.run(1), HANG_GUARD)
    assert died.value.exitcode == 9
    sealers.close()
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]


async def test_a_worker_killed_while_others_wait_fails_them_and_close_ends_the_rest() -> None:
    """An import that failed closes the pool with work still in flight: every worker ends, and the
    calls still waiting end too (none is left blocking a thread for ever)."""
    sealers = pool(wait_to_be_killed)
    calls = [asyncio.ensure_future(sealers.run(n)) for n in range(4)]
    await asyncio.sleep(0)  # each call is sent
    os.kill(sealers.pids[0], signal.SIGKILL)
    with pytest.raises(SealerDied, match="by a signal"):
        await asyncio.wait_for(calls[0], HANG_GUARD)
    pids = sealers.pids
    sealers.close()
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]
    outcomes = await asyncio.wait_for(asyncio.gather(*calls[1:], return_exceptions=True), HANG_GUARD)
    assert all(isinstance(outcome, SealerDied) for outcome in outcomes)


async def test_an_idle_pool_closes_without_killing_its_workers() -> None:
    sealers = pool(square)
    assert await asyncio.wait_for(sealers.run(7), HANG_GUARD) == 49
    processes = [p for p in multiprocessing.active_children() if p.pid in sealers.pids]
    sealers.close()
    assert [p.exitcode for p in processes] == [0, 0]


def test_a_pool_started_outside_the_main_thread_works() -> None:
    """Only the main thread may change a signal's handler: a pool started by an event loop in
    another thread leaves the handler be, and still works."""

    async def squares() -> list[int]:
        sealers = pool(square)
        try:
            return await asyncio.wait_for(asyncio.gather(*(sealers.run(n) for n in range(4))), HANG_GUARD)
        finally:
            sealers.close()

    with concurrent.futures.ThreadPoolExecutor(1) as elsewhere:
        assert elsewhere.submit(asyncio.run, squares()).result(timeout=HANG_GUARD) == [0, 1, 4, 9]
