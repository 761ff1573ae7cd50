"""Lines of a console's piped input, read at most a command's length at a time."""

from __future__ import annotations

from typing import TextIO

from handlers.grammar import MAX_COMMAND_TEXT

LINE_LIMIT = MAX_COMMAND_TEXT + 1  # one character more than a command may hold: answered as too long
# Characters of a too-long line skipped looking for its end, in bounded memory (a chunk at a time).
# 1 MiB, a request's most, ended a piped session at a 2 MB line, silently, the commands after it never
# run: a line of text is far shorter than this; only an input that is no text (``< /dev/zero``) goes on.
SKIP_LIMIT = 64 * 1024 * 1024
SKIP_LIMIT_TEXT = "64 MB"  # as the console says it
_CHUNK = 64 * 1024


class LineReader:
    """One line of ``stream`` a call, without its line end; None at the end of the input.

    A line longer than ``MAX_COMMAND_TEXT`` comes cut at ``LINE_LIMIT`` characters (so the
    dispatcher answers it as too long) and the rest of it is skipped, unread. An input with no line
    end within ``SKIP_LIMIT`` more (``< /dev/zero``, read whole until memory ran out) holds no
    further line: it ends there (``ended``, which the console says)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.ended = False

    def __call__(self) -> str | None:
        if self.ended:
            return None
        line = self.stream.readline(LINE_LIMIT)
        if line == "":
            return None
        if len(line) == LINE_LIMIT and not line.endswith("\n"):
            self.ended = not self._skip_rest()
        return line.rstrip("\n")

    def _skip_rest(self) -> bool:
        """Read past the rest of a line; whether its end (or the input's) came within ``SKIP_LIMIT``."""
        skipped = 0
        while skipped < SKIP_LIMIT:
            rest = self.stream.readline(_CHUNK)
            if rest == "" or rest.endswith("\n"):
                return True
            skipped += len(rest)
        return False
