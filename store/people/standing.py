"""Who is asking, and what stands between them and an answer: read in one statement (issue 15).

Every command's policy chain needs the same four facts before its handler runs: whether the
request's delivery was answered already, the practitioner behind the chat identity, their step-up
credential, and the live switch-off date. Each was a statement of its own (a round trip, on SQLite a
hop to aiosqlite's thread, and a quarter of a keyed enquiry's statements); they are one here, read
in the command's own transaction, fresh for every command.

Nothing here is cached: revoking access, unlinking an identity, resetting a credential and
scheduling the switch-off take effect on every replica at the very next command. Each fact's
columns and condition stay in their own module (``practitioners.ACTOR_COLUMNS``,
``credentials.CREDENTIAL_COLUMNS``, ``decommission.SWITCH_OFF``, ``deliveries.SEEN``); this module
only reads them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, literal_column, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Actor, Platform, Principal
from store.delivery import deliveries
from store.lifecycle import decommission
from store.people.credentials import CREDENTIAL_COLUMNS, CredentialState, aware, state_of
from store.people.practitioners import ACTOR_COLUMNS, actor_of
from store.prepared import Prepared, all_of, read_ahead
from store.tables.people import ChatIdentity, Practitioner


@dataclass(frozen=True, slots=True)
class Standing:
    """What the policy chain knows of a request before any gate runs."""

    actor: Actor | None  # None: the identity is linked to nobody
    credential: CredentialState | None  # the actor's step-up credential (None: not enrolled)
    switch_off: date | None  # the live decommissioning's switch-off date (None: none scheduled)
    seen: bool  # the delivery id asked about was claimed already (answered before)
    # When the chat account asking was linked to the practitioner (None at the console): a code
    # typed at the console before then does not cover it (``handlers.stepup.flow.is_fresh``).
    linked_at: datetime | None
    # The last good code typed in the chat account asking (None: none yet, or the console, whose
    # own is the credential's ``stepped_up_at``).
    account_code_at: datetime | None


_PEOPLE, _IDENTITIES = Practitioner.__table__, ChatIdentity.__table__
# One row whatever is found: the asker's practitioner and credential are outer-joined to it.
_ASKING = select(literal_column("1").label("one")).subquery("asking")
_ACTOR = tuple(_PEOPLE.c[column.key] for column in ACTOR_COLUMNS)
_FACTS = (
    decommission.SWITCH_OFF.scalar_subquery().label("switch_off"),
    deliveries.SEEN.scalar_subquery().label("seen"),
)
_CREDENTIALS = CREDENTIAL_COLUMNS[0].table


def _standing(who: Any, linked_at: Any, code_at: Any) -> Prepared:
    """The statement for an asker found through ``who`` (a join to practitioners, outer-joined),
    with when their chat account was linked (``linked_at``) and last given a good code (``code_at``)."""
    return Prepared(
        select(  # no name twice
            *_ACTOR, *CREDENTIAL_COLUMNS, *_FACTS, linked_at.label("linked_at"), code_at.label("account_code_at")
        )
        .select_from(_ASKING)
        .outerjoin(*who)
        .outerjoin(_CREDENTIALS, _CREDENTIALS.c.practitioner_id == _PEOPLE.c.id)
    )


# A chat identity, by platform, tenant and user id (every chat command).
_BY_IDENTITY = _standing(
    (
        _IDENTITIES.join(_PEOPLE, _PEOPLE.c.id == _IDENTITIES.c.practitioner_id),
        (_IDENTITIES.c.platform == bindparam("platform"))
        & (_IDENTITIES.c.tenant == bindparam("tenant"))
        & (_IDENTITIES.c.user_id == bindparam("user_id")),
    ),
    _IDENTITIES.c.linked_at,
    _IDENTITIES.c.stepped_up_at,
)
# The console: a local terminal run by someone who already holds the database and key file, so
# its user id *is* the practitioner id.
_NO_TIME = null().cast(_IDENTITIES.c.linked_at.type)
_BY_ID = _standing((_PEOPLE, _PEOPLE.c.id == bindparam("user_id")), _NO_TIME, _NO_TIME)


Ahead = tuple[Prepared, Mapping[str, Any]]
"""A read the command will make once admitted (``Spec.read_ahead``): a statement and its parameters."""


async def read(
    session: AsyncSession, principal: Principal, delivery: str | None = None, ahead: Ahead | None = None
) -> Standing:
    """The standing of whoever sent a command as ``principal``; ``delivery``: its idempotency key,
    to learn whether it was answered before (``Standing.seen``). ``ahead``: a read the command's
    handler will make in this transaction, made with this one in one round trip and kept for it
    (``store.prepared.read_ahead``); nothing of it is used unless the command is admitted."""
    key = None if delivery is None else deliveries.stored_key(delivery)
    if principal.platform is Platform.CONSOLE:
        asking, params = _BY_ID, {"user_id": principal.user_id, "key": key}
    else:
        found = {"platform": principal.platform.value, "tenant": principal.tenant, "user_id": principal.user_id}
        asking, params = _BY_IDENTITY, {**found, "key": key}
    if ahead is None:
        row = await asking.first(session, params)
    else:
        [[row], rows] = await all_of(session, [(asking, params), ahead])
        read_ahead(session, *ahead, rows)
    assert row is not None  # the one row of ``_ASKING``
    actor = None if row.id is None else actor_of(row)
    credential = None if row.practitioner_id is None else state_of(row)
    linked_at = None if actor is None else aware(row.linked_at)
    code_at = None if actor is None else aware(row.account_code_at)
    return Standing(actor, credential, row.switch_off, row.seen is not None, linked_at, code_at)
