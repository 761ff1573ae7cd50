"""Where a bot process spends its time: py-spy samples (GIL holders only) grouped by package.

``--profile`` samples the first ``signpost run`` replica during the closed-loop keyed phase with
``py-spy record --gil --nonblocking --format raw`` (collapsed stacks), then charges each sample to
the package of its innermost frame. py-spy is not a dependency: ``pip install py-spy`` to use it.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path

# (label, path fragment) in order: the first fragment found in the innermost frame's file wins
# (py-spy names files relative to their sys.path entry: "sqlalchemy/orm/session.py").
PACKAGES = (
    ("waiting (epoll)", "/selectors.py"),
    ("SQLAlchemy", "/sqlalchemy/"),
    ("driver (aiosqlite, sqlite3, asyncpg)", "/aiosqlite/"),
    ("driver (aiosqlite, sqlite3, asyncpg)", "/sqlite3/"),
    ("driver (aiosqlite, sqlite3, asyncpg)", "/asyncpg/"),
    ("Bolt", "/slack_bolt/"),
    ("slack_sdk", "/slack_sdk/"),
    ("aiohttp, yarl, multidict", "/aiohttp/"),
    ("aiohttp, yarl, multidict", "/yarl/"),
    ("aiohttp, yarl, multidict", "/multidict/"),
    ("logging (structlog, logging)", "/structlog/"),
    ("logging (structlog, logging)", "/logging/"),
    ("crypto (cryptography, hashlib, hmac)", "/cryptography/"),
    ("crypto (cryptography, hashlib, hmac)", "/hashlib.py"),
    ("crypto (cryptography, hashlib, hmac)", "/hmac.py"),
    ("asyncio", "/asyncio/"),
    ("threads, queues", "/threading.py"),
    ("threads, queues", "/queue.py"),
    ("threads, queues", "/concurrent/"),
    ("Signpost (bot, handlers, store)", "/bot/"),
    ("Signpost (bot, handlers, store)", "/handlers/"),
    ("Signpost (bot, handlers, store)", "/store/"),
    ("json", "/json/"),
)


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process | None:
    """Start sampling ``pid`` for ``seconds`` (None when py-spy is not installed)."""
    tool = py_spy()
    if tool is None:
        return None
    args = ["record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "200"]
    args += ["--gil", "--nonblocking", "--format", "raw", "--output", str(out)]
    return await asyncio.create_subprocess_exec(
        tool, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


def package_of(frame: str) -> str:
    """The package of one collapsed frame, ``function (path/to/file.py:line)``."""
    path = "/" + frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
    for label, fragment in PACKAGES:
        if fragment in path:
            return label
    return "other"


def breakdown(raw: str) -> list[tuple[str, float]]:
    """Share of samples per package of the innermost frame, largest first."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.strip() or not count.isdigit():
            continue  # a sample without Python frames
        counts[package_of(stack.rsplit(";", 1)[-1])] += int(count)
    total = sum(counts.values())
    return [(label, n / total) for label, n in counts.most_common()] if total else []
