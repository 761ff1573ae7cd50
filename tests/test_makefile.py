"""What a newcomer types at the checkout besides `make run` and `make test`: `make help` lists the
Makefile's own `## target:` notes, and git ignores what the demo leaves beside the checkout (the
serving lock, and the key file `make clean` set aside after a decommissioning, which stays on disk)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def make(*args: str) -> str:
    done = subprocess.run(["make", "-f", str(ROOT / "Makefile"), *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_make
def test_make_help_lists_every_documented_target_and_changes_nothing() -> None:
    """`make help` said "No rule to make target 'help'"; it prints each `## target: what` note, the
    continuation lines too, and installs nothing (plain `make` still builds what it built)."""
    notes = re.findall(r"^## (\w+): ", (ROOT / "Makefile").read_text("utf-8"), re.MULTILINE)
    assert {"run", "test", "lint", "clean"} <= set(notes)
    shown = make("help")
    listed = re.findall(r"^  (\w+)\s", shown, re.MULTILINE)
    assert listed == notes, shown
    assert "one worker per core" in shown and "##" not in shown, shown
    assert "pip" not in make("-n", "help")  # it reads the Makefile, nothing more
    assert ".DEFAULT_GOAL := .venv/.installed" in make("-pn", "help")


@needs_git
def test_git_ignores_the_serving_lock_and_the_key_file_set_aside(tmp_path: Path) -> None:
    """`git status` after README's rehearsal and `make clean` showed `signpost.key.serving.lock` and
    `signpost.key.decommissioned` as new files to add: the key files themselves are ignored (a key
    never goes into git), so are these; `make clean` still leaves the one set aside on disk."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    names = ["signpost.key.serving.lock", "signpost.key.decommissioned", "signpost.key.decommissioned.2"]
    for name in names:
        (tmp_path / name).write_text("", "utf-8")
    ignored = subprocess.run(["git", "check-ignore", *names], cwd=tmp_path, capture_output=True, text=True)
    assert ignored.stdout.split() == names, ignored.stdout
    clean = next(rule for rule in (ROOT / "Makefile").read_text("utf-8").split("\n\n") if "\nclean:" in rule)
    assert "rm -rf" in clean and "decommissioned" not in clean.split("rm -rf", 1)[1].split("\n", 1)[0]
