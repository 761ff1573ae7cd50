"""Who is told of something someone must act on or know about, reachable first.

A step-up lockout, a misuse alert, a registration or access request and their stand-ins
(handlers/stand_in.py) are all addressed here. ``store.people.practitioners.holders`` says who
holds a role; ``store.delivery.outbox.reachable`` says who a notice can reach on the platforms this
server delivers on (``Context.reaches``). A notice for someone it cannot reach waits unsent (the
outbox logs ``notice_recipient_unreachable``), so it goes to the authority's duty managers who can
be reached; with none, to the admins who can; only when nobody at all can be reached, to the list
as ``holders`` gives it (queued for when they link), with one warning that names nobody.

A warning about a practitioner (a step-up lockout, a reset of their authenticator) is keyed by
``WarningKey``, so that when its recipient is made inactive before it is sent, its stand-in
(handlers/stand_in.py) reads back whom it is about and who is not to hear of it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Notice, Platform, Role
from store.db import after_commit
from store.delivery.outbox import reachable
from store.people.practitioners import Holders, holders

log = structlog.get_logger("signpost.notify")


@dataclass(frozen=True, slots=True)
class Ranked:
    """The duty managers to ask, in id order (an access request asks them one at a time), then the
    admins: the reachable ones of each, or every one of both when nobody at all can be reached."""

    managers: Holders
    admins: Holders

    def first(self) -> Holders:
        """Everyone to tell at once: the duty managers, or the admins when there is none to ask."""
        return self.managers if self.managers else self.admins


async def duty_managers_of(session: AsyncSession, authority: str, *, excluding: Collection[str] = ()) -> Holders:
    """The active duty managers of ``authority`` but ``excluding`` (the practitioner concerned): whom
    a notice about one of its practitioners is for, before reachability chooses among them, and who
    may reset that practitioner's authenticator in chat (handlers/stepup/reset.py)."""
    return await holders(session, Role.DUTY_MANAGER, authority, fallback_to_admins=False, excluding=excluding)


async def ranked(
    session: AsyncSession,
    reaches: Collection[Platform],
    authority: str | None,
    *,
    kind: str,
    excluding: Collection[str] = (),
) -> Ranked:
    """Who is told of a ``kind`` notice about ``authority`` (None: unknown, the admins alone),
    leaving out ``excluding`` (the practitioner concerned: nobody decides or hears of their own)."""
    managers = Holders((), None)
    if authority is not None:
        managers = await duty_managers_of(session, authority, excluding=excluding)
    admins = await holders(session, Role.ADMIN, excluding=excluding)
    near = await reachable(session, [*managers, *admins], reaches)
    if not near:
        if managers or admins:
            role, queued = (Role.DUTY_MANAGER, len(managers)) if managers else (Role.ADMIN, len(admins))
            after_commit(
                session, partial(log.warning, "notice_nobody_reachable", kind=kind, role=role.value, queued=queued)
            )
        return Ranked(managers, admins)
    near_managers = tuple(pid for pid in managers if pid in near)
    # Admins none of whom is reachable still end an access request's list (queued), as before.
    near_admins = tuple(pid for pid in admins if pid in near) or admins.ids
    return Ranked(
        Holders(near_managers, Role.DUTY_MANAGER if near_managers else None),
        Holders(near_admins, Role.ADMIN if near_admins else None),
    )


async def who_is_told(
    session: AsyncSession,
    reaches: Collection[Platform],
    authority: str | None,
    *,
    kind: str,
    excluding: Collection[str] = (),
) -> Holders:
    """Everyone to tell now of a ``kind`` notice about ``authority`` (``ranked``'s first choice)."""
    return (await ranked(session, reaches, authority, kind=kind, excluding=excluding)).first()


# A moment as ``str(datetime)`` (or ISO 8601) writes it: a fixed form, readable back after an id.
MOMENT = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)?"


@dataclass(frozen=True, slots=True)
class Warned:
    """One recipient's copy of a warning, read back from its key: the key every copy shares, the
    practitioner it is about, and who else is not to hear of it (whoever did what it reports)."""

    shared: str
    about: str
    excluding: tuple[str, ...]


class WarningKey:
    """How each copy of a warning about a practitioner is keyed: ``{kind}:{practitioner}:{tail}``,
    `` by {id}`` when someone did what it reports, then ``:{recipient}``. The practitioner is any id
    without whitespace (colons included), read back from the fixed-form ``tail`` after it (a pattern
    its kinds own); no id holds whitespace, so nor does it end early or run into ``by``."""

    def __init__(self, kinds: Collection[str], tail: str) -> None:
        self.kinds = frozenset(kinds)
        either = "|".join(re.escape(kind) for kind in sorted(self.kinds))
        self.pattern = re.compile(rf"(?P<kind>{either}):(?P<practitioner>\S+):{tail}(?: by (?P<by>\S+))?")

    def shared(self, kind: str, about: str, tail: str, *, by: str | None = None) -> str:
        """The key every copy shares (each recipient's is it, ``:``, their id)."""
        assert kind in self.kinds
        return f"{kind}:{about}:{tail}" + ("" if by is None else f" by {by}")

    def read(self, notice: Notice) -> Warned | None:
        """What ``notice``, one recipient's copy of such a warning, is about; None for any other."""
        key, own = notice.dedupe_key or "", f":{notice.recipient_id}"
        found = self.pattern.fullmatch(key.removesuffix(own)) if key.endswith(own) else None
        if found is None or found["kind"] != notice.kind:
            return None
        by = () if found["by"] is None else (found["by"],)
        return Warned(found[0], found["practitioner"], by)
