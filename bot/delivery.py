"""How a stored notice reaches a person: one Deliverer per platform (Slack DM, Teams proactive
message, console output). The outbox (bot/notify.py) picks the deliverer for each linked identity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from handlers.vocabulary import Notice, Platform, Principal


class DeliveryFailed(Exception):
    """The platform did not take the notice; it stays in the outbox and is retried later."""


class PersonUnreachable(DeliveryFailed):
    """The platform answered, but cannot reach this person there (an unknown or deactivated
    account, no conversation with the bot yet): it says nothing about the platform being down."""


class Deliverer(Protocol):
    platform: Platform

    async def deliver(self, to: Principal, notice: Notice) -> None:
        """Send the notice privately to this identity, or raise DeliveryFailed."""
        ...


@runtime_checkable
class OnePersonAtATime(Protocol):
    """A Deliverer that reaches only whoever is there now (the console): the outbox reads their
    due notices first, so that others' notices waiting for them never fill a pass."""

    def present(self) -> str:
        """The practitioner id of whoever is there now."""
        ...


def deliverers_among(values: Iterable[object]) -> list[Deliverer]:
    """The Deliverer of every front end among ``values`` (an app's; each exposes one as ``.deliverer``)."""
    found: list[Deliverer] = []
    for value in values:
        deliverer = getattr(value, "deliverer", None)
        if deliverer is not None and hasattr(deliverer, "deliver") and hasattr(deliverer, "platform"):
            found.append(deliverer)
    return found
