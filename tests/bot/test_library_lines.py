"""A library's own log line that writes an exception's text into its message (asyncio's "Task
exception was never retrieved", slack_sdk's "Failed to connect (error: {e})") has that text withheld,
as the traceback's is: a driver or the standard library quotes the value it choked on."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from pathlib import Path

import aiosqlite
import pytest

from bot.logging import WITHHELD
from tests.bot.log_stream import logged_at

TYPED = "Amy Jones 03/04/2014"


async def _reads_the_search() -> None:
    int(TYPED)  # ValueError, quoting what was typed


async def test_asyncio_reporting_a_task_nobody_awaited_quotes_nothing_its_exception_said() -> None:
    """asyncio's line names the task with its exception's repr, which quoted what was typed."""
    with logged_at("info") as log:
        task = asyncio.get_running_loop().create_task(_reads_the_search())
        await asyncio.wait({task})
        del task
        gc.collect()  # the task's end reports an exception nobody retrieved
    [line] = [line for line in log.lines() if line["logger"] == "asyncio"]
    assert line["event"].startswith("Task exception was never retrieved") and WITHHELD in line["event"]
    assert "Amy" not in log.text and "03/04" not in log.text


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_library_line_holding_its_exceptions_text_keeps_its_own_words_only(fmt: str) -> None:
    with logged_at("info", fmt) as log:
        try:
            int(TYPED)
        except ValueError as exc:
            logging.getLogger("slack_bolt.signpost").exception(f"Failed to run a listener (error: {exc})")
    said = log.text
    assert "Failed to run a listener (error: " in said and WITHHELD in said
    assert "Amy" not in said and "03/04" not in said


def test_a_library_line_logged_while_handling_an_exception_without_it_holds_none_of_its_text() -> None:
    """slack_sdk logs "Failed to retrieve WSS URL: {e}" inside its except block, with no exc_info."""
    with logged_at("info") as log:
        try:
            int(TYPED)
        except ValueError as exc:
            logging.getLogger("slack_bolt.signpost").error(f"Failed to retrieve WSS URL: {exc}")
        logging.getLogger("slack_bolt.signpost").error("Retrying with Amy")  # no exception handled: as it is
    said = log.text
    assert f"Failed to retrieve WSS URL: {WITHHELD}" in said and "Retrying with Amy" in said
    assert "Amy Jones" not in said and "03/04" not in said


def test_a_short_exception_text_is_withheld_where_it_stands_alone_not_inside_the_lines_words() -> None:
    with logged_at("info") as log:
        try:
            raise RuntimeError("e")
        except RuntimeError:
            logging.getLogger("aiohttp.server").error("Error handling request")
        try:
            raise ValueError("Amy")
        except ValueError as exc:
            logging.getLogger("slack_bolt.signpost").error(f"Failed (error: {exc})")
    said = log.text
    assert '"Error handling request"' in said and f"Failed (error: {WITHHELD})" in said and "Amy" not in said


def _reads(typed: str) -> None:
    int(typed)


class _Reader:
    """A callback with no name of its own: asyncio names it by its repr."""

    def __call__(self, typed: str) -> None:
        int(typed)


@pytest.mark.parametrize(
    ("callback", "named"),
    [
        (_reads, "_reads("),
        (_Reader(), "<tests.bot.test_library_lines._Reader object at "),
    ],
)
async def test_asyncio_reporting_a_callback_that_failed_quotes_none_of_its_arguments(
    callback: Callable[[str], None], named: str
) -> None:
    """asyncio's "Exception in callback" names the callback with its arguments (``reads('Amy Jones
    03/04/2014')``), on the line and again on its ``handle:`` line."""
    with logged_at("info") as log:
        asyncio.get_running_loop().call_soon(callback, TYPED)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    [line] = [line for line in log.lines() if line["logger"] == "asyncio"]
    assert line["event"].startswith(f"Exception in callback {named}") and f"handle: <Handle {named}" in line["event"]
    assert "Amy" not in log.text and "03/04" not in log.text


class _TwoLines:
    """An argument whose repr runs over two lines (a library's object may say itself so)."""

    def __repr__(self) -> str:
        return "<Record Amy\nJones 03/04/2014>"


def _fails(_: object) -> None:
    raise RuntimeError("failed")


async def test_asyncio_reporting_a_callback_quotes_no_argument_whose_repr_runs_over_lines() -> None:
    with logged_at("info") as log:
        asyncio.get_running_loop().call_soon(_fails, _TwoLines())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    [line] = [line for line in log.lines() if line["logger"] == "asyncio"]
    assert line["event"].startswith("Exception in callback _fails(") and "handle: <Handle _fails(" in line["event"]
    assert "Amy" not in log.text and "03/04" not in log.text


async def test_asyncio_debug_reporting_a_slow_callback_quotes_none_of_what_it_carried(tmp_path: Path) -> None:
    """In asyncio's debug mode (``python -X dev``, PYTHONASYNCIODEBUG) a callback slower than
    ``slow_callback_duration`` is a warning naming it with its arguments: aiosqlite's worker hands
    each statement's rows to the loop as ``set_result(future, rows)``, so the rows were quoted."""
    async with aiosqlite.connect(tmp_path / "one.db") as conn:
        await conn.execute("CREATE TABLE child (name TEXT)")
        await conn.execute("INSERT INTO child VALUES (?)", (TYPED,))
        loop = asyncio.get_running_loop()
        was = loop.get_debug(), loop.slow_callback_duration
        with logged_at("info") as log:
            loop.set_debug(True)
            loop.slow_callback_duration = 0  # every callback is "slow": no race with the machine's load
            try:
                rows = await conn.execute_fetchall("SELECT name FROM child")
            finally:
                loop.set_debug(was[0])
                loop.slow_callback_duration = was[1]
    assert list(rows) == [(TYPED,)]
    slow = [line["event"] for line in log.lines() if line["logger"] == "asyncio"]
    assert any(event.startswith("Executing <Handle set_result(") for event in slow), slow
    assert "Amy" not in log.text and "03/04" not in log.text


async def _waits(rows: asyncio.Future[object]) -> object:
    return await rows


def _settle_with_rows(rows: asyncio.Future[object]) -> None:
    rows.set_result([(TYPED,)])


def _settle_with_a_record(rows: asyncio.Future[object]) -> None:
    rows.set_result(_TwoLines())


def _settle_with_error(rows: asyncio.Future[object]) -> None:
    rows.set_exception(ValueError(f"invalid literal for int() with base 10: {TYPED!r}"))


@pytest.mark.parametrize(
    "settle", [_settle_with_rows, _settle_with_a_record, _settle_with_error], ids=["result", "two lines", "exception"]
)
def test_asyncio_reporting_a_task_destroyed_while_pending_quotes_nothing_of_what_it_waited_for(
    settle: Callable[[asyncio.Future[object]], None],
) -> None:
    """A task still waiting when its loop closed (a command ended, a worker stopping) is reported
    with the future it waited for, and that future's repr quoted its result (the rows a driver had
    just handed over: ``wait_for=<Future finished result=[('Amy Jones …',)]>``) or its exception's."""
    with logged_at("info") as log:
        loop = asyncio.new_event_loop()
        rows = loop.create_future()

        task = loop.create_task(_waits(rows))
        loop.run_until_complete(asyncio.sleep(0))  # the task now waits for the rows
        settle(rows)  # the task's wake-up is scheduled, and never runs
        loop.close()
        del task, rows
        gc.collect()
    said = [line["event"] for line in log.lines() if line["logger"] == "asyncio"]
    [destroyed] = [event for event in said if event.startswith("Task was destroyed but it is pending!")]
    assert "wait_for=<Future finished" in destroyed
    assert "Amy" not in log.text and "03/04" not in log.text
