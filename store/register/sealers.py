"""Sealing workers: a few spawned processes, each with a pipe of its own, that fail loudly when one dies.

CPython's ``ProcessPoolExecutor`` shares one result pipe between all its workers, so a worker
killed while writing a result (the OOM killer, an operator's ``kill``) leaves half a message in
it; the pool then waits for the rest for ever and the import hangs instead of failing. Here each
worker has its own duplex pipe whose other end only that worker holds: a worker gone, mid-task or
mid-reply, reads as the end of its pipe, and the call waiting on it raises ``SealerDied``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

_In = TypeVar("_In")
_Out = TypeVar("_Out")

STOP_WAIT = 5.0
"""Seconds an idle worker is given to end on its own when the pool closes, before it is killed."""


class SealerDied(RuntimeError):
    """A sealing worker ended before returning its work: killed, or out of memory."""

    def __init__(self, exitcode: int | None) -> None:
        how = "by a signal" if exitcode is not None and exitcode < 0 else "unexpectedly"
        super().__init__(f"a sealing worker stopped {how} before it returned its work")
        self.exitcode = exitcode


class _Worker:
    def __init__(
        self, process: BaseProcess, pipe: multiprocessing.connection.Connection, initargs: tuple[Any, ...]
    ) -> None:
        self.process, self.pipe = process, pipe
        self.sending, self.receiving = asyncio.Lock(), asyncio.Lock()
        self.owed = 0  # tasks sent and not yet answered
        self.initargs: tuple[Any, ...] | None = initargs  # sent ahead of its first task

    def send(self, task: Any) -> None:
        """In a thread, holding ``sending``: the start-up arguments first, once, then the task."""
        if self.initargs is not None:
            self.pipe.send(self.initargs)
            self.initargs = None
        self.pipe.send(task)


def _serve(
    pipe: multiprocessing.connection.Connection, initializer: Callable[..., None], work: Callable[[Any], Any]
) -> None:
    """A worker's life: ``initializer(*initargs)`` with the first message, then ``work`` on each
    task in order until the pool closes its end of the pipe (or sends ``None``). Ctrl-C is the
    importer's to handle (it ends its workers: ``Sealers.close``), so SIGINT stays ignored here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # already, when started from the main thread
    try:
        initargs = pipe.recv()
    except EOFError:  # closed before any work came
        return
    initializer(*initargs)
    while True:
        try:
            task = pipe.recv()
        except EOFError:  # the pool is closed, or the importer gone
            return
        if task is None:
            return
        try:
            reply: tuple[bool, Any] = (True, work(task))
        except Exception as exc:  # returned to the caller, as an executor would
            reply = (False, exc)
        try:
            pipe.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError):  # an exception that will not pickle
            pipe.send((False, RuntimeError(f"a sealing worker failed ({type(reply[1]).__name__})")))
        except OSError:  # the pool is gone: nobody to answer
            return


def _how_it_ended(process: BaseProcess) -> int | None:
    """A dead worker's exit code (negative: the signal), read without reaping it: only ``close``,
    on the event loop's thread, reaps (two threads reaping one child race, and one of them loses
    track of it)."""
    deadline = time.monotonic() + STOP_WAIT
    while True:
        try:
            ended = os.waitid(os.P_PID, process.pid or 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped
            return process.exitcode
        if ended is not None:
            return -ended.si_status if ended.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else ended.si_status
        if time.monotonic() > deadline:  # its pipe is gone, yet it still runs
            return None
        time.sleep(0.01)  # its files close a moment before it can be waited for


class Sealers(Generic[_In, _Out]):
    """``count`` spawned workers running ``work``; ``await sealers.run(task)`` hands a task to the
    next worker in turn and returns its result, or raises what ``work`` raised, or ``SealerDied``.

    Tasks given to one worker are answered in the order given. The caller bounds what is in
    flight (the importer keeps one task a worker, plus one)."""

    def __init__(
        self, count: int, work: Callable[[_In], _Out], initializer: Callable[..., None], initargs: tuple[Any, ...]
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with driver threads
        self._workers: list[_Worker] = []
        self._turn = 0
        # Ctrl-C reaches every process of the terminal's group. A worker that died of it while
        # starting, given the term keys as its start-up arguments (more than a pipe holds), left
        # this process writing them to nobody for ever. Now they go through the worker's own pipe
        # with its first task, so starting it writes only a few kilobytes and never waits for it;
        # and it is started while SIGINT is ignored, so it ignores Ctrl-C for good (an ignored
        # signal stays ignored across exec, and Python then installs no handler). A Ctrl-C in the
        # milliseconds of the fork and exec is lost; the next one stops the import.
        # (Only the main thread may set a handler: an event loop run elsewhere leaves it be.)
        main = threading.current_thread() is threading.main_thread()
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            for _ in range(count):
                mine, theirs = context.Pipe(duplex=True)
                process = context.Process(
                    target=_serve, args=(theirs, initializer, work), name="signpost-sealer", daemon=True
                )
                process.start()
                theirs.close()  # only the worker holds its end: when it dies, this pipe ends
                self._workers.append(_Worker(process, mine, initargs))
        except BaseException:
            self.close()
            raise
        finally:
            if main:
                signal.signal(signal.SIGINT, handler)

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid or 0 for worker in self._workers]

    async def run(self, task: _In) -> _Out:
        worker = self._workers[self._turn]
        self._turn = (self._turn + 1) % len(self._workers)
        worker.owed += 1
        try:
            async with worker.sending:
                await asyncio.to_thread(self._exchange, worker, worker.send, task)
            async with worker.receiving:  # queued before any later task's: answers come in order
                ok, value = await asyncio.to_thread(self._exchange, worker, worker.pipe.recv)
        finally:
            worker.owed -= 1
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    @staticmethod
    def _exchange(worker: _Worker, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except (EOFError, OSError):  # its end of the pipe is gone: so is the worker
            raise SealerDied(_how_it_ended(worker.process)) from None

    def close(self) -> None:
        """End every worker: idle ones on their own, busy ones (an import that failed) at once.
        Killing a busy worker also ends any thread still waiting on its pipe."""
        for worker in self._workers:
            if worker.owed and worker.process.is_alive():
                worker.process.kill()
        for worker in self._workers:
            if not worker.owed:  # else a thread may still be reading it: closed when that ends
                worker.pipe.close()  # an idle worker's read sees the end of its pipe
            worker.process.join(STOP_WAIT)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self._workers.clear()
