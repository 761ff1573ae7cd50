"""Decommissioning names the backups taken before destruction (``store.lifecycle.decommission``),
from the audit events `signpost backup` writes: every one is counted, whatever its file is called."""

from __future__ import annotations

import re
from pathlib import Path

from bot.app import Signpost
from handlers.operator import lifecycle as operator
from handlers.operator.common import audited
from handlers.vocabulary import Action
from store.lifecycle.decommission import backup_name, backups_taken
from tests.access_helpers import load_access


def test_a_backup_detail_gives_its_file_name() -> None:
    assert backup_name("weekly.bak: 12345 bytes") == "weekly.bak"
    late = f"late.bak: 99 bytes: {operator.BACKUP_RECORDED_LATE}"
    assert backup_name(late) == "late.bak"


def test_a_file_name_holding_a_byte_count_is_named_whole() -> None:
    assert backup_name("weekly: 5 bytes: copy.bak: 4096 bytes") == "weekly: 5 bytes: copy.bak"


def test_a_detail_the_audit_cut_short_still_names_the_start_of_the_file() -> None:
    """The audit keeps 200 characters of a detail: a long name loses its count, not its backup."""
    cut = ("b" * 196 + ".bak: 4096 bytes")[:200]
    assert backup_name(cut) == cut + "…"


async def test_a_backup_with_a_long_file_name_is_still_counted(signpost: Signpost, tmp_path: Path) -> None:
    """A real backup whose name would fill the audit's detail: decommissioning must still name it
    (it holds practitioners' details in clear), by its label and SHA-256, not say that none is recorded."""
    await load_access(signpost)
    target = tmp_path / ("n" * 190 + ".bak")
    async with audited(signpost.ctx, "ops", Action.BACKUP) as audit:
        await operator.backup_to(signpost.ctx, audit, target)
    async with signpost.ctx.db.read() as session:
        [taken] = await backups_taken(session)
    assert re.fullmatch(r"backup [0-9a-f]{12} \(sha256 [0-9a-f]{16}\)", taken.name), taken.name
