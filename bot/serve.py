"""`signpost run`: the configured front ends on one aiohttp application, or the console."""

from __future__ import annotations

import argparse

from bot import console


async def run_command(args: argparse.Namespace) -> int:
    # Chat front ends attach here as they land; with none configured, run the console.
    return await console.console_command(args)
