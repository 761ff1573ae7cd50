"""Reading the console's input without holding up its exit.

``asyncio.to_thread`` reads in the default executor, which ``asyncio.run`` waits for as it ends: after
Ctrl-C the console sat in ``input()`` until Enter was pressed. A read here runs in a daemon thread of
its own that nothing waits for, and the terminal's modes (which readline and getpass change while a
line is being read) are put back when the console ends, since that thread never gets to.
"""

from __future__ import annotations

import asyncio
import termios
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


async def in_daemon_thread(call: Callable[[], T]) -> T:
    """``call()`` in a daemon thread, awaited without blocking the event loop; its exception is raised here."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def deliver(settle: Callable[[], None]) -> None:
        def unless_abandoned() -> None:
            if not done.cancelled():  # cancelled: the console stopped waiting (Ctrl-C)
                settle()

        with suppress(RuntimeError):  # the event loop has closed: the console has ended, nobody wants the line
            loop.call_soon_threadsafe(unless_abandoned)

    def work() -> None:
        try:
            result = call()
        except BaseException as exc:  # the awaiting task decides (EOFError is the end of input)
            error = exc
            deliver(lambda: done.set_exception(error))
        else:
            deliver(lambda: done.set_result(result))

    threading.Thread(target=work, name="console-input", daemon=True).start()
    return await done


@contextmanager
def modes_kept(stream: TextIO) -> Iterator[None]:
    """Put the terminal's modes back as they were on the way out (a no-op when ``stream`` is no terminal)."""
    saved: tuple[int, list[Any]] | None = None
    with suppress(OSError, ValueError, termios.error):  # io.StringIO has no fileno; a pipe has no modes
        fd = stream.fileno()
        saved = fd, termios.tcgetattr(fd)
    try:
        yield
    finally:
        if saved is not None:
            fd, modes = saved
            with suppress(termios.error):  # the terminal went away (hang-up): nothing to restore
                termios.tcsetattr(fd, termios.TCSADRAIN, modes)


def hung_up(stream: TextIO) -> bool:
    """Whether ``stream``'s terminal has gone (a hang-up: its window closed, an SSH connection
    dropped), after which its modes can no longer be read. Ask it only of a stream that was a
    terminal: a pipe's or a file's modes cannot be read either (True); False for what has no
    descriptor at all (io.StringIO)."""
    try:
        termios.tcgetattr(stream.fileno())
    except termios.error:
        return True
    except (OSError, ValueError):  # io.StringIO has no fileno
        return False
    return False
