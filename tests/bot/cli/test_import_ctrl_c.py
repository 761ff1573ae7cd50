"""Ctrl-C during `signpost import` at the moment its sealing workers start: the import stops (exit
130), nothing is imported, no worker is left, and no process prints a traceback. It hung for ever:
Ctrl-C reaches the terminal's whole process group, a worker died of it while starting, and the
importer went on writing the worker's start-up data (the term keys, more than a pipe holds) to a
pipe that nobody would read. (Processes and signals, not the database, are tested: SQLite only.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from store.register.feeds import PARALLEL_AFTER
from store.register.national import NationalRegister, write_feeds

ENDS_WITHIN = 60  # seconds after Ctrl-C; it ends in well under one, the margin is for a loaded machine


def _workers(pid: int) -> list[int]:
    """The importer's spawned children (its sealing workers; not multiprocessing's resource tracker)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            found.append(int(child))
    return found


def _ignores_ctrl_c(pid: int) -> bool:
    """Whether the process ignores SIGINT now (the importer does while it forks its workers)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def test_ctrl_c_as_the_sealing_workers_start_stops_the_import_cleanly(tmp_path: Path) -> None:
    """Sent while the workers are still starting up, as soon as the importer listens again (for
    the milliseconds of the fork and exec it ignores Ctrl-C, so that its workers ignore it for good)."""
    feeds = write_feeds(NationalRegister(PARALLEL_AFTER + 5_000), tmp_path)  # enough to start workers
    env = {
        **os.environ,
        "SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "SIGNPOST_KEY_FILE": str(tmp_path / "signpost.key"),
        "SIGNPOST_LOG_FORMAT": "json",
    }
    importer = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "import", *map(str, feeds.files)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, as a terminal's foreground job is
        # and Ctrl-C not ignored, as in a terminal: a test run started in the background of a
        # shell inherits SIGINT ignored, and the importer then never listened for it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while not (workers and not _ignores_ctrl_c(importer.pid)) and importer.poll() is None:
            assert time.monotonic() < deadline, "the sealing workers never started"
            workers = _workers(importer.pid)
            time.sleep(0.002)
        assert workers, "the import ended before its sealing workers started"
        os.killpg(importer.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        _, err = importer.communicate(timeout=ENDS_WITHIN)
    finally:
        if importer.poll() is None:
            os.killpg(importer.pid, signal.SIGKILL)
            importer.wait()
    said = err.decode()
    assert importer.returncode == 130, said[-2000:]
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said[-2000:]
    assert said.rstrip().endswith("Nothing was imported: stopped before the end (an import is all or nothing).")
    deadline = time.monotonic() + ENDS_WITHIN
    while [pid for pid in workers if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a sealing worker outlived the import"
    with sqlite3.connect(tmp_path / "store.db") as store:
        assert store.execute("SELECT count(*) FROM children").fetchone() == (0,)
