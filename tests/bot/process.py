"""`signpost ARGS…` as a process of its own, for what only a real process shows: a write cut short
by the file-size limit (``RLIMIT_FSIZE``: a write past it fails with EFBIG, as on a full disk, and
nothing after it runs to tidy up, as after a kill -9 at that point)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path


def run_signpost(*args: str, cwd: Path, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run `signpost ARGS…` from ``cwd`` with this process's environment (settings included), its
    files unable to grow past ``file_size_limit`` bytes when one is given; what it printed, and its
    exit status."""

    def limit_file_size() -> None:
        assert file_size_limit is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.RLIM_INFINITY))

    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        preexec_fn=None if file_size_limit is None else limit_file_size,
    )
