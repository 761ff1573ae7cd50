"""How a stored notice reaches a person: one Deliverer per platform (Slack DM, Teams proactive
message, console output). The outbox (bot/notify.py) picks the deliverer for each linked identity."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol, runtime_checkable

from handlers.vocabulary import Notice, Platform, Principal
from store.delivery.notices import HELD_AT_MOST

# A platform's "wait this long" (HTTP 429, Retry-After) is honoured up to this: as long as the
# outbox's longest backoff (store/delivery/outbox.py), so a wild value does not hold a notice for days.
WAIT_AT_MOST = HELD_AT_MOST


class DeliveryFailed(Exception):
    """The platform did not take the notice; it stays in the outbox and is retried later.

    ``wait``: the platform rate-limited the app and said how long to wait (``retry_after``: for so
    long, or until an instant): nothing more goes to that workspace or tenant on it before then
    (bot/notify.py, through ``wait_from``), this notice included."""

    def __init__(self, *args: object, wait: timedelta | datetime | None = None) -> None:
        super().__init__(*args)
        self.wait = wait

    def wait_from(self, now: datetime) -> timedelta | None:
        """How long from ``now`` the platform asked to be left alone, at most ``WAIT_AT_MOST``;
        None when it did not say, or named an instant already past (the notice's backoff applies)."""
        if isinstance(self.wait, datetime):
            left = self.wait - now
            return min(left, WAIT_AT_MOST) if left > timedelta(0) else None
        return self.wait


def retry_after(headers: Mapping[str, str] | None) -> timedelta | datetime | None:
    """A 429's Retry-After in either form RFC 9110 allows: whole seconds (as Slack sends it; at
    most ``WAIT_AT_MOST``), or an HTTP date (as a Bot Framework connector may), the instant itself
    (``DeliveryFailed.wait_from`` measures it against the one clock and bounds it alike). None when
    there is none or it is neither: then the notice's own backoff applies."""
    value = None if headers is None else headers.get("Retry-After", headers.get("retry-after"))
    if not isinstance(value, str):
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,12}", value):
        return timedelta(seconds=min(int(value), int(WAIT_AT_MOST.total_seconds())))
    try:
        instant = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # An HTTP date is GMT; a date read without a zone ("-0000") is taken as UTC too.
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


class PersonUnreachable(DeliveryFailed):
    """The platform answered, but cannot reach this person there (an unknown or deactivated
    account, no conversation with the bot yet): it says nothing about the platform being down."""


# Where notices go out when a chat front end is served (every replica judges who can be reached
# alike, whichever platform it serves itself: bot/web.py), and what a command on the host judges
# by when chat is configured, since that server delivers what the command queues.
CHAT_PLATFORMS = frozenset({Platform.SLACK, Platform.TEAMS})
CONSOLE_ONLY = frozenset({Platform.CONSOLE})  # the console reaches every active practitioner


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
