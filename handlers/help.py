"""Help and usage: what a person can do, kindly and briefly."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Audience, Request, Result, Spec, StepUp, not_active
from handlers.examples import for_any_store, on_demo_store
from handlers.grammar import looks_like_a_name, near_miss, near_search
from handlers.vocabulary import Action, Actor, Outcome, Reply, Role, only_who_may
from store.lifecycle import decommission

INTRO = (
    "Signpost tells you who else is working, or has worked, with a child: their contact details only, never case data."
)
# Children of the demo register (`signpost seed-demo`), so that each example answers as described
# there; tests/bot/console/test_help_examples.py holds them to it.
BY_REFERENCE = "999 000 1006"
BY_NAME = "Ava Price 05/01/2014 NS1 3LY"
EXAMPLES = (
    f"{BY_REFERENCE} (a reference number)",
    f"{BY_NAME} (name, date of birth, optional postcode)",
)
# Any other store (a register imported from feeds) holds none of the demo's children or people, so
# help shows the forms instead (handlers/examples.py says which examples are left out there).
FORMS = (
    "REFERENCE (a child's reference number)",
    "GIVEN FAMILY DD/MM/YYYY [POSTCODE] (name, date of birth, optional postcode)",
)
# Never repeats the name typed: nothing personal goes back that the answer does not need.
NAME_WITHOUT_DATE = (
    "To search by name, Signpost also needs the child's date of birth (DD/MM/YYYY); a postcode helps too. "
    f"For example: {BY_NAME}. Or search by reference number, e.g. {BY_REFERENCE}."
)
NAME_WITHOUT_DATE_FORMS = (
    "To search by name, Signpost also needs the child's date of birth: GIVEN FAMILY DD/MM/YYYY [POSTCODE] "
    "(a postcode helps too). Or search by the child's reference number."
)


SWITCHED_OFF = "Signpost has been switched off: it no longer answers searches or requests, and its personal data "


async def destruction_said(session: AsyncSession) -> str:
    """Once switched off, where destruction stands: "is being destroyed by …, as announced", or
    "was destroyed on …" once it is complete (help and the switch-off gate say it alike)."""
    row = await decommission.current(session)
    if row is not None and row.state == "destroyed" and row.completed_at is not None:
        return f"was destroyed on {row.completed_at:%d/%m/%Y}."
    by = f" by {row.destroy_by:%d/%m/%Y}" if row is not None else ""
    return f"is being destroyed{by}, as announced."


STILL_ANSWERED = "still answered now that Signpost is switched off"


def may_send(spec: Spec, actor: Actor | None) -> bool:
    """Whether the identity and role gates let ``actor`` (None: not registered) send this command."""
    if spec.audience is Audience.REGISTERED and (actor is None or actor.status != "active"):
        return False
    return spec.role is None or (actor is not None and spec.allows(actor))


def may_search(actor: Actor | None) -> bool:
    """Whether ``actor`` may search for a child (by reference, or by name and date of birth)."""
    return actor is not None and actor.status == "active" and actor.may(Role.PRACTITIONER)


def first_code_asked_at(specs: Sequence[Spec], actor: Actor | None) -> str:
    """What Signpost first asks ``actor`` for a code at, to follow "at their first" or "at your next":
    a search, for whoever may search; otherwise a use of the commands of their role that need one
    (an admin searches nothing: approve and deny standing in for a duty manager, unlink, decommission …)."""
    stepped = [spec for spec in _listed(specs, actor) if spec.stepup is not StepUp.NONE and spec.role is not None]
    names = [spec.name for spec in stepped]
    if may_search(actor):
        # A duty manager's `pending` asks as a search does: whichever they send first.
        deciding = [spec.name for spec in stepped if spec.role in DECIDERS]
        return "search" if not deciding else "search or use of " + _either(deciding)
    if not names:
        return "command that needs one"
    return "use of " + _either(names)


DECIDERS = (Role.DUTY_MANAGER, Role.ADMIN)


def _either(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _listed(specs: Sequence[Spec], actor: Actor | None) -> list[Spec]:
    """The commands help lists for ``actor``: those the policy chain would let them send by name."""
    return [
        spec
        for spec in specs
        if spec.keyword
        and spec.summary
        and may_send(spec, actor)
        # "register" to someone already a practitioner
        and not (spec.unlinked_only and actor is not None)
    ]


def help_lines(
    specs: Sequence[Spec], actor: Actor | None, switched_off: bool = False, demo_store: bool = True
) -> tuple[str, ...]:
    """What ``actor`` may send, one line each: the searches (for those who may search) and every
    command the policy chain would let them use; once Signpost is switched off, only what still
    answers (``Spec.after_switch_off``, of a command or of its sub-commands). Examples that name the
    demo's children or people only on the demo store (``demo_store``); elsewhere the forms."""
    searches = EXAMPLES if demo_store else FORMS
    lines = [f"• {example}" for example in searches] if may_search(actor) and not switched_off else []
    for spec in _listed(specs, actor):
        if not switched_off or spec.after_switch_off:
            usage = spec.usage or spec.name
            lines.append(f"• {usage if demo_store else for_any_store(usage)}: {spec.summary}")
        elif still := [f"{spec.name} {word}" for word, sub in spec.subcommands.items() if sub.after_switch_off]:
            lines.append(f"• {' · '.join(still)}: {STILL_ANSWERED}")
    return tuple(lines)


def _to_signpost(text: str) -> bool:
    """Whether ``text`` starts with Signpost's name ("signpost help", "/signpost help"): a command,
    not a name without a date of birth."""
    return text.lower().split(" ", 1)[0].lstrip("/") == _SIGNPOST


SEARCH_HINT = "To search, send the name and date of birth on their own, with no word before them."
_SIGNPOST = "signpost"


def did_you_mean(text: str, specs: Sequence[Spec], actor: Actor | None, switched_off: bool = False) -> str | None:
    """ "Did you mean 'enrol'?" when the first word of ``text`` is close to a command help lists for
    ``actor`` ("enroll", "/signpost help", "histroy", "help()"), or how to search when it is close
    to the word search and ``actor`` may search; None otherwise. Says back only a command's own
    name, never what was typed."""
    words = text.lower().split()
    if _to_signpost(text):  # "/signpost help" typed in the bot's own chat
        words = words[1:]
    if not words:
        return None
    word = words[0].lstrip("/").removesuffix("()")
    names = ["help"] + [  # help is not among the commands it lists, and answers everyone, always
        spec.name
        for spec in _listed(specs, actor)
        if not switched_off or spec.after_switch_off or any(s.after_switch_off for s in spec.subcommands.values())
    ]
    close = difflib.get_close_matches(word, names, n=1, cutoff=CLOSE_ENOUGH)
    if close:
        return f"Did you mean '{close[0]}'?"
    if near_search(word) and may_search(actor) and not switched_off:
        return SEARCH_HINT
    return None


CLOSE_ENOUGH = 0.75
"""How alike a word must be to a command's name to suggest it (``difflib``'s ratio): "enroll",
"histroy" and "aprove" are; "quit", "exit" and "hello" are not."""


def _left(req: Request) -> bool:
    """Whether the asker is a practitioner whose access is not active (recorded as gone): help and
    usage answer everyone, but they list nothing a leaver may send (an empty "You can send:"), so
    a leaver is told what every other command tells them."""
    return req.actor is not None and req.actor.status != "active"


def _switched_off(req: Request) -> bool:
    return decommission.is_switched_off(req.standing.switch_off, req.now.date())


def menu(specs: Sequence[Spec]) -> list[tuple[str, str]]:
    """(command word, what it does) of every command a person sends by name, for a front end's
    command menu: those for everyone first, then duty managers'; admins' commands are left out (a
    platform's menu is the same for every user, and admins have ``help``)."""
    listed = [s for s in specs if s.keyword and s.summary and s.role is not Role.ADMIN]
    everyone_first = sorted(listed, key=lambda s: (s.role not in (None, Role.PRACTITIONER), _rank(s.name)))
    return [(spec.name, spec.summary) for spec in everyone_first]


# What people send most, first: a platform's menu may show only the first few (Teams: ten).
MENU_ORDER = ("help", "enrol", "history", "request", "message", "reply", "register", "pending", "approve", "deny")


def _rank(name: str) -> int:
    return MENU_ORDER.index(name) if name in MENU_ORDER else len(MENU_ORDER)


def make_specs(all_specs: Sequence[Spec]) -> tuple[Spec, ...]:
    """help and usage need to know every command, so they are built from the full list."""

    async def show_help(ctx: Context, req: Request, session: AsyncSession) -> Result:
        if _left(req):
            return not_active()
        off = _switched_off(req)
        lines = help_lines(all_specs, req.actor, off, await on_demo_store(session))
        intro = SWITCHED_OFF + await destruction_said(session) if off else INTRO
        return Result(Reply(Outcome.INFO, intro, lines=lines, lines_are_commands=True))

    async def usage(ctx: Context, req: Request, session: AsyncSession) -> Result:
        if _left(req):
            return not_active()
        hint = near_miss(req.args)  # first: text with a hidden character is never read as a name
        off = _switched_off(req)
        if hint is None and not _to_signpost(req.args) and looks_like_a_name(req.args):
            if req.actor is not None and req.actor.status == "active" and not may_search(req.actor):
                # Someone who may not search meant a command, not a name: "decommision status" is a
                # typo of one they may use, never a search they are refused.
                hint = did_you_mean(req.args, all_specs, req.actor, off)
                if hint is None:
                    text = only_who_may(Role.PRACTITIONER, "search", Action.SEARCH)
                    return Result(Reply(Outcome.REFUSED, text), detail=f"needs {Role.PRACTITIONER}")
            else:
                told = NAME_WITHOUT_DATE if await on_demo_store(session) else NAME_WITHOUT_DATE_FORMS
                return Result(Reply(Outcome.INVALID, told), detail="name without date of birth")
        hint = hint or did_you_mean(req.args, all_specs, req.actor, off)
        text = f"Sorry, I didn't understand that. {hint + ' ' if hint else ''}You can send:"
        lines = help_lines(all_specs, req.actor, off, await on_demo_store(session))
        return Result(Reply(Outcome.INVALID, text, lines=lines, lines_are_commands=True), detail="usage")

    return (
        Spec(
            name="help",
            action=Action.HELP,
            run=show_help,
            summary="what you can ask",
            usage="help",
            audience=Audience.ANYONE,
            role=None,
            after_switch_off=True,
        ),
        Spec(
            name="usage",
            action=Action.USAGE,
            run=usage,
            audience=Audience.ANYONE,
            role=None,
            keyword=False,
            audit_terms=False,
        ),
    )
