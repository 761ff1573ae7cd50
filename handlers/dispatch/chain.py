"""The policy chain every command passes before its handler runs: identity, role, …

Each gate reads the command's ``Spec`` and answers a ``Result`` to stop there, or None to go on.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, refusal
from handlers.vocabulary import Actor, Role


class Gate(Protocol):
    """One link of the policy chain: return a Result to stop here, None to go on."""

    async def __call__(self, ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None: ...


NOT_REGISTERED = (
    "You're not registered with Signpost yet. Ask your duty manager to approve you, "
    "or send: register YOUR_PRACTITIONER_ID"
)


async def identity_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
    if spec.role is None:
        return None
    if req.actor is None:
        return refusal(NOT_REGISTERED, "unknown identity")
    if req.actor.status != "active":
        return refusal("Your Signpost access is not active. Please contact your duty manager.", "inactive")
    return None


def satisfies(actor: Actor, role: Role) -> bool:
    """Admins stand in for duty managers: escalated requests reach them with Approve/Deny."""
    return actor.has(role) or (role is Role.DUTY_MANAGER and actor.has(Role.ADMIN))


async def role_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
    if spec.role is None or req.actor is None or satisfies(req.actor, spec.role):
        return None
    return refusal(f"Only a {spec.role.replace('_', ' ')} can use '{spec.name}'.", f"needs {spec.role}")
