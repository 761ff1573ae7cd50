"""Who asked, in the audit, only by an id: the one home of that promise is the audit record itself.

An event's ``user_id`` and ``tenant`` are whatever identity its command came under, and some of
those are only claimed (a refused Teams activity's ``from.id``, ``aadObjectId`` or tenant; the
``--as`` an operator typed for `signpost match`). The audit is append-only and hash-chained, so a
name, date of birth or postcode typed there would stay for good: whatever builds the event, a value
not shaped like an id is recorded as ``UNRECOGNISED``, and every genuine id exactly as given.
Written through both the group-commit path and a command's own transaction, on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Action, Command, Origin, Platform, Principal
from store.audit.log import UNRECOGNISED, append, origin_event, recorded_id
from store.audit.signing import Signer
from store.audit.verify import verify
from store.tables.audit import AuditEvent

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOT_CONFIGURED = "tenant not configured"  # fixed text, as a front end gives it

# Real shapes: a Teams account id (base64url after "29:"), a bot's, one under an org prefix; AAD object
# and tenant GUIDs in either case; Slack users, Enterprise Grid users, teams and enterprises; register
# ids as the feeds hold them; the console's tenant; origins and Signpost's own actor names; local accounts.
GENUINE = (
    "29:1GcS4EyB_oSI8A88XmWBN7NbFnRHNQxFRsJBaqfQH-pkHENqTD3BuWg4w3GMeVWcxX_a1SdVB8Pd7WnYmFPn3Jw",
    "29:1priya",
    "28:9e1c8d0b-bot",
    "8:orgid:00000000-0000-4000-8000-000000000002",
    "00000000-0000-4000-8000-000000000002",
    "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "U0NURSE",
    "W012A3CDE",
    "T0001",
    "E0ABCDEF",
    "U-new-3",
    "P001",
    "NS-P0001",
    "EX-P001",
    "ADMIN-01",
    "local",
    "signpost",
    "misuse-monitor",
    "terminal",
    "enrolment_page",
    "root",
    "first.last",
    "uid:1000",
    "",
)

# What a person might type where an id belongs: a name, a date of birth, a postcode, in any spelling.
TYPED = (
    "Amy Jones 03/04/2014 M1 2AB",
    "AMY JONES 03/04/2014 M1 2AB",
    "29:Amy Jones 03/04/2014",
    "Xanthippe Quorlby 22/07/2013 QX9 8ZZ",
    "Amy/Jones/03/04/2014",
    "AmyJones03/04/2014",
    "29:AmyJones-03-04-2014",
    "Amy.Jones.03.04.2014",
    "amy_jones_2014-04-03",
    "M1 2AB",
    "Zoë",
    "Amy\tJones",
    "Amy\x00Jones",
    "Amy\u202eJones",
    "x" * 129,
    " P001",
)


@pytest.mark.parametrize("given", GENUINE)
def test_a_genuine_id_is_recorded_exactly(given: str) -> None:
    assert recorded_id(given) == given


@pytest.mark.parametrize("given", TYPED)
def test_anything_else_is_recorded_as_unrecognised(given: str) -> None:
    assert recorded_id(given) == UNRECOGNISED


def refused(tenant: str, user_id: str, correlation_id: str) -> Command:
    """A request a front end refuses before any handler sees it (an untrusted tenant): the identity
    it claimed, unverified, as Teams' front end passes it to ``Dispatcher.refuse_unheard``."""
    return Command(Principal(Platform.TEAMS, tenant, user_id), "", correlation_id)


async def stored(app: Signpost) -> dict[str, tuple[str, str]]:
    async with app.ctx.db.read() as session:
        rows = await session.execute(select(AuditEvent.correlation_id, AuditEvent.tenant, AuditEvent.user_id))
        return {correlation: (tenant, user) for correlation, tenant, user in rows}


async def test_no_typed_identity_reaches_the_stored_audit_whichever_way_it_is_written(signpost: Signpost) -> None:
    """Chat refusals (group commit) and operator events (a command's own transaction): a typed
    identity is stored as ``UNRECOGNISED``, a genuine one exactly; the chain still verifies."""
    for n, typed in enumerate(TYPED):
        await signpost.dispatcher.refuse_unheard(refused(typed, typed, f"typed-chat-{n}"), NOT_CONFIGURED)
    for n, genuine in enumerate(GENUINE):
        await signpost.dispatcher.refuse_unheard(
            refused(genuine, genuine, f"genuine-chat-{n}"), "tenant not configured"
        )
    async with signpost.ctx.db.write() as session:
        await append(
            session,
            [
                origin_event(Origin.BATCH, Action.MATCH_BATCH, AT, who=t, correlation_id=f"typed-op-{n}")
                for n, t in enumerate(TYPED)
            ]
            + [
                origin_event(Origin.TERMINAL, Action.HELP, AT, who=g, correlation_id=f"genuine-op-{n}")
                for n, g in enumerate(GENUINE)
                if g
            ],
        )
    rows = await stored(signpost)
    for n, _ in enumerate(TYPED):
        assert rows[f"typed-chat-{n}"] == (UNRECOGNISED, UNRECOGNISED)
        assert rows[f"typed-op-{n}"] == ("signpost", UNRECOGNISED)
    for n, genuine in enumerate(GENUINE):
        assert rows[f"genuine-chat-{n}"] == (genuine, genuine)
        if genuine:
            assert rows[f"genuine-op-{n}"] == ("signpost", genuine)
    everything = repr(sorted(rows.values())).lower()
    for word in ("amy", "jones", "2014", "m1 2ab", "xanthippe", "quorlby", "zoë"):
        assert word not in everything
    verdict = await verify(signpost.ctx.db, Signer(signpost.ctx.keys).public)
    assert verdict.ok, verdict
