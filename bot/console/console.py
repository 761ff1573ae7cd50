"""The terminal front end: interactive on a TTY (readline history), one message per line otherwise.

Meta-commands (the console's own, never sent to Signpost nor audited): ``:as PRACTITIONER_ID``
switches identity (to rehearse multi-person flows; only a practitioner in the register),
``quit``/``exit``/``:quit`` leave (Ctrl-C too, with status 130), ``clear`` clears the screen,
``?``/``:help`` are ``help``;
``:clock +25h`` moves time forward only when started with SIGNPOST_DEV_CLOCK=1 (devclock.py).
Notices for the current identity are printed after each turn (notices.py). The log goes to a file
(SIGNPOST_LOG_FILE), never into the conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import os
import sys
import uuid
import warnings
from contextlib import suppress
from typing import TextIO

import structlog

from bot.app import Signpost
from bot.cli.arguments import HIDDEN_ID
from bot.cli.common import CommandFailed, opened, serving_with_keys
from bot.config import Settings, load_settings
from bot.console import devclock
from bot.console.lines import SKIP_LIMIT_TEXT, LineReader
from bot.console.notices import ConsoleDeliverer
from bot.console.render import plain, render
from bot.console.terminal import hung_up, in_daemon_thread, modes_kept
from bot.enrol_page import terminal_enrolment
from bot.logging import to_file
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from handlers.grammar import hides_characters, trim
from handlers.operator import people
from handlers.operator.register import demo_examples, is_disposable_demo
from handlers.vocabulary import (
    NO_SUCH_PRACTITIONER,
    Action,
    Challenge,
    Command,
    Platform,
    Principal,
    Reply,
    ThenEnrol,
    sentence,
)
from store.people.credentials import PENDING
from store.register.synthetic import DemoExamples

DEFAULT_AS = "NS-P0001"
QUIT = frozenset({"quit", "exit", "quit()", "exit()", ":quit", ":q", ":exit"})  # quit(): as in Python
HELP = frozenset({"?", ":help"})
CLEAR = frozenset({"clear", ":clear"})
CLEAR_SCREEN = "\033[H\033[2J"
NO_CODE = "No code entered, so nothing was sent."
# As `signpost totp enrol` refuses (bot/cli/totp.py): a QR code and secret printed into a pipe or a
# redirected file may be kept (`make run > session.log`), and no TOTP secret may be in a log. Decided
# before anything is issued, so no secret is made and no set-up is left pending.
NOT_A_TERMINAL = (
    "enrol shows the authenticator secret only on a terminal, and this console's output is not one "
    "(a pipe or file may be kept as a log), so nothing was issued: start the console at a terminal, "
    "its output not piped or redirected, and send enrol there."
)
NOT_A_TERMINAL_DETAIL = "not a terminal"
META_HELP = (
    "In this console also:",
    "  :as PRACTITIONER_ID   act as another practitioner (to rehearse a duty manager's or an admin's part)",
    "  clear                 clear the screen",
    "  ? or :help            this help",
    "  quit or exit          leave (Ctrl-D or Ctrl-C too)",
)


# Before the demo searches, to a practitioner with no authenticator yet: each would be answered "Send: enrol".
ENROL_FIRST = "Send enrol first: Signpost asks for a code from an authenticator app before any search."
# Said by a console whose output is no terminal in place of every "send: enrol" (vocabulary.ThenEnrol),
# which it refuses there (NOT_A_TERMINAL): what works instead, as README says (the operator's `totp
# enrol`, whose first code the console's code prompt takes, from the next line).
PIPED_ENROL = (
    "start signpost console at a terminal, its output not piped or redirected, and send enrol there; or a "
    "Signpost admin runs signpost totp enrol {id} --secret-file PATH on the host, and a code from that secret "
    "answers the code prompt at your next {at}."
)
NEEDS_STREAMS = "the console needs a terminal, or an input it can read and an output it can write"
PIPED_ENROL_FIRST = "Set up an authenticator app first: Signpost asks for a code from one before any search."
# Before the demo searches, to one whose authenticator was issued (an admin's `totp enrol`) and not
# yet confirmed: no `enrol` is needed, only its first code, which the first search asks for.
FIRST_CODE_WAITS = "Your authenticator is set up and waits for its first code: your first search asks for one from it."


class Console:
    def __init__(self, app: Signpost, as_id: str, stdin: TextIO, stdout: TextIO, stderr: TextIO | None = None) -> None:
        self.app = app
        self.as_id = as_id.strip().upper()  # as ':as' reads it
        # Whether ``as_id`` may be said back: an id the register held when it was chosen, or the
        # default (the demo's, never typed). Once Signpost is switched off the console starts as any
        # id (``unknown_start``); one typed then that is nobody's may be a child's name, never repeated.
        self.sayable = True
        # What this identity's first code is asked at, said where a piped console cannot enrol them
        # (PIPED_ENROL): a search, or an admin's commands; read as the console takes the identity.
        self.first_code_at = "search"
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr or stdout
        self.interactive = stdin.isatty()
        self.lines = LineReader(stdin)  # piped: a line at most a command's length (``bot.console.lines``)
        # A line typed at the code prompt that was not a code: the next input, as if typed at the prompt.
        self.typed_ahead: str | None = None
        # The code prompt someone left by typing a command there (``exchange``), with who was asked:
        # a code typed next at the console's own prompt answers it, as it would have there.
        self.left_prompt: tuple[str, Challenge] | None = None
        if self.interactive:
            import readline  # noqa: F401  (line editing and history for input())
        self.outbox = Outbox(app.ctx, [ConsoleDeliverer(lambda: self.as_id, self.say, self.said)])
        self.scheduler = Scheduler(app.ctx, standard_tasks(self.outbox))

    def say(self, text: str) -> None:
        """Everything the console prints goes through here, inert for the terminal (``plain``): a
        typed ``:x`` or ``:as`` line is echoed, and an escape sequence in it must not be obeyed."""
        try:
            self.stdout.write(plain(text) + "\n")
            self.stdout.flush()
        except BrokenPipeError:  # its reader has gone (`signpost console | head`): ended quietly, by main()
            raise
        except OSError as exc:  # `>/dev/full`, a disk full or failing: said in one line, not as a crash
            if self.interactive and hung_up(self.stdin):  # the terminal went away: nobody left to tell
                self.terminal_closed()
                return
            self.discard_output()
            raise CommandFailed(f"{NEEDS_STREAMS}: its output cannot be written ({exc.strerror})") from None

    def discard_output(self) -> None:
        """Python flushes stdout again at exit: what could not be written goes nowhere then, rather than
        failing once more as "Exception ignored"."""
        if self.stdout is sys.stdout:
            with suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(devnull, self.stdout.fileno())
                finally:
                    os.close(devnull)

    async def read(self, prompt: str, *, secret: bool = False) -> str | None:
        """One line without blocking the event loop; None at end of input."""
        if self.interactive:
            reader = (lambda: getpass.getpass(prompt)) if secret else (lambda: input(prompt))
            try:
                return await in_daemon_thread(reader)
            except EOFError:  # Ctrl-D: end the prompt's line, so the shell's prompt starts its own
                try:
                    self.stdout.write("\n")
                    self.stdout.flush()
                except OSError:
                    if not hung_up(self.stdin):
                        raise
                    self.terminal_closed()
                return None
            except OSError:  # getpass writing its prompt to a terminal that has gone
                if not hung_up(self.stdin):
                    raise
                self.terminal_closed()
                return None
        return await in_daemon_thread(self.lines)

    def terminal_closed(self) -> None:
        """The terminal went away at a prompt (its window closed, an SSH connection dropped): the end
        of input, as Ctrl-D is, with nobody left to tell. Output goes nowhere from now on, so that
        nothing still to be written (Python's own flush at exit among it) fails on the way out."""
        structlog.get_logger("signpost.console").info("console_terminal_closed")
        with suppress(OSError, ValueError):  # io.StringIO has no fileno
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stdout.fileno())

    def principal(self) -> Principal:
        return Principal(Platform.CONSOLE, "local", self.as_id)

    async def send(self, text: str, **extra: str) -> Reply:
        command = Command(self.principal(), text, uuid.uuid4().hex, channel="terminal", **extra)
        return await self.app.dispatcher.handle(command)

    @property
    def shown_id(self) -> str:
        """Whom the console acts as, in its sentences (``sayable``)."""
        return self.as_id if self.sayable else "an id not in the register"

    def not_in_register(self) -> str:
        """That the register holds no practitioner by ``as_id``, naming it only when it is the default."""
        return (
            f"There is no practitioner {DEFAULT_AS} in the register"
            if self.as_id == DEFAULT_AS
            else sentence(NO_SUCH_PRACTITIONER)
        )

    async def greet(self) -> None:
        self.say(f"Signpost console — acting as {self.shown_id}. Type help, :as PRACTITIONER_ID, or quit.")
        self.first_code_at = await people.first_code_at(self.app.ctx, self.as_id)
        if await people.practitioner(self.app.ctx, self.as_id) is None:
            off = await people.switched_off_said(self.app.ctx)
            if off is not None:  # started anyway (``unknown_start``): say why nothing will be answered
                self.say(f"{off[0]} {self.not_in_register()}.")
        examples = await demo_examples(self.app.ctx)
        if examples is not None:
            # Searches only to someone who may search, today: an admin was offered them, then refused
            # each, and so was everyone once Signpost was switched off.
            if await people.may_search_now(self.app.ctx, self.as_id):
                state = await people.authenticator_state(self.app.ctx, self.as_id)
                if state is None:
                    piped = f"{PIPED_ENROL_FIRST} To set one up: {PIPED_ENROL.format(id=self.as_id, at='search')}"
                    self.say(ENROL_FIRST if self.stdout.isatty() else piped)
                elif state == PENDING:
                    self.say(FIRST_CODE_WAITS)
                self.say("Try these on the demo data:")
                for command, what in (
                    (examples.keyed, "by reference"),
                    (examples.demographic, "by name and date of birth"),
                    (examples.shielded, "a shielded child"),
                ):
                    if command:  # a small demo store (seed-demo --children N) may hold no child for one
                        self.say(f"  {command:<34} ({what})")
            held = [
                (who, what)
                for who, what in (
                    (examples.practitioner_id, "a practitioner"),
                    (examples.duty_manager_id, "their duty manager: pending, approve, deny"),
                    (examples.admin_id, "an admin: unlink, decommission"),
                )
                if who  # after a decommissioning's destruction, only those the register still holds
            ]
            if held:
                self.say("Demo people to act as (:as ID):")
            for who, what in held:
                self.say(f"  {who:<34} ({what})")

    async def catch_up(self) -> None:
        """Periodic work that fell due, then notices for whoever the console acts as now."""
        await self.scheduler.run_due()
        await self.outbox.deliver_due()

    async def unknown_start(self) -> str | None:
        """Why the console cannot start as ``as_id`` (not in the register), or None when it can.

        Checked as ``:as`` checks, so that nobody is greeted as someone Signpost then refuses. Once
        Signpost is switched off it refuses everyone alike, so the console starts as anyone, greets
        with where Signpost stands, and each message is answered by the dispatcher as ever: "switched
        off", or for a command only someone in the register may send, that this id is not in it
        (README: `make run` after the decommissioning rehearsal, when destruction has left nobody in
        the register to act as)."""
        if await people.practitioner(self.app.ctx, self.as_id) is not None:
            return None
        self.sayable = self.as_id == DEFAULT_AS
        if await people.switched_off_said(self.app.ctx) is not None:
            return None
        examples = await demo_examples(self.app.ctx)
        if examples is not None:
            ids = demo_people(examples)
            if not ids:  # a decommissioned demo store: nobody left to act as
                return f"{self.not_in_register()}."
            return f"{self.not_in_register()}. Start with --as ID: on the demo data {either(ids)}."
        return (
            f"{self.not_in_register()} (the demo data is not loaded in the store "
            "SIGNPOST_DATABASE_URL names). "
            "Start with --as and a practitioner_id from your practitioners feed, or load the demo data into an "
            "empty store: signpost seed-demo --if-empty."
        )

    async def run(self) -> int:
        refused = await self.unknown_start()
        if refused is not None:
            self.stderr.write(plain(refused) + "\n")
            return 2
        with modes_kept(self.stdin):
            try:
                return await self.session()
            except asyncio.CancelledError:
                # Ctrl-C: asyncio.run cancels the console's task and main() answers 130; the store closes
                # on the way out, and no thread reading the terminal holds up the exit (terminal.py).
                self.say(("\n" if self.interactive else "") + "Bye.")
                raise

    async def session(self) -> int:
        await self.greet()
        await self.catch_up()
        background = self.scheduler.start(tick=2.0) if self.interactive else None
        try:
            return await self.loop()
        finally:
            if background is not None:
                background.cancel()

    async def next_line(self) -> str | None:
        """The next input: a line already typed at the code prompt, else one read at the prompt."""
        line, self.typed_ahead = self.typed_ahead, None
        return line if line is not None else await self.read(f"{self.as_id}> " if self.sayable else "> ")

    async def loop(self) -> int:
        while True:
            line = await self.next_line()
            if line is None and self.lines.ended:  # no line end within SKIP_LIMIT: the rest is no text
                self.say(
                    f"No line end in the {SKIP_LIMIT_TEXT} after that line, so the rest of the input was not read."
                )
                return 1
            if line is None:
                return 0
            text = trim(line)
            if not text:
                continue
            word = text.lower()
            if word in QUIT:
                return 0
            if word in CLEAR:
                self.stdout.write(CLEAR_SCREEN if self.stdout.isatty() else "")
                continue
            if word in HELP:
                text = word = "help"
            if word == ":as" or word.startswith(":as "):
                await self.switch(text)
            elif word.startswith(":clock"):
                self.say(devclock.clock_command(self.app.ctx.clock, text))
            elif word.startswith(":"):  # a console command mistyped: the console's own, never sent
                self.say(f"{text.split()[0]} is not a console command.")
                self.say("\n".join(META_HELP))
            elif not await self.exchange(text):
                return 0
            if word.split(None, 1)[0] == "help":  # "help me" is Signpost's help too
                self.say("\n".join(META_HELP))
            await self.catch_up()

    async def switch(self, text: str) -> None:
        """``:as ID``: act as a practitioner in the register (ids are matched whatever their case)."""
        who = text[3:].strip().upper()
        if not who:  # the demo's duty manager as the example, on the demo store only (handlers/examples.py)
            examples = await demo_examples(self.app.ctx)
            example = "" if examples is None or not examples.duty_manager_id else examples.duty_manager_id
            self.say(f"Usage: :as PRACTITIONER_ID{f', e.g. :as {example}' if example else ''}")
            return
        if hides_characters(who):  # never looked up: a lone surrogate cannot even be encoded for the query
            self.say(f"{sentence(HIDDEN_ID)}, so still acting as {self.shown_id}.")
            return
        if await people.practitioner(self.app.ctx, who) is None:
            if await self.is_id_and_more(who):
                self.say(
                    f"Give one practitioner id after :as, with nothing after it, so still acting as {self.shown_id}."
                )
                return
            self.say(f"{sentence(NO_SUCH_PRACTITIONER)}, so still acting as {self.shown_id}.")
            examples = await demo_examples(self.app.ctx)
            ids = [] if examples is None else demo_people(examples)
            if ids and await people.switched_off_said(self.app.ctx) is not None:
                self.say(f"Still in the register: {', '.join(ids)}.")  # its demo data destroyed, or going
            elif ids:
                self.say(f"On the demo data try {', '.join(ids)}.")
            return
        self.as_id, self.sayable = who, True
        self.first_code_at = await people.first_code_at(self.app.ctx, who)
        self.say(f"Now acting as {self.as_id}.")

    async def is_id_and_more(self, who: str) -> bool:
        """``NS-DM01 NOW``: a practitioner's id with a word after it, not "no practitioner NS-DM01 NOW"
        (a feed may give an id a space, so the whole is looked up first)."""
        first, _, rest = who.partition(" ")
        return bool(rest.strip()) and await people.practitioner(self.app.ctx, first) is not None

    async def exchange(self, text: str) -> bool:
        """Send one message, then answer any step-up challenges; False when input ended.

        A code typed at the console's prompt after the code prompt was left (a command typed there:
        ``help``, say) answers that prompt's challenge, so an enrolment or search left waiting
        finishes as it would have at the prompt ("none was asked for just now" would be untrue)."""
        left = self.left_prompt
        if left is not None and left[0] == self.as_id and is_code_shaped(text):
            self.left_prompt = None
            reply = await self.send("code", code=text, challenge_id=left[1].challenge_id)
        elif self.would_show_a_secret(text):
            await self.refuse_enrolment(text)
            return True
        else:
            reply = await self.send(text)
        self.show(reply)
        if reply.challenge is not None:
            self.left_prompt = None  # a new prompt replaces the one left
        while reply.challenge is not None:
            code = await self.read("Code: ", secret=True)
            if code is None:
                return False
            if not code.strip() or not_a_code(code):
                # Sending "quit" or "enrol" as a code would count as a wrong code (and be audited as one).
                self.say(NO_CODE)
                self.typed_ahead = code.strip() or None
                self.left_prompt = (self.as_id, reply.challenge)
                return True
            reply = await self.send("code", code=code.strip(), challenge_id=reply.challenge.challenge_id)
            self.show(reply)
        return True

    def would_show_a_secret(self, text: str) -> bool:
        """Whether ``text`` asks for an enrolment, whose secret this console's output would carry
        into a pipe or a file (it is not a terminal)."""
        if self.stdout.isatty():
            return False
        spec, _ = self.app.dispatcher.resolve(text)
        # `enrol 2` is answered "a word too many" by Signpost, issuing nothing, as anywhere.
        return spec.action is Action.ENROL and not self.app.dispatcher.answered_at_once(text)

    async def refuse_enrolment(self, text: str) -> None:
        """Refused by this front end before Signpost issues anything, and audited as such a refusal
        is (``Dispatcher.refuse_unheard``: the command's action, refused, a fixed detail)."""
        command = Command(self.principal(), text, uuid.uuid4().hex, channel="terminal")
        await self.app.dispatcher.refuse_unheard(command, NOT_A_TERMINAL_DETAIL, action=Action.ENROL, verified=True)
        self.say(NOT_A_TERMINAL)

    def show(self, reply: Reply) -> None:
        if reply.enrolment_uri is not None and self.stdout.isatty():
            # Only the local console gets the seed: it draws the QR code right here. Written as it is,
            # not through say(): its colour codes are the console's own, made from the URI Signpost
            # issued (nothing typed is in it), and made inert they would print as escape text.
            self.stdout.write(terminal_enrolment(reply.enrolment_uri, colour=self.stdout.isatty()) + "\n")
        if reply.then_enrol is not None:
            reply = dataclasses.replace(reply, text=self.said(reply.text, reply.then_enrol), then_enrol=None)
        self.say(render(reply))

    def said(self, text: str, then_enrol: ThenEnrol | None) -> str:
        """A reply's or a notice's text as this console says it: where it tells the person to send enrol,
        which a console whose output is no terminal refuses (NOT_A_TERMINAL), what works there instead."""
        if then_enrol is None or self.stdout.isatty():
            return text
        return then_enrol.instead(PIPED_ENROL.format(id=self.as_id, at=self.first_code_at))


def demo_people(examples: DemoExamples) -> list[str]:
    """The demo data's people to act as that the register still holds (none once decommissioned)."""
    return [who for who in (examples.practitioner_id, examples.duty_manager_id, examples.admin_id) if who]


def either(ids: list[str]) -> str:
    """``A``, ``A or B``, ``A, B or C``."""
    return ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} or {ids[-1]}"


def is_code_shaped(line: str) -> bool:
    """Six digits (any script's, spaces between allowed): what an authenticator app shows."""
    digits = "".join(line.split())
    return len(digits) == 6 and digits.isdecimal()


def not_a_code(line: str) -> bool:
    """Whether a line typed at the code prompt is plainly something else: a meta-command or a message
    (it holds a letter or starts with ':'). Anything else goes as a code, so that 5 or 7 digits get
    Signpost's own answer and count as Signpost counts them."""
    text = line.strip()
    return text.startswith(":") or text.lower() in HELP or any(char.isalpha() for char in text)


async def console_command(args: argparse.Namespace) -> int:
    as_id: str = DEFAULT_AS if args.as_id is None else args.as_id
    if not as_id.strip():  # an unset variable in a script: never quietly the demo practitioner
        raise CommandFailed("--as: give a practitioner id, or leave --as out to act as the demo practitioner")
    if hides_characters(as_id):  # before a store is opened (or made) for an id nobody can have
        raise CommandFailed(f"--as: {HIDDEN_ID}")
    # Python leaves a stream it started without (`<&-`, `>&-`) as None: refused before anything is made.
    closed = [name for name, stream in (("input", sys.stdin), ("output", sys.stdout)) if stream is None]
    if closed:
        raise CommandFailed(f"{NEEDS_STREAMS}: its {' and '.join(closed)} {'is' if len(closed) == 1 else 'are'} closed")
    settings = load_settings()
    to_file(settings.log_file, settings.log_level)  # the conversation stays clean
    # getpass warns so when the terminal's modes cannot be set at the code prompt: the person at it is
    # told on the screen ("Password input may be echoed"), and when the terminal has gone (closed at
    # that prompt) nobody is there, and the log would get a warning for an ordinary hang-up.
    warnings.filterwarnings("ignore", category=getpass.GetPassWarning)
    with serving_with_keys(settings):  # while it is open: `keys rotate` is refused meanwhile
        return await _console_opened(settings, as_id)


async def _console_opened(settings: Settings, as_id: str) -> int:
    async with opened(settings, create=True) as app:
        if devclock.enabled(os.environ):
            if not await is_disposable_demo(app.ctx):
                print(devclock.NOT_DEMO, file=sys.stderr)
                return 2
            app.ctx.authenticators = app.ctx.clock  # an authenticator app's codes follow the real time
            app.ctx.clock = devclock.DevClock(app.ctx.clock)
            print(f"{devclock.ENV}=1: development clock, ':clock +25h' moves time forward.", file=sys.stderr)
        return await Console(app, as_id, sys.stdin, sys.stdout, sys.stderr).run()
