"""Run the real Console class in this process: lines in (as if piped), what it prints out."""

from __future__ import annotations

import io

from bot.app import Signpost
from bot.console.console import Console


async def session(app: Signpost, lines: list[str], as_id: str = "NS-P0001") -> str:
    """Everything the console prints for ``lines`` typed one per line (stdin not a terminal)."""
    out = io.StringIO()
    code = await Console(app, as_id, io.StringIO("".join(line + "\n" for line in lines)), out).run()
    assert code == 0
    return out.getvalue()
