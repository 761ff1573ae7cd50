"""Access control's policy numbers (defaults from the product brief), in a module of their own so
that registration and access requests both read them (``requests`` imports ``registration``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class AccessPolicy:
    """Policy numbers from the product brief."""

    grant_default: timedelta = timedelta(hours=24)
    grant_max: timedelta = timedelta(days=7)
    grant_min: timedelta = timedelta(hours=1)
    request_lifetime: timedelta = timedelta(hours=24)
    escalate_after: timedelta = timedelta(minutes=30)
    # Not in the brief: a registration nobody decides closes after a week, so that no duty manager
    # links, months later, an account whose owner has forgotten asking (or which changed hands).
    registration_lifetime: timedelta = timedelta(days=7)
    min_reason: int = 5


POLICY = AccessPolicy()
