"""`signpost ARGS…` as a process of its own, for what only a real process shows: what a wrapper
reading its pipes sees, a console session fed its input, or a write cut short by the file-size limit
(``RLIMIT_FSIZE``: a write past it fails with EFBIG, as on a full disk, and nothing after it runs to
tidy up, as after a kill -9 at that point)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_signpost(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    file_size_limit: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `signpost ARGS…` from ``cwd``, with ``env`` (this process's environment, settings included,
    when none is given), ``stdin`` its input and then closed (never the test runner's own), stdout
    and stderr each a pipe (as a wrapper's), its files unable to grow past ``file_size_limit`` bytes
    when one is given; what it printed, and its exit status."""

    def limit_file_size() -> None:
        assert file_size_limit is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.RLIM_INFINITY))

    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)} if env is None else dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=None if file_size_limit is None else limit_file_size,
    )


def clean_environment(db_url: str, folder: Path) -> dict[str, str]:
    """This process's environment for a `signpost` process of a test's own: none of the machine's
    Signpost, Slack or Teams settings, the store at ``db_url``, a key file of its own in ``folder``,
    log lines as JSON, and this process's import path (so it runs the code under test)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNPOST_", "SLACK_", "CONNECTIONS__"))}
    clean.update(
        SIGNPOST_DATABASE_URL=db_url,
        SIGNPOST_KEY_FILE=str(folder / "signpost.key"),
        SIGNPOST_LOG_FORMAT="json",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    return clean


def standard_store(db_url: str, folder: Path) -> dict[str, str]:
    """``clean_environment`` on a store holding the standard feeds (tests/factories.py), imported
    through a real `signpost import` from ``folder``."""
    from tests.factories import standard_feeds

    clean = clean_environment(db_url, folder)
    for feed in standard_feeds():
        (folder / feed.name).write_text(feed.text, encoding="utf-8")
    imported = run_signpost("import", *(feed.name for feed in standard_feeds()), env=clean, cwd=folder)
    assert imported.returncode == 0, imported.stderr
    return clean
