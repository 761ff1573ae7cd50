"""The policy chain every command passes before its handler runs, in this order:

1. identity: who is asking, and whether their access is active (``Spec.audience``);
2. role: whether they hold the role the command needs (``Spec.role``);
3. switch-off: once Signpost is switched off, only commands declaring ``Spec.after_switch_off``
   run, and they run at once (``ADMIT``): nobody can enrol or answer a code any more, so asking
   for one would lock the admins out of status and certificate for good
   (``handlers.lifecycle.flows.switch_off_gate``);
4. arguments: whether the text is well formed, by the handler's own parse without the database
   (``Spec.check``), answered as the handler answers it, so nobody spends a code on a typo (after
   switch-off: a search that can no longer run is told so, not how to type it);
5. step-up: a fresh authenticator code before results and decisions (``Spec.stepup``;
   ``handlers.stepup.flow.StepUpGate``).

Each gate reads only the command's ``Spec`` and the request, and answers a ``Verdict``: a
``Result`` to stop there, ``ADMIT`` to run the handler now, None to go on.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import (
    Audience,
    Request,
    Result,
    Spec,
    Verdict,
    checked,
    not_active,
    refusal,
    usage_answer,
)
from handlers.grammar import UsageError
from handlers.lifecycle.flows import switch_off_gate
from handlers.stepup.flow import StepUpGate, StepUpPolicy
from handlers.vocabulary import NO_SUCH_PRACTITIONER, Platform, only_who_may, sentence


class Gate(Protocol):
    """One link of the policy chain: a Result to stop here, ADMIT to run the handler now, None to go on."""

    async def __call__(self, ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Verdict: ...


NOT_REGISTERED = (
    "You're not registered with Signpost yet. Ask your duty manager to approve you, "
    "or send: register YOUR_PRACTITIONER_ID"
)
# The console has no chat account to register: it acts as an id from the register.
NOT_IN_REGISTER_CONSOLE = f"{sentence(NO_SUCH_PRACTITIONER)}. Use ':as PRACTITIONER_ID' with an id that is."


async def identity_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
    if spec.audience is Audience.ANYONE:
        return None
    if req.actor is None:
        principal = req.command.principal
        if principal.platform is Platform.CONSOLE:
            return refusal(NOT_IN_REGISTER_CONSOLE, "unknown identity")
        return refusal(NOT_REGISTERED, "unknown identity")
    if req.actor.status != "active":
        return not_active()
    return None


async def role_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
    if spec.role is None or req.actor is None or spec.allows(req.actor):
        return None
    said = only_who_may(spec.role, spec.name, spec.action, admins=spec.admins_stand_in)
    return refusal(said, f"needs {spec.role}")


async def check_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
    """Malformed arguments answered at once, exactly as the handler answers them (``Spec.check``),
    and a word too many for a command that takes no or fixed words (``Spec.words``)."""
    try:
        return checked(spec, req.args, req.now)
    except UsageError as exc:
        return usage_answer(spec, exc)


# Who is asking and what they may do: enough for a Dispatcher with no feature gates (tests, tools).
BASE: tuple[Gate, ...] = (identity_gate, role_gate)


def policy_chain(stepup: StepUpPolicy | None = None) -> tuple[Gate, ...]:
    """The whole chain a running Signpost puts every command through, in order."""
    return (*BASE, switch_off_gate, check_gate, StepUpGate(stepup or StepUpPolicy()))
