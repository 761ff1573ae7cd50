"""An exception nothing caught in a thread, or one Python could not raise (a ``__del__``), is one
log line on Signpost's path with its text withheld: Python's defaults print the whole message (a
driver's error quotes the value it choked on) and the object's repr to stderr, outside the log."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from bot.logging import WITHHELD

TYPED = "Amy Jones 03/04/2014"

PROGRAM = textwrap.dedent(
    f"""
    import gc, sys, threading
    from bot.logging import configure

    configure("json", "info", stream=sys.stderr)

    def reads_the_search():
        int({TYPED!r})  # ValueError, quoting what was typed

    thread = threading.Thread(target=reads_the_search, name="worker")
    thread.start()
    thread.join()

    class Holder:
        def __repr__(self):
            return {TYPED!r}

        def __del__(self):
            reads_the_search()

    Holder()
    gc.collect()
    """
)


def test_a_threads_exception_and_an_unraisable_one_are_each_one_log_line_quoting_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout == ""
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON: nothing loose
    events = {line["event"]: line for line in lines}
    assert sorted(events) == ["thread_exception", "unraisable_exception"] and len(lines) == 2
    assert events["thread_exception"]["thread"] == "worker"
    assert events["unraisable_exception"]["ignored_in"] == "Holder.__del__"
    for line in lines:
        [raised] = line["exception"]
        assert raised["exc_type"] == "builtins.ValueError" and raised["exc_value"] == WITHHELD
    assert "Amy" not in done.stderr and "03/04" not in done.stderr


UNWRITABLE = textwrap.dedent(
    f"""
    import logging, sys
    from bot.logging import configure

    configure("json", "info", stream=sys.stderr)
    logging.getLogger("some.library").error("child %d", {TYPED!r})  # %d of a string: cannot be written
    logging.getLogger("some.library").warning("next line")
    """
)


def test_a_line_that_cannot_be_written_says_so_in_one_line_quoting_nothing() -> None:
    """The standard library printed "--- Logging error ---", a traceback and the record's message
    and arguments (the name) to stderr."""
    done = subprocess.run([sys.executable, "-c", UNWRITABLE], capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON: nothing loose
    assert [(line["event"], line["logger"]) for line in lines] == [
        ("log_line_unwritable", "some.library"),
        ("next line", "some.library"),
    ]
    # timed as every other line is, so the gap can be placed in the log
    assert [line["timestamp"][:10] for line in lines] == [lines[1]["timestamp"][:10]] * 2
    assert lines[0]["timestamp"].endswith("Z") and lines[0]["timestamp"] <= lines[1]["timestamp"]
    assert "Amy" not in done.stderr and "03/04" not in done.stderr


OUTLIVED = textwrap.dedent(
    """
    import asyncio, sys, threading
    import aiosqlite
    from bot.logging import configure

    configure("json", sys.argv[1], stream=sys.stderr)
    running, release = threading.Event(), threading.Event()

    def hold() -> int:
        running.set()
        release.wait()
        return 1

    async def start():
        conn = await aiosqlite.connect(":memory:")
        await conn.create_function("hold", 0, hold)
        task = asyncio.ensure_future(conn.execute("SELECT hold()"))
        await asyncio.to_thread(running.wait)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return conn

    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(start())
    loop.close()  # the worker still holds the statement's future, bound to this loop
    release.set()
    conn._thread.join(timeout=60)
    print("joined", not conn._thread.is_alive())
    """
)


def test_aiosqlites_worker_answering_a_closed_loop_is_a_debug_line_not_an_error() -> None:
    """aiosqlite's worker hands its result to a loop already closed (aiosqlite issue 241: a store
    that could not be opened, then the command ended): nothing waited for it. It was one error
    line in the output of a command that had already said what was wrong."""
    quiet = subprocess.run(
        [sys.executable, "-c", OUTLIVED, "info"], capture_output=True, text=True, timeout=120, check=True
    )
    assert quiet.stdout == "joined True\n" and quiet.stderr == ""
    told = subprocess.run(
        [sys.executable, "-c", OUTLIVED, "debug"], capture_output=True, text=True, timeout=120, check=True
    )
    [line] = [json.loads(line) for line in told.stderr.splitlines()]
    assert line["event"] == "driver_thread_outlived_its_loop" and line["level"] == "debug"


WARNED = textwrap.dedent(
    f"""
    import sys, warnings
    from bot.logging import configure

    configure("json", "info", stream=sys.stderr)

    def library_reads(typed):
        warnings.warn(f"could not parse {{typed!r}}", UserWarning)  # as a library's warning may quote its input

    library_reads({TYPED!r})
    """
)


def test_a_librarys_warning_is_one_log_line_saying_what_and_where_quoting_nothing() -> None:
    """Python's default printed "file:line: UserWarning: <message>" and the source line to stderr,
    outside the log: the message whole (SQLAlchemy's identity-map warnings quote a row's key, a
    parser's its input), and a line that is not JSON in a JSON log."""
    done = subprocess.run([sys.executable, "-c", WARNED], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout == ""
    [line] = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON: nothing loose
    assert line["event"] == "library_warning" and line["level"] == "warning"
    assert line["category"] == "builtins.UserWarning" and line["message"] == WITHHELD
    assert line["filename"] == "<string>" and line["lineno"] == 8
    assert "Amy" not in done.stderr and "03/04" not in done.stderr
