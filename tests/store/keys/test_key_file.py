"""The key file is replaced durably: written 0600, flushed to disk, renamed, and the rename flushed."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from store.keys import keychain
from store.keys.crypto import KeyRing


def test_key_file_save_fsyncs_the_new_file_then_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Saving (as when retention destroys a key) syncs the new file before the rename and the folder
    after it, so a power loss cannot bring back the old file with a destroyed key in it."""
    path = tmp_path / "signpost.key"
    ring = KeyRing.generate(path)
    ring.save()
    real_fsync, real_replace = os.fsync, os.replace
    steps: list[tuple[str, str]] = []

    def recording_fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def recording_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        steps.append(("rename", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    del ring.keks[ring.current_kek_id]  # a key destroyed
    ring.keks["k2"] = b"\x01" * 32
    ring.current_kek_id = "k2"
    ring.save()

    tmp = f"{path}.{os.getpid()}.tmp"
    assert steps == [("fsync", tmp), ("rename", tmp), ("fsync", str(tmp_path))]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert list(json.loads(path.read_text("utf-8"))["keks"]) == ["k2"]
    assert not Path(tmp).exists()


def test_every_file_the_key_file_leaves_beside_it_is_ignored_by_git(tmp_path: Path) -> None:
    """``make run`` leaves no untracked file (issue 17 item 14): the key file, its lock and a half-written
    replacement are named in .gitignore, checked by git itself against what an edit really creates."""
    root = Path(__file__).resolve().parents[3]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    ring = KeyRing.generate(tmp_path / "signpost.key")
    ring.save()
    with keychain.editing(ring):
        pass
    made = sorted(path.name for path in tmp_path.iterdir())
    assert "signpost.key.lock" in made
    for name in {*made, f"signpost.key.{os.getpid()}.tmp"}:
        checked = subprocess.run(["git", "check-ignore", "--no-index", "-q", name], cwd=root, check=False)
        assert checked.returncode == 0, f"{name} is not in .gitignore"


def test_a_key_rings_repr_shows_none_of_its_secrets(tmp_path: Path) -> None:
    """A repr is what a traceback, a log line or a debugger shows: the generation and the file, no key."""
    ring = KeyRing.generate(tmp_path / "signpost.key")
    shown = repr(ring)
    assert "current_kek_id='k1'" in shown and "signpost.key" in shown
    for secret in (*ring.keks.values(), ring.index_key, ring.signing_seed):
        assert repr(secret)[2:12] not in shown and secret.hex()[:12] not in shown


def _open_fresh(path: str, start: Any, out: Any) -> None:
    start.wait()
    try:
        out.put(KeyRing.load_or_create(Path(path)).index_key)
    except Exception as exc:  # reported, so the test fails at once rather than waiting for it
        out.put(type(exc).__name__)


def test_processes_creating_a_fresh_key_file_at_once_all_get_the_one_on_disk(tmp_path: Path) -> None:
    """Replicas starting together on a fresh store each find no key file: exactly one is made, and
    every process uses it (a key ring another process overwrote would seal what nobody can open)."""
    path = tmp_path / "signpost.key"
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Event(), spawn.Queue()
    workers = [spawn.Process(target=_open_fresh, args=(str(path), start, out)) for _ in range(6)]
    for worker in workers:
        worker.start()
    start.set()
    got = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert set(got) == {KeyRing.load(path).index_key}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signpost.key"]  # no half-written file left
