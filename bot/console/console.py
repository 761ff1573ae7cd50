"""The terminal front end: interactive on a TTY (readline history), one message per line otherwise.

Meta-commands: ``:as PRACTITIONER_ID`` switches identity (to rehearse multi-person flows), ``:quit``;
``:clock +25h`` moves time forward only when started with SIGNPOST_DEV_CLOCK=1 (bot/devclock.py).
Notices for the current identity are printed after each turn (bot/console_notices.py).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import uuid
from typing import TextIO

from bot.app import Signpost
from bot.cli.common import opened
from bot.console import devclock
from bot.console.notices import ConsoleDeliverer
from bot.console.render import render
from bot.enrol_page import terminal_enrolment
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from handlers.operator.register import demo_examples, is_disposable_demo
from handlers.vocabulary import Command, Platform, Principal, Reply

DEFAULT_AS = "NS-P0001"


class Console:
    def __init__(self, app: Signpost, as_id: str, stdin: TextIO, stdout: TextIO) -> None:
        self.app = app
        self.as_id = as_id
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = stdin.isatty()
        if self.interactive:
            import readline  # noqa: F401  (line editing and history for input())
        self.outbox = Outbox(app.ctx, [ConsoleDeliverer(lambda: self.as_id, self.say)])
        self.scheduler = Scheduler(app.ctx, standard_tasks(self.outbox))

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    async def read(self, prompt: str, *, secret: bool = False) -> str | None:
        """One line without blocking the event loop; None at end of input."""
        if self.interactive:
            reader = (lambda: getpass.getpass(prompt)) if secret else (lambda: input(prompt))
            try:
                return await asyncio.to_thread(reader)
            except EOFError:
                return None
        line = await asyncio.to_thread(self.stdin.readline)
        return None if line == "" else line.rstrip("\n")

    def principal(self) -> Principal:
        return Principal(Platform.CONSOLE, "local", self.as_id)

    async def send(self, text: str, **extra: str) -> Reply:
        command = Command(self.principal(), text, uuid.uuid4().hex, channel="terminal", **extra)
        return await self.app.dispatcher.handle(command)

    async def greet(self) -> None:
        self.say(f"Signpost console — acting as {self.as_id}. Type help, :as PRACTITIONER_ID, or :quit.")
        examples = await demo_examples(self.app.ctx)
        if examples is not None:
            self.say("Try these on the demo data:")
            self.say(f"  {examples.keyed}            (by reference)")
            self.say(f"  {examples.demographic}   (by name and date of birth)")
            self.say(f"  {examples.shielded}            (a shielded child)")

    async def catch_up(self) -> None:
        """Periodic work that fell due, then notices for whoever the console acts as now."""
        await self.scheduler.run_due()
        await self.outbox.deliver_due()

    async def run(self) -> int:
        await self.greet()
        await self.catch_up()
        background = self.scheduler.start(tick=2.0) if self.interactive else None
        try:
            return await self.loop()
        finally:
            if background is not None:
                background.cancel()

    async def loop(self) -> int:
        while True:
            line = await self.read(f"{self.as_id}> ")
            if line is None:
                return 0
            text = line.strip()
            if not text:
                continue
            if text in (":quit", ":q", ":exit"):
                return 0
            if text.startswith(":as"):
                self.switch(text)
            elif text.startswith(":clock"):
                self.say(devclock.clock_command(self.app.ctx.clock, text))
            elif not await self.exchange(text):
                return 0
            await self.catch_up()

    def switch(self, text: str) -> None:
        _, _, who = text.partition(" ")
        if not who.strip():
            self.say("Usage: :as PRACTITIONER_ID")
            return
        self.as_id = who.strip()
        self.say(f"Now acting as {self.as_id}.")

    async def exchange(self, text: str) -> bool:
        """Send one message, then answer any step-up challenges; False when input ended."""
        reply = await self.send(text)
        self.show(reply)
        while reply.challenge is not None:
            code = await self.read("Code: ", secret=True)
            if code is None:
                return False
            if not code.strip():
                self.say("No code entered, so nothing was sent.")
                return True
            reply = await self.send("code", code=code.strip(), challenge_id=reply.challenge.challenge_id)
            self.show(reply)
        return True

    def show(self, reply: Reply) -> None:
        if reply.enrolment_uri is not None:
            # Only the local console gets the seed: it draws the QR code right here.
            self.say(terminal_enrolment(reply.enrolment_uri))
        self.say(render(reply))


async def console_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        if devclock.enabled(os.environ):
            if not await is_disposable_demo(app.ctx):
                print(devclock.NOT_DEMO, file=sys.stderr)
                return 2
            app.ctx.clock = devclock.DevClock(app.ctx.clock)
            print(f"{devclock.ENV}=1: development clock, ':clock +25h' moves time forward.", file=sys.stderr)
        return await Console(app, args.as_id or DEFAULT_AS, sys.stdin, sys.stdout).run()
