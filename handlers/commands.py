"""Every command Signpost knows, in one list. Each feature contributes its module's SPECS."""

from __future__ import annotations

from handlers import help as help_commands
from handlers import history, home, lead_setting, search
from handlers.access import relay
from handlers.access import requests as access
from handlers.dispatch.spec import Spec
from handlers.lifecycle import flows as lifecycle
from handlers.stepup import reset


def all_specs(*built: Spec) -> tuple[Spec, ...]:
    """Every Spec; ``built`` are those made at wiring time (they need the dispatcher or settings)."""
    features: tuple[Spec, ...] = (
        *search.SPECS,
        *home.SPECS,
        *access.SPECS,
        *relay.SPECS,
        *lead_setting.SPECS,
        *history.SPECS,
        *lifecycle.SPECS,
        *reset.SPECS,
        *built,
    )
    return (*help_commands.make_specs(features), *features)
