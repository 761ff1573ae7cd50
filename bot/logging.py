"""structlog: console renderer on a TTY, JSON lines otherwise. Never personal data in an event.

Every log line takes one path: structlog's own events and the standard library's (asyncio, aiohttp,
the Slack SDK) meet in one ``logging`` handler whose ``ProcessorFormatter`` renders both, so a JSON
stream holds only JSON lines (a traceback is a field, not loose text). The console sends its log to
a file (``SIGNPOST_LOG_FILE``, mode 0600) so that nothing is mixed into the conversation.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

import structlog

_SIGNPOST_HANDLER = "signpost"  # the root handler this module installs (replaced on reconfiguration)

SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def level_number(name: str | int) -> int:
    """``"warning"`` → ``logging.WARNING``; numbers pass through."""
    return name if isinstance(name, int) else logging.getLevelNamesMapping()[name.upper()]


def configure(fmt: str = "auto", level: str | int = logging.INFO, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr): console renderer on a TTY (or ``fmt="console"``), JSON lines otherwise."""
    out = stream if stream is not None else sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    _install(logging.StreamHandler(out), use_console, level_number(level))


def to_file(path: Path, level: str | int = logging.INFO) -> None:
    """Send every log line to ``path`` as JSON (created mode 0600; it is appended to)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    _install(logging.FileHandler(path, encoding="utf-8"), False, level_number(level))


def _install(handler: logging.Handler, use_console: bool, level: int) -> None:
    renderer: structlog.types.Processor
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=True)
        extra: list[structlog.types.Processor] = []
    else:
        renderer = structlog.processors.JSONRenderer()
        extra = [structlog.processors.dict_tracebacks]
    handler.set_name(_SIGNPOST_HANDLER)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *extra, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _SIGNPOST_HANDLER]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries speak at warning and above unless debug is asked for (the Slack SDK logs every call).
    for noisy in ("slack_sdk", "slack_bolt", "aiohttp.access", "asyncio", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
