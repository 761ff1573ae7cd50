"""Progress on long work, in one place: a bar on a terminal, plain periodic lines otherwise.

The `signpost` sub-commands that can take a while (seed-demo, retention run, match, backup,
keys rotate; import) wrap their work in ``progress``::

    with progress("Re-wrapping keys", unit="key") as bar:
        report = await rotate_keys(ctx, who, on_progress=bar.advance, on_total=bar.set_total)

The convention for the layers below (store/ and handlers/ import neither rich nor bot/): a long
function takes

- ``on_progress: Callable[[int], None] | None = None``, called with how many MORE items are done
  (an increment, typically once per batch; never a running total) — and with 0 when its phase
  begins, if that is well after the command began, so that rates and time left count from there —
  and, where the total is cheap to know,
- ``on_total: Callable[[int], None] | None = None``, called (once, or again if the estimate
  changes) with how many items there are in all; ``bar.set_total`` accepts it at any point.

Both carry counts only. What is shown is the label and unit the command gives here and numbers,
never a name, reference or anything read from a row, so progress holds no personal data. A function
with phases of different units takes one pair per phase (``on_day``, ``on_sealed``…), and the
command opens one ``progress`` per phase (they may be open at once: on a terminal they share one
display).

Some work has steps that run as one statement each and have nothing to count (an import's index
build, say): ``steps`` shows each as it begins and how long it took, and the layer below takes
``on_step: Callable[[str], None]``, called with a fixed step name (never anything read from a row)
as each begins.

Where it goes: always stderr, so stdout stays the command's answer (CSV, JSON, the summary) for
scripts and tests. On a terminal, a rich bar with the count, rate and time left ("nothing to do" in
its place when there is none, as elsewhere). Anywhere else
(a pipe, a file, cron, the tests), plain lines: one each time another tenth of a known total is
done, else at most every ``PLAIN_EVERY`` seconds; then one final line with the count and the
elapsed time, or, when the work fails part way, how far it got (nothing if it had not started).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, TextIO

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_EVERY = 10.0  # seconds between plain lines when no further tenth was reached
BYTES = "byte"  # the unit that is shown as a size (kB, MB…)


def _many(unit: str) -> str:
    return "children" if unit == "child" else unit + "s"


def _amount(count: float, unit: str) -> str:
    """``1,200 rows``, ``1 key``, ``3.4 MB``."""
    if unit == BYTES:
        return decimal(int(count))
    return f"{int(count):,} {unit if int(count) == 1 else _many(unit)}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _rate(count: float, seconds: float, unit: str) -> str:
    per_second = count / seconds if seconds > 0 else 0.0
    if unit == BYTES:
        return f"{decimal(int(per_second))}/s"
    return f"{per_second:,.0f} {_many(unit)}/s"


class Bar:
    """What a command's work reports to: ``advance(n)`` after n more items, ``set_total(n)``."""

    def __init__(self, label: str, total: int | None, unit: str) -> None:
        self.label = label
        self.unit = unit
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def advance(self, n: int = 1) -> None:
        if n == 0 and self.done == 0:  # the work of this phase begins now (after an earlier phase)
            self.started = time.monotonic()
            self._began()
            return
        self.done += n
        self._changed()

    def _began(self) -> None:
        pass

    def set_total(self, total: int) -> None:
        self.total = total
        self._changed()

    def _changed(self) -> None:  # how each display follows the counts
        pass

    def _finish(self, failed: bool) -> None:
        pass

    def summary(self) -> str:
        """The final line: the count and the elapsed time."""
        if self.done == 0 and self.total == 0:
            return f"{self.label}: nothing to do"
        return f"{self.label}: {_amount(self.done, self.unit)} in {_duration(time.monotonic() - self.started)}"


class _PlainBar(Bar):
    """Lines for a log or a pipe: every tenth of the total (or every PLAIN_EVERY seconds), and the end."""

    def __init__(self, label: str, total: int | None, unit: str, out: TextIO, *, end_at_total: bool = True) -> None:
        super().__init__(label, total, unit)
        self._out = out
        self._end_at_total = end_at_total
        self._tenth = 0
        self._last = self.started
        self._closed = False

    def _say(self, line: str) -> None:
        print(line, file=self._out, flush=True)

    def _began(self) -> None:
        self._last = self.started

    def _changed(self) -> None:
        if self._closed:
            return
        now = time.monotonic()
        tenth = min(10, self.done * 10 // self.total) if self.total else 0
        if self._end_at_total and self.unit != BYTES and self.total and self.done >= self.total:
            self._finish(False)  # all done: said now, not when a later phase ends (a size is an estimate)
            return
        if tenth > self._tenth or (self.done and now - self._last >= PLAIN_EVERY):
            self._tenth = max(self._tenth, tenth)
            self._last = now
            self._say(self._line(now - self.started))

    def _line(self, elapsed: float) -> str:
        rate = _rate(self.done, elapsed, self.unit)
        if not self.total:
            return f"{self.label}: {_amount(self.done, self.unit)} so far, {rate}"
        left = ""
        if self.done and elapsed > 0:
            left = f", about {_duration(max(0, self.total - self.done) * elapsed / self.done)} left"
        count = f"{self.done:,}/{_amount(self.total, self.unit)}" if self.unit != BYTES else _amount(self.done, BYTES)
        percent = min(100, self.done * 100 // self.total)
        return f"{self.label}: {count} ({percent}%), {rate}{left}"

    def _finish(self, failed: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if not failed:
            self._say(self.summary())
        elif self.done:
            elapsed = _duration(time.monotonic() - self.started)
            self._say(f"{self.label}: stopped after {_amount(self.done, self.unit)} ({elapsed})")


STEP = "step"  # the unit of a step's task on a terminal: no count and no rate shown


class _Rate(ProgressColumn):
    """Items (or bytes) per second, in the task's unit."""

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == STEP:
            return Text("")
        speed = task.finished_speed or task.speed  # rich's recent rate, once it has two samples
        if speed is None and task.elapsed and task.completed:
            speed = task.completed / task.elapsed  # else the average so far
        if speed is None:
            return Text("")
        unit = str(task.fields.get("unit", ""))
        return Text(_rate(speed, 1.0, unit), style="progress.data.speed")


class _Count(ProgressColumn):
    """``1,200/3,000`` (sizes for bytes; the count alone while the total is unknown); the rate names the unit."""

    def render(self, task: Task) -> Text:
        unit = str(task.fields.get("unit", ""))
        if unit == STEP:
            return Text("")
        if unit == BYTES:
            size = decimal(int(task.completed))
            return Text(size if task.total is None else f"{size}/{decimal(int(task.total))}", style="progress.download")
        if task.total is None:
            return Text(f"{int(task.completed):,}", style="progress.download")
        return Text(f"{int(task.completed):,}/{int(task.total):,}", style="progress.download")


class _RichBar(Bar):
    """A bar in the shared display; hidden while there is nothing to do (an empty 0/0 bar says
    nothing), and replaced at the end by the line a pipe gets, "nothing to do", if that stays so."""

    def __init__(self, label: str, total: int | None, unit: str, display: Progress) -> None:
        super().__init__(label, total, unit)
        self._display = display
        self._task: TaskID = display.add_task(label, total=total, unit=unit, visible=not self._idle())

    def _idle(self) -> bool:
        return self.done == 0 and self.total == 0

    def _changed(self) -> None:
        self._display.update(self._task, completed=self.done, total=self.total, visible=not self._idle())

    def _began(self) -> None:
        self._display.reset(self._task, total=self.total, visible=not self._idle())

    def _finish(self, failed: bool) -> None:
        if not failed and self._idle():
            self._display.remove_task(self._task)
            self._display.console.print(self.summary(), markup=False, highlight=False)
            return
        if not failed and self.total is None:  # a pulsing bar ends full
            self._display.update(self._task, total=max(self.done, 1), completed=max(self.done, 1))
        self._display.stop_task(self._task)


class _Display:
    """The one rich display on the terminal, shared by every progress open at the same time."""

    progress: Progress | None = None
    users = 0
    # Log handlers writing to the display's terminal, and the stream each had before the display.
    moved: ClassVar[list[tuple[logging.StreamHandler[TextIO], TextIO]]] = []


def _logs_above(console: Console, stream: TextIO) -> list[tuple[logging.StreamHandler[TextIO], TextIO]]:
    """Point the log handlers that write to ``stream`` through rich's ``FileProxy``, which prints each
    line above the bars: written straight to the terminal, a log line was drawn into a bar's line."""
    moved = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
            moved.append((handler, handler.stream))
            handler.setStream(FileProxy(console, stream))
    return moved


def _open_display(stream: TextIO) -> Progress:
    if _Display.progress is None:
        console = Console(file=stream, force_terminal=True)
        _Display.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(bar_width=24),
            _Count(),
            TaskProgressColumn(),
            _Rate(),
            TimeRemainingColumn(),
            console=console,
            # stdout is the command's answer (maybe redirected to a file): never taken over.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        _Display.progress.start()
        _Display.moved = _logs_above(console, stream)
    _Display.users += 1
    return _Display.progress


def _close_display() -> None:
    _Display.users -= 1
    if _Display.users == 0 and _Display.progress is not None:
        for handler, stream in _Display.moved:
            handler.setStream(stream)  # flushes what the proxy held first
        _Display.moved = []
        _Display.progress.stop()
        _Display.progress = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


@contextmanager
def progress(
    label: str,
    total: int | None = None,
    unit: str = "item",
    *,
    stream: TextIO | None = None,
    end_at_total: bool = True,
) -> Iterator[Bar]:
    """Show how far ``label``'s work has got on ``stream`` (stderr): a bar on a terminal, plain
    lines elsewhere. ``unit`` is a singular noun (``row``, ``key``, ``child``) or ``"byte"``.

    ``end_at_total=False``: the final line waits for the work to end, for work that can still be
    refused after its count is reached (an import checks involvements after its children)."""
    out = stream if stream is not None else sys.stderr
    terminal = _is_terminal(out)
    bar: Bar = (
        _RichBar(label, total, unit, _open_display(out))
        if terminal
        else _PlainBar(label, total, unit, out, end_at_total=end_at_total)
    )
    if total == 0 and unit != BYTES and isinstance(bar, _PlainBar):
        bar._finish(False)  # said at once: a later phase may end first
    failed = True
    try:
        yield bar
        failed = False
    finally:
        bar._finish(failed)
        if isinstance(bar, _RichBar):
            _close_display()


class Steps:
    """Steps without a count, one after another: ``begin(name)`` ends the one before (timed) and
    shows the next; the last ends when the ``steps`` block does."""

    def __init__(self, label: str, out: TextIO) -> None:
        self._label = label
        self._out = out
        self._display = _open_display(out) if _is_terminal(out) else None
        self._name = ""
        self._task: TaskID | None = None
        self._started = 0.0

    def begin(self, name: str) -> None:
        self._end(failed=False)
        self._name, self._started = name, time.monotonic()
        if self._display is not None:
            self._task = self._display.add_task(f"{self._label}: {name}", total=None, unit=STEP)
        else:
            print(f"{self._label}: {name}", file=self._out, flush=True)

    def _end(self, failed: bool) -> None:
        if not self._name:
            return
        took = _duration(time.monotonic() - self._started)
        if self._display is not None and self._task is not None:
            if not failed:
                self._display.update(self._task, total=1, completed=1)
            self._display.stop_task(self._task)
        else:
            end = f"stopped after {took}" if failed else f"done in {took}"
            print(f"{self._label}: {self._name}: {end}", file=self._out, flush=True)
        self._name, self._task = "", None

    def _close(self, failed: bool) -> None:
        self._end(failed)
        if self._display is not None:
            _close_display()


@contextmanager
def steps(label: str, *, stream: TextIO | None = None) -> Iterator[Steps]:
    """Show ``label``'s count-less steps on ``stream`` (stderr) as they begin and end: a pulsing
    bar each on a terminal, a line as each begins and one with its time as it ends elsewhere."""
    shown = Steps(label, stream if stream is not None else sys.stderr)
    failed = True
    try:
        yield shown
        failed = False
    finally:
        shown._close(failed)
