"""Small synthetic feeds for tests (no real person's data)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from bot.app import Signpost
from handlers.operator import register
from handlers.operator.common import audited
from handlers.vocabulary import Action, Command, Platform, Principal, Reply
from store.db import Database
from store.register import children
from store.register.feeds import Feed, ImportReport, import_feeds
from store.register.terms import TERMS_VERSION
from store.tables.lifecycle import Meta

NEWER_INDEX = str(int(TERMS_VERSION) + 1)
"""The terms version a newer Signpost records when it rebuilds the blind index (a rolling upgrade)."""

PRACTITIONERS_HEADER = "practitioner_id,given_name,family_name,role,organisation,local_authority,phone,email,roles"
CHILDREN_HEADER = "child_ref,given_names,family_name,aliases,date_of_birth,sex,postcode,local_authority,shielded"
INVOLVEMENTS_HEADER = "child_ref,practitioner_id,service,started,ended,lead_professional"

# Valid modulus-11 references in the 999 test range.
AMY = "9990000018"
BEN = "9990000026"
TWIN_A = "9990000034"
TWIN_B = "9990000042"
SHIELDED = "9990000050"
NO_INVOLVEMENTS = "9990000069"

# One feed row a line, as the file holds them: two rows run past the line limit.
PRACTITIONERS = f"""{PRACTITIONERS_HEADER}
P001,Sam,Carter,Social worker,Northshire Children's Services,Northshire,0161 496 0001,sam.carter@northshire.example,practitioner
P002,Priya,Shah,School nurse,Northshire School Health,Northshire,0161 496 0002,priya.shah@nhs.example,practitioner
P003,Tom,Reed,Teacher,Hill Primary School,Northshire,0161 496 0003,tom.reed@hill.example,practitioner
DM01,Dana,Moss,Duty manager,Northshire Children's Services,Northshire,0161 496 0100,dana.moss@northshire.example,duty_manager;practitioner
AD01,Alex,Kim,Service admin,Signpost Operations,Northshire,0161 496 0200,alex.kim@signpost.example,admin
S001,Lee,Hart,Health visitor,Southvale NHS Trust,Southvale,0113 496 0001,lee.hart@nhs.example,practitioner
"""  # noqa: E501

CHILDREN = f"""{CHILDREN_HEADER}
{AMY},Amy,Jones,Amelia Jones;Amy Smith,2014-04-03,F,M1 2AB,Northshire,false
{BEN},Ben,Okafor,,2016-09-12,M,M4 5CD,Northshire,false
{TWIN_A},Lily,Brown,,2019-01-20,F,M8 1AA,Northshire,false
{TWIN_B},Lily,Brown,,2019-01-20,F,M8 1AA,Northshire,false
{SHIELDED},Mia,Stone,,2015-06-30,F,S1 4ZZ,Southvale,true
{NO_INVOLVEMENTS},Noah,Wells,,2020-02-29,M,,Southvale,false
"""

INVOLVEMENTS = f"""{INVOLVEMENTS_HEADER}
{AMY},P001,Children's social care,2025-01-10,,true
{AMY},P002,School nursing,2024-09-01,,false
{AMY},P003,Education,2022-09-01,2024-07-20,false
{BEN},P003,Education,2023-09-01,,false
{SHIELDED},S001,Health visiting,2016-01-01,,true
"""


def standard_feeds() -> list[Feed]:
    return [
        Feed("practitioners.csv", PRACTITIONERS),
        Feed("children.csv", CHILDREN),
        Feed("involvements.csv", INVOLVEMENTS),
    ]


async def load_standard(app: Signpost) -> ImportReport:
    return await import_feeds(app.ctx.db, app.ctx.keys, standard_feeds(), app.ctx.clock.now())


async def record_index_version(db: Database, version: str) -> None:
    """Record ``version`` as the blind index's, as a Signpost of that version does when it rebuilds it."""
    async with db.write() as session:
        await session.merge(Meta(key=children.TERMS_META, value=version))


async def seed_demo(app: Signpost, children: int = 3000) -> register.Seeded:
    """What `signpost seed-demo` does (its use case, inside its audit): the demo data, ``children`` big."""
    async with audited(app.ctx, "tester", Action.SEED_DEMO) as audit:
        return await register.seed_demo(app.ctx, audit, children, if_empty=False)


def console(user: str) -> Principal:
    return Principal(Platform.CONSOLE, "local", user)


async def say(app: Signpost, user: str | Principal, text: str, **extra: object) -> Reply:
    principal = user if isinstance(user, Principal) else console(user)
    command = Command(principal=principal, text=text, correlation_id=uuid.uuid4().hex, **extra)  # type: ignore[arg-type]
    return await app.dispatcher.handle(command)


def names_in(rows: Sequence[object]) -> str:
    return " ".join(str(r) for r in rows)


async def ready(app: Signpost, practitioner_id: str) -> None:
    """Make a practitioner able to see results: enrol an authenticator and step up with a real code."""
    from tests.stepup_helpers import ensure_enrolled

    await ensure_enrolled(app, practitioner_id)
