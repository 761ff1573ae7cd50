"""What the hostile-input suite watches: every log line (structlog and stdlib, rendered for real, with
tracebacks), what left the server (the fake Slack API and fake Teams connector), and the audit table.

Each property checks one generated input at a time and gets back a list of problems, by category.
In CI (the default profile) a problem fails the example at once, so Hypothesis shrinks it to the
smallest input. Under ``make fuzz`` (SIGNPOST_FUZZ_EXAMPLES set) problems are counted and the run
goes on, so the final counts say how many of the ≥ 10,000 inputs went wrong and how; each test
still fails at its end if any of its inputs did.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from bot.logging import configure
from handlers.help import EXAMPLES

FUZZ_EXAMPLES = int(os.environ.get("SIGNPOST_FUZZ_EXAMPLES", "0") or 0)
FUZZING = FUZZ_EXAMPLES > 0

# The problem categories the summary reports (always printed, zeros included).
ACCEPTED_WRONGLY = "accepted-wrongly"
SERVER_ERROR = "5xx"
TRACEBACK = "tracebacks"
LEAK = "leaks"
UNANSWERED = "not-answered-exactly-once"
UNAUDITED = "not-audited-exactly-once"
CRASHED = "crashed-commands"
LOG_LINES = "more-than-one-log-line"
CATEGORIES = (ACCEPTED_WRONGLY, SERVER_ERROR, TRACEBACK, LEAK, UNANSWERED, UNAUDITED, CRASHED, LOG_LINES)

# Every identity value of the synthetic children in tests/factories.py, in the spellings a log line
# or a message could carry them: names, dates of birth (ISO, UK with and without zero padding,
# dots, dashes, 2-digit years, month names), postcodes with and without the space.
_NAMES = ("Amy", "Amelia", "Jones", "Smith", "Ben", "Okafor", "Lily", "Brown", "Mia", "Stone", "Noah", "Wells")
_BIRTHS = ((2014, 4, 3), (2016, 9, 12), (2019, 1, 20), (2015, 6, 30), (2020, 2, 29))
_POSTCODES = ("M1 2AB", "M4 5CD", "M8 1AA", "S1 4ZZ")
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _date_spellings(y: int, m: int, d: int) -> list[str]:
    month = _MONTHS[m - 1]
    out = [f"{y:04d}-{m:02d}-{d:02d}", f"{y:04d}{m:02d}{d:02d}"]
    for day in {f"{d:02d}", str(d)}:
        for mon in {f"{m:02d}", str(m)}:
            for sep in "/.-":
                out += [f"{day}{sep}{mon}{sep}{y}", f"{day}{sep}{mon}{sep}{y % 100:02d}"]
        out += [f"{day} {month} {y}", f"{day} {month[:3]} {y}"]
    out.append(f"{month} {d}, {y}")
    return out


IDENTITY_VALUES: tuple[str, ...] = (
    *_NAMES,
    *(s for birth in _BIRTHS for s in _date_spellings(*birth)),
    *_POSTCODES,
    *(p.replace(" ", "") for p in _POSTCODES),
)
# Whole words only, case-sensitive: "Ben" must not match "Bench", nor a date match inside a longer number.
IDENTITY = re.compile(r"(?<![\w/.-])(?:" + "|".join(re.escape(v) for v in IDENTITY_VALUES) + r")(?![\w/-]|\.\d)")


# The search's worked example, as help and usage texts spell it (fixed text, never read from the register).
WORKED_EXAMPLE = "Amy Jones 03/04/2014 M1 2AB"


def identity_in(text: str) -> str | None:
    # The help text's worked example happens to be a child of the synthetic register: it is fixed
    # text, not something read from the register, so it is not a leak.
    for example in (*EXAMPLES, WORKED_EXAMPLE):
        text = text.replace(example, "")
    found = IDENTITY.search(text)
    return found.group(0) if found else None


@dataclass
class Tally:
    """Counts across the whole session: inputs by kind, problems by category, a few examples each."""

    sent: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)

    def record(self, kind: str, category: str, why: str, shown: str) -> None:
        """Count a problem and keep a few samples: the input whole (``shown`` is bounded already)
        and the start of why, so that a rare one can be sent again (a cut after 300 characters
        of a logged traceback kept none of the input)."""
        self.problems[category] += 1
        kept = self.samples.setdefault(f"{kind} {category}", [])
        if len(kept) < 2:
            kept.append(f"{why[:200]} <- {shown}")

    def lines(self) -> list[str]:
        total = sum(self.sent.values())
        out = [f"hostile inputs sent: {total}" + (f" (fuzz: {FUZZ_EXAMPLES} examples per property)" if FUZZING else "")]
        out += [f"  {kind}: {n}" for kind, n in sorted(self.sent.items())]
        out.append("problems: " + ", ".join(f"{c} {self.problems[c]}" for c in CATEGORIES))
        for key, kept in sorted(self.samples.items()):
            out += [f"  e.g. {key}: {s}" for s in kept]
        return out


TALLY = Tally()


class LogTap:
    """Signpost's real log configuration (JSON lines, ``format_exc_info``) and every stdlib record
    (Bolt's, aiohttp's, the Agents SDK's, with their tracebacks), rendered into one buffer."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self._mark = 0

    def new(self) -> str:
        """What was logged since the last call."""
        text = self.buffer.getvalue()
        fresh, self._mark = text[self._mark :], len(text)
        return fresh


def without_info(log: str) -> str:
    """The tapped log without its INFO lines (each command's one ``command`` line among them): the
    warnings and errors a test counts."""
    return "\n".join(line for line in log.splitlines() if '"level": "info"' not in line)


@contextmanager
def tapped_logs() -> Iterator[LogTap]:
    tap = LogTap()
    saved = structlog.get_config()
    # Production's levels (bot.logging.configure): Signpost's own lines from INFO (each command's
    # one ``command`` line among them), the libraries' from WARNING. The root logger stays at INFO:
    # Signpost's structlog lines pass through it, and at WARNING none of its INFO lines was seen.
    root = logging.getLogger()
    old_level = root.level
    configure(fmt="json", level=logging.INFO, stream=tap.buffer)
    handler = logging.StreamHandler(tap.buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.setLevel(logging.WARNING)  # the libraries' records, with their tracebacks, as rendered raw
    root.addHandler(handler)
    try:
        yield tap
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        structlog.configure(**saved)


@dataclass
class Check:
    """The verdict on one input: its kind, a short description of it, and what went wrong."""

    kind: str
    shown: str
    problems: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, category: str, why: str) -> None:
        self.problems.append((category, why))

    def expect(self, ok: bool, category: str, why: str) -> None:
        if not ok:
            self.fail(category, why)

    def status(self, status: int, allowed: range | set[int], what: str, otherwise: str = ACCEPTED_WRONGLY) -> None:
        if status >= 500:
            self.fail(SERVER_ERROR, f"{status} for {what}")
        elif status not in allowed:
            self.fail(otherwise, f"{status} for {what}")

    def logs(self, text: str) -> None:
        if "Traceback" in text or '"exception"' in text:
            self.fail(TRACEBACK, _first_line_with(text, ("Traceback", '"exception"')))
        leaked = identity_in(text)
        if leaked:
            self.fail(LEAK, f"{leaked!r} in a log line: {_first_line_with(text, (leaked,))}")

    def one_line_at_most(self, text: str) -> None:
        """A request refused (or answered with a warning) says so in one line, not several: the
        warnings and errors among the JSON lines Signpost's own configuration renders."""
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("{") and ('"level": "warning"' in line or '"level": "error"' in line)
        ]
        if len(lines) > 1:
            self.fail(LOG_LINES, " | ".join(line[:150] for line in lines))

    def outbound(self, documents: list[Any], *, own_text: str = "") -> None:
        """Nothing sent to Slack or Teams carries a traceback, or an identity value (unless the
        sender typed it)."""
        for doc in documents:
            text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
            if "Traceback" in text or 'File \\"' in text:
                self.fail(TRACEBACK, f"a traceback sent out: {text[:200]}")
            leaked = identity_in(text)
            if leaked and leaked not in own_text:
                self.fail(LEAK, f"{leaked!r} sent out: {text[:200]}")

    def settle(self) -> None:
        """Count this input; raise in CI mode so Hypothesis shrinks it, record it when fuzzing."""
        TALLY.sent[self.kind] += 1
        for category, why in self.problems:
            TALLY.record(self.kind, category, why, self.shown)
        if self.problems and not FUZZING:
            raise AssertionError(
                f"{self.kind} input {self.shown}: " + "; ".join(f"[{c}] {w}" for c, w in self.problems)
            )
        if self.problems:
            FAILED_IN_TEST.extend(self.problems)


FAILED_IN_TEST: list[tuple[str, str]] = []


def _first_line_with(text: str, needles: tuple[str, ...]) -> str:
    for line in text.splitlines():
        if any(n in line for n in needles):
            return line[:300]
    return text[:300]


def shown(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"
