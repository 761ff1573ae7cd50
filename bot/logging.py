"""structlog: console renderer on a TTY, JSON lines otherwise. Never personal data in an event.

Every log line takes one path: structlog's own events and the standard library's (asyncio, aiohttp,
the Slack SDK) meet in one ``logging`` handler whose ``ProcessorFormatter`` renders both, so a JSON
stream holds only JSON lines (a traceback is a field, not loose text). The console sends its log to
a file (``SIGNPOST_LOG_FILE``, mode 0600) so that nothing is mixed into the conversation. An
exception nothing caught in a thread, or one Python could not raise, takes the same path too.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import stat
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog

from bot.config import SettingsError

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
    _install(_Stream(out), use_console, level_number(level))


def _iso(created: float) -> str:
    """A record's time as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it, so that every
    line of the log sorts and reads alike."""
    return datetime.fromtimestamp(created, tz=UTC).isoformat().replace("+00:00", "Z")


def _unwritable(stream: TextIO | None, record: logging.LogRecord) -> None:
    """A line that cannot be written (a library's ``log.error("%d", name)``, a renderer that fails)
    is said so in one line of its own, naming its logger: the standard library's ``handleError``
    printed the record's message and arguments whole to stderr, outside the log."""
    if stream is None:
        return
    try:
        line = {
            "event": "log_line_unwritable",
            "logger": record.name,
            "level": record.levelname.lower(),
            "timestamp": _iso(record.created),
        }
        stream.write(json.dumps(line) + "\n")
        stream.flush()
    except Exception:
        pass


class _Stream(logging.StreamHandler[TextIO]):
    def handleError(self, record: logging.LogRecord) -> None:
        _unwritable(self.stream, record)


class _File(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        _unwritable(self.stream, record)

    def emit(self, record: logging.LogRecord) -> None:
        """Once the handler was closed (``logging.shutdown`` at exit), a late line (an unraisable
        exception, a warning) opens the file again by its name: never through a link then either
        (``_open_log``), and a file that cannot be opened so drops the line, as one that cannot be
        written does, rather than raising out of the call that logged it."""
        if self.stream is None:
            try:
                self.stream = _open_log(self.baseFilename)
            except OSError:
                return
        super().emit(record)


PRIVATE = 0o600


def _make_private(fd: int) -> None:
    """Tighten an open log file to 0600. Only a regular file: SIGNPOST_LOG_FILE may name a pipe or
    /dev/null, and making /dev/null 0600 as root would lock every other user out of it."""
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != PRIVATE:
        os.fchmod(fd, PRIVATE)


LOG_FILE_LINK = (
    "SIGNPOST_LOG_FILE {path}: is a symbolic link, which Signpost does not follow (the file it names would be "
    "made 0600 and written to): name the log file itself"
)


def _open_log(path: str | os.PathLike[str]) -> io.TextIOWrapper:
    """The log file open for appending, never through a symbolic link (``O_NOFOLLOW``), made 0600
    or tightened to it (``_make_private``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE)
    try:
        _make_private(fd)
        return open(fd, "a", encoding="utf-8")  # the handler owns it, and closes it
    except BaseException:
        os.close(fd)
        raise


def to_file(path: Path, level: str | int = logging.INFO) -> None:
    """Send every log line to ``path`` as JSON, appended; the file is made mode 0600, or tightened to
    it when found open to others (left by hand or by a umask). Never through a symbolic link, as
    lock files are never opened (``store.files``): a link planted there had the file it named
    tightened and appended to. The file is written through the descriptor checked here."""
    try:
        stream = _open_log(path)
    except OSError as exc:  # a link, a missing folder, a directory, no permission: one line, not a traceback
        if exc.errno == errno.ELOOP:
            raise SettingsError(LOG_FILE_LINK.format(path=path)) from None
        raise SettingsError(f"SIGNPOST_LOG_FILE {path}: cannot write it ({exc.strerror})") from None
    handler = _File(path, encoding="utf-8", delay=True)
    handler.stream = stream
    _install(handler, False, level_number(level))


# A traceback says where and what, never with what: each frame's file, line, function and source
# line, and the exception's type, but no frame's local variables (they hold what a practitioner
# typed, a child's identity, the key ring itself) and no message from another library's exception
# (a driver or the standard library echoes the value it choked on: "invalid literal for int():
# 'Amy'"). Signpost's own exceptions keep their messages, which never carry personal data.
OWN_MODULES = ("bot.", "handlers.", "store.")
WITHHELD = "(message withheld: another library's error may quote what it was given)"
MAX_FRAMES = 50


def _exception(exc_info: object) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and isinstance(exc_info[1], BaseException):
        return exc_info[1]
    if exc_info is True:
        return sys.exc_info()[1]
    return None


def _chain(error: BaseException) -> Iterator[tuple[BaseException, bool]]:
    """The exception, then what caused it or what it arose in handling (``is_cause``), as Python
    prints them (outermost first), each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    is_cause = False
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current, is_cause
        if current.__cause__ is not None:
            current, is_cause = current.__cause__, True
        elif current.__context__ is not None and not current.__suppress_context__:
            current, is_cause = current.__context__, False
        else:
            current = None


def _message(error: BaseException) -> str:
    if type(error).__module__.startswith(OWN_MODULES):
        return str(error)
    return WITHHELD if str(error) else ""


def safe_traceback(error: BaseException) -> list[dict[str, Any]]:
    """``error`` and its chain as plain data, with nothing a frame or another library held."""
    stack = []
    for one, is_cause in _chain(error):
        kind = type(one)
        frames = traceback.extract_tb(one.__traceback__)[-MAX_FRAMES:]
        stack.append(
            {
                "exc_type": f"{kind.__module__}.{kind.__qualname__}",
                "exc_value": _message(one),
                "is_cause": is_cause,
                "frames": [
                    {"filename": f.filename, "lineno": f.lineno, "name": f.name, "line": f.line or ""} for f in frames
                ],
            }
        )
    return stack


def _as_text(stack: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for one in reversed(stack):  # the root cause first, as Python prints a chain
        lines.append("Traceback (most recent call last):")
        for frame in one["frames"]:
            lines.append(f'  File "{frame["filename"]}", line {frame["lineno"]}, in {frame["name"]}')
            if frame["line"]:
                lines.append(f"    {frame['line']}")
        value = f": {one['exc_value']}" if one["exc_value"] else ""
        lines.append(f"{one['exc_type']}{value}")
    return "\n".join(lines)


def without_messages(said: str, error: BaseException) -> str:
    """``said`` (a log line's event) with the text of each exception in ``error``'s chain that is
    another library's taken out. A library that logs a failure it caught often writes the
    exception's text into its own line (slack_sdk's Socket Mode: "Failed to connect (error: {e})",
    aiohttp's error quoting the URL with its one-time ticket; asyncio's "Task exception was never
    retrieved", with the exception's repr): withheld there too, as in the traceback."""
    for one, _ in _chain(error):
        if _message(one) != WITHHELD:
            continue
        for text_of in (repr, str):  # the repr holds the text: it goes first, whole
            try:
                text = text_of(one)
            except Exception:  # an exception that cannot say itself has put nothing in the line
                continue
            if len(text) >= SHORT:
                said = said.replace(text, WITHHELD)
            elif text:  # a short text only where it stands alone, not inside the line's own words
                said = re.sub(rf"(?<!\w){re.escape(text)}(?!\w)", WITHHELD, said)
    return said


SHORT = 8  # an exception's text shorter than this is withheld only where it is not part of a word

# asyncio names a callback with its arguments wherever it reports one: "Exception in callback
# f('Amy Jones')", its "handle: <Handle f(...) at file:line>" and, in debug mode (``python -X
# dev``), "Executing <Handle set_result(<Future>, [rows]) at ... created at ...> took 0.2 seconds",
# where aiosqlite's worker hands each statement's rows to the loop. A callback without a name of
# its own is named by its repr (``<Reader object at 0x…>('Amy Jones')``). The arguments run to the last
# ")" that the source location, ">" or the line's end follows, over line breaks too (an object's own
# repr may hold one), but never into asyncio's next ``handle:`` line, which names the callback again.
_CALLBACK = re.compile(
    r"(?P<head>(?:Exception in callback |<(?:Timer)?Handle (?:cancelled )?(?:when=\S+ )?)(?:<[^<>]*>|[^\s(<])+)"
    r"\((?:(?!\nhandle: ).)*\)"
    r"(?=(?: at \S+:\d+)?(?: created at \S+:\d+)?(?:>|$))",
    re.MULTILINE | re.DOTALL,
)
ARGUMENTS_WITHHELD = "(arguments withheld)"
# A future's repr quotes its result or its exception (``<Future finished result=[('Amy Jones', …)]>``,
# with no traceback of its own for the exception's text to be withheld by), and asyncio
# shows one as what a task waits for ("Task was destroyed but it is pending!": a driver's rows,
# handed over as the loop closed). A repr can hold any character, a line break too, so the rest of
# the text goes: what followed is asyncio's own bookkeeping (callbacks, where it was created).
_SETTLED = re.compile(r"\b(?P<what>result|exception)=.*\Z", re.DOTALL)
RESULT_WITHHELD = "(result withheld)"


def _settled_withheld(found: re.Match[str]) -> str:
    return f"{found['what']}={WITHHELD if found['what'] == 'exception' else RESULT_WITHHELD}"


def _callbacks_withheld(_: Any, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """asyncio's line with each callback's arguments and each future's result taken out, the
    callback's name and place kept."""
    said = event.get("event")
    if event.get("logger") == "asyncio" and isinstance(said, str):
        said = _CALLBACK.sub(lambda found: found["head"] + ARGUMENTS_WITHHELD, said)
        event["event"] = _SETTLED.sub(_settled_withheld, said)
    return event


def _handled_withheld(_: Any, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """A library's line logged while it handles an exception but without it (slack_sdk's Socket
    Mode: "Failed to retrieve WSS URL: {e}", the whole answer Slack, or a proxy, gave): that
    exception's text withheld from the line too. A line is formatted within the logging call, so
    the exception the library is handling is still the one ``sys.exc_info`` gives."""
    handled = sys.exc_info()[1]
    if handled is not None and event.get("exc_info") is None and isinstance(event.get("event"), str):
        event["event"] = without_messages(event["event"], handled)
    return event


def _tracebacks(as_text: bool) -> structlog.types.Processor:
    """The processor that turns ``exc_info`` into ``exception``: data for JSON, text for a terminal."""

    def render(_: Any, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
        exc_info = event.pop("exc_info", None)
        error = _exception(exc_info)
        if error is not None:
            if isinstance(event.get("event"), str):
                event["event"] = without_messages(event["event"], error)
            stack = safe_traceback(error)
            event["exception"] = _as_text(stack) if as_text else stack
        return event

    return render


# Loggers whose debug (and info) records may quote what they carry: never below warning. The
# logger the Slack front end gives Bolt is ``slack_bolt.signpost``, held by ``slack_bolt`` here.
LIBRARIES = (
    "slack_sdk",
    "slack_bolt",
    "aiohttp.access",
    "aiohttp.client",
    "asyncio",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "botbuilder",
    "microsoft_agents",
    "botframework",
    "msrest",
    "urllib3",
)
# Loggers capped higher still: their warnings say only what Signpost logs itself, in its own terms.
# The Agents SDK's token validator warns of a wrong audience, issuer or tenant, and the Teams front
# end logs the same rejection (``teams_request_rejected``): one line per forged request, not two.
# Its user-token client warns "App ID is not provided" with every activity in anonymous development
# mode, which Signpost says once at start (``teams_anonymous_mode``): a message is one line.
QUIETER = {
    "microsoft_agents.hosting.core.authorization.jwt.jwt_token_validator": logging.ERROR,
    "microsoft_agents.hosting.core.connector.client.user_token_client": logging.ERROR,
}


def _thread_ended(args: threading.ExceptHookArgs) -> None:
    """An exception nothing caught in a thread (a driver's worker, a library's own thread): one line
    on this module's path, its text withheld as any other library's, where Python's default printed
    the whole traceback and message to stderr, outside the log."""
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else None
    if _outlived_its_loop(args.exc_value):
        structlog.get_logger("signpost.stray").debug("driver_thread_outlived_its_loop", thread=thread)
        return
    _stray("thread_exception", args.exc_type, args.exc_value, args.exc_traceback, thread=thread)


def _outlived_its_loop(error: BaseException | None) -> bool:
    """aiosqlite's worker thread handing a result to an event loop already closed (aiosqlite issue
    241): a connection that failed to open is stopped without waiting, and a command that then
    ends closes its loop first. Nothing waited for that result, so nothing is lost: a debug line,
    not an error in every such command's output."""
    if not isinstance(error, RuntimeError) or str(error) != "Event loop is closed":
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return any(f"{os.sep}aiosqlite{os.sep}" in frame.filename for frame in frames)


def _warned(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A warning (a library's, or Python's own): one line on this module's path saying what kind
    and where it was issued, its message withheld, where Python printed "file:line: Category:
    message" and the source line to stderr, outside the log. A library's warning may quote what it
    was given (SQLAlchemy's identity-map warnings quote a row's key); Signpost issues none."""
    structlog.get_logger("signpost.stray").warning(
        "library_warning",
        category=f"{category.__module__}.{category.__qualname__}",
        filename=filename,
        lineno=lineno,
        message=WITHHELD,
    )


def _unraisable(args: Any) -> None:  # sys.UnraisableHookArgs
    """An exception Python could not raise (a ``__del__``, a closed event loop's callback): one line
    on this module's path, where Python printed "Exception ignored in: <repr of the object>" and its
    message to stderr. The object is named by its code's name (``Holder.__del__``) or its type, never
    its repr, which may hold what it carried."""
    found = args.object
    where = None if found is None else type(found).__qualname__
    if callable(found) and isinstance(getattr(found, "__qualname__", None), str):
        where = found.__qualname__
    _stray("unraisable_exception", args.exc_type, args.exc_value, args.exc_traceback, ignored_in=where)


def _stray(event: str, kind: type[BaseException], error: BaseException | None, tb: Any, **fields: Any) -> None:
    log = structlog.get_logger("signpost.stray")
    if error is None:
        log.error(event, exc_type=f"{kind.__module__}.{kind.__qualname__}", **fields)
    else:
        log.error(event, exc_info=(kind, error, tb), **fields)


def _install(handler: logging.Handler, use_console: bool, level: int) -> None:
    renderer: structlog.types.Processor
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=True, exception_formatter=structlog.dev.plain_traceback)
    else:
        renderer = structlog.processors.JSONRenderer()
    extra = [_tracebacks(as_text=use_console)]
    handler.set_name(_SIGNPOST_HANDLER)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # A library's record carries no fields but these two, which bot.web's filter sets.
            foreign_pre_chain=[
                *SHARED,
                structlog.stdlib.ExtraAdder(allow=("status", "reason")),
                _handled_withheld,
                _callbacks_withheld,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *extra, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _SIGNPOST_HANDLER]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries speak at warning and above, at every level, debug included: at debug the Slack SDK
    # logs each call's whole body (an enrolment link, response URLs, a profile's name and email),
    # aiosqlite each statement's parameters and SQLAlchemy each row it reads.
    for noisy in LIBRARIES:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    for quieter, floor in QUIETER.items():
        logging.getLogger(quieter).setLevel(max(level, floor))
    threading.excepthook = _thread_ended
    sys.unraisablehook = _unraisable
    warnings.showwarning = _warned
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
