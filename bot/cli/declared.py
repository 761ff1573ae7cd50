"""What each `signpost` command declares beside its function: ``after_switch_off``, whether it still
runs once Signpost is switched off (``set_defaults(func=…, after_switch_off=…)``; a test holds
that every command says). Reads that prove what happened (decommission status and certificate,
audit, the transparency report, the schema) and destruction itself do; anything that takes in or
hands out personal data, or changes keys, does not. The refusal is decided in one place,
handlers/operator/decommissioned.py, which ``operating`` asks before the command does anything."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store's side, imported when a command runs: building the parser stays light
    from handlers.operator.decommissioned import NotOnceSwitchedOff


def not_once_switched_off(args: argparse.Namespace) -> NotOnceSwitchedOff | None:
    """None for a command that still runs once switched off; otherwise how it is named, and what
    still works, for its refusal. A command that declares nothing is refused then (fail closed)."""
    if getattr(args, "after_switch_off", False) is True:
        return None
    from bot.cli.main import commands, parser  # built again (~10 ms) only for such a command: its refusal names
    from handlers.operator.decommissioned import NotOnceSwitchedOff

    found = commands(parser())
    named = next((path for path, command in found.items() if command.get_default("func") is args.func), "this command")
    return NotOnceSwitchedOff(f"signpost {named}", still_working(found))


def still_running(found: dict[str, argparse.ArgumentParser]) -> list[str]:
    """The commands (by path, as ``bot.cli.main.commands`` finds them) that still run once switched off."""
    return [path for path, command in found.items() if command.get_default("after_switch_off") is True]


def still_working(found: dict[str, argparse.ArgumentParser]) -> str:
    """``decommission status, certificate and destroy; audit export …``: the commands that still run
    once switched off, grouped by their first word, decommissioning's own first."""
    groups: dict[str, list[str]] = {"decommission": []}
    for path in still_running(found):
        first, _, rest = path.partition(" ")
        groups.setdefault(first, []).append(rest)
    return "; ".join(f"{first} {_and(rests)}".strip() for first, rests in groups.items() if rests) + "."


def describe(found: dict[str, argparse.ArgumentParser]) -> None:
    """`signpost decommission --help` says what still runs once switched off (the rest is refused)."""
    group = found["decommission"]
    said = (
        "From the switch-off date nothing new is taken in or handed out: only these commands still run, "
        f"and every other is refused: {still_working(found)}"
    )
    group.description = f"{group.description}\n" + "\n".join(textwrap.wrap(said, 100))


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
