"""Every command Signpost knows, in one list. Each feature contributes its module's SPECS."""

from __future__ import annotations

from handlers import help as help_commands
from handlers import history
from handlers import search
from handlers.dispatch import Spec


def all_specs() -> tuple[Spec, ...]:
    features: tuple[Spec, ...] = (*search.SPECS, *history.SPECS)
    return (*help_commands.make_specs(features), *features)
