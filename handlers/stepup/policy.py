"""The product's step-up numbers, apart from the gate that applies them (handlers/stepup/flow.py),
so that ``handlers.context.Policy`` carries them (``bot.app.build`` gives the gate the same ones)
without an import cycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class StepUpPolicy:
    """The product's step-up numbers (PRODUCT.md), in one place."""

    idle: timedelta = timedelta(minutes=30)  # fresh this long after last use …
    absolute: timedelta = timedelta(hours=12)  # … and never longer than this after the code
    approval: timedelta = timedelta(minutes=5)  # decisions need a code this recent
    window: int = 1  # accept the previous and next time step
    lock_after: int = 5  # consecutive wrong codes …
    lock_for: timedelta = timedelta(minutes=15)  # … pause code entry this long
    disable_after: int = 100  # consecutive wrong codes until re-enrolment
    # Wrong first codes while setting up, counted apart: they never lock, notify or count as misuse
    # (anyone holding the chat account could start a set-up of their own), and this many discard it.
    enrol_tries: int = 10
    challenge_ttl: timedelta = timedelta(minutes=10)  # a parked command waits this long
    link_ttl: timedelta = timedelta(minutes=10)  # an enrolment link works this long, once
