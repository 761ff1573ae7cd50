"""Signpost's real log output, as the process writes it, for a test: ``bot.logging.configure`` at a
given level onto a string. Every line takes that one path (structlog's events and the standard
library's records from aiohttp, Bolt, the Agents SDK), with the library caps applied, so what is
read back is what an operator's log would hold."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from bot.logging import configure

_TIMESTAMP = re.compile(r'"timestamp": "[0-9T:.Z+-]*"')


class LogStream:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line written so far, parsed (each is one JSON object)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    @property
    def written(self) -> str:
        """The text without each line's timestamp: what a request or a message could have put in
        it. A digit string sought in the whole text is sometimes in the clock's own digits (a
        refused request's "9999" was in "T18:03:46.999989Z", and the test failed by chance)."""
        return _TIMESTAMP.sub('"timestamp": ""', self.text)

    def events(self) -> list[str]:
        return [str(line.get("event")) for line in self.lines()]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@contextmanager
def logged_at(level: str, fmt: str = "json") -> Iterator[LogStream]:
    """Log lines at ``level`` (``SIGNPOST_LOG_LEVEL``) for the block, JSON unless ``fmt`` says
    otherwise ("console"), then back to JSON at info."""
    log = LogStream()
    configure(fmt, level, stream=log.stream)
    try:
        yield log
    finally:
        structlog.reset_defaults()
        configure("json", "info", stream=io.StringIO())
