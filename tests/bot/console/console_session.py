"""Run the real Console class in this process: lines in (as if piped), what it prints out."""

from __future__ import annotations

import io

from bot.app import Signpost
from bot.console.console import Console


class Terminal(io.StringIO):
    """What the console prints into, standing for a terminal: a console whose output is a pipe or a
    file issues no authenticator secret (``enrol`` is refused there)."""

    def isatty(self) -> bool:
        return True


async def session(app: Signpost, lines: list[str], as_id: str = "NS-P0001", *, terminal: bool = False) -> str:
    """Everything the console prints for ``lines`` typed one per line (stdin not a terminal; its
    output a pipe, or with ``terminal`` a terminal, as an enrolment needs)."""
    out = Terminal() if terminal else io.StringIO()
    code = await Console(app, as_id, io.StringIO("".join(line + "\n" for line in lines)), out).run()
    assert code == 0
    return out.getvalue()
