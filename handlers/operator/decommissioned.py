"""The one home of "this store is decommissioned" for operator commands (chat has its own gate,
``handlers.lifecycle.flows.switch_off_gate``).

Once Signpost is switched off (and after its personal data is destroyed) nothing new is taken in
and nothing is handed out: no import, enrolment, match, key rotation or backup (a copy made then
would only outlive the destruction, practitioners' contact details in clear). Each `signpost` command
declares whether it still runs then (bot/cli: ``after_switch_off``); ``audited`` asks ``refuse``
before the command does anything, so a refused one is audited ``refused`` like any other refusal
and the operator reads one line: when, and what still works. ``refuse_without_keys`` is the second
line of defence in the use cases that seal: a store whose keys are gone refuses in words rather
than failing on a key that is not there."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.context import Context
from handlers.operator.common import Refused
from store.keys import keychain
from store.lifecycle import decommission

SWITCHED_OFF = "switched off"  # the refusal's reason in the audit, as the chat gate's detail


@dataclass(frozen=True, slots=True)
class NotOnceSwitchedOff:
    """A command that does not run once Signpost is switched off: how the operator typed it
    (``signpost import``), and what still works, to say so in its refusal."""

    command: str
    still_working: str


async def refuse(ctx: Context, command: NotOnceSwitchedOff) -> None:
    """Refused (``SWITCHED_OFF``) once the store's switch-off date has come, destroyed or not."""
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    if row is None or not decommission.is_switched_off(row.switch_off, ctx.clock.now().date()):
        return
    what = "its personal data destroyed" if row.state == "destroyed" else "its personal data is being destroyed"
    raise Refused(
        f"Signpost was decommissioned on {row.switch_off:%d/%m/%Y} ({what}), so `{command.command}` no longer "
        f"runs: nothing new is taken in or handed out. Still working: {command.still_working}",
        reason=SWITCHED_OFF,
    )


KEYS_DESTROYED = (
    "the keys of this store were destroyed at decommissioning: nothing can be sealed, opened or matched any more "
    "(`signpost decommission status` says what happened)"
)


def refuse_without_keys(ctx: Context) -> None:
    """Refused once decommissioning has destroyed the key-encryption keys, before a use case seals
    or opens anything (a new secret, a child's identity, a search's terms) with a key not there."""
    if keychain.decommissioned(ctx.keys):
        raise Refused(KEYS_DESTROYED, reason="keys destroyed")
