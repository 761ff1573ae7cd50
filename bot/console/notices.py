"""The console's Deliverer: a notice is printed when its recipient is the console's current identity.

The console acts as one practitioner at a time (``:as``), so a notice for anyone else stays in the
outbox (NotPresent) and is printed as soon as the console switches to them.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.console.render import button_line, plain
from bot.notify import NotPresent
from handlers.vocabulary import Notice, Platform, Principal, ThenEnrol

# How the console words a text that may tell the person to send enrol (``Console.said``).
Said = Callable[[str, ThenEnrol | None], str]


def render_notice(notice: Notice, said: Said | None = None) -> str:
    text = notice.text if said is None else said(notice.text, notice.then_enrol)
    lines = [f"[notice] {text}"]
    lines.extend(button_line(button) for button in notice.buttons)
    return plain("\n".join(lines))


class ConsoleDeliverer:
    platform = Platform.CONSOLE

    def __init__(self, current: Callable[[], str], say: Callable[[str], None], said: Said | None = None) -> None:
        self._current = current
        self._say = say
        self._said = said

    def present(self) -> str:
        """Whom the console acts as now: their notices are read first (``OnePersonAtATime``)."""
        return self._current()

    async def deliver(self, to: Principal, notice: Notice) -> None:
        """Print the notice if ``to`` is who the console acts as now; otherwise keep it pending."""
        if to.user_id != self._current():
            raise NotPresent("not the console's current identity")
        self._say(render_notice(notice, self._said))
