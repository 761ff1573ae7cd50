"""One home for "send: enrol": every message telling its reader to send ``enrol`` is a
``vocabulary.ThenEnrol``, so a front end where enrol cannot work (a console whose output is no
terminal refuses it) can say what does instead (tests/bot/console/test_piped_enrol.py). A text
written any other way would bypass that, so none may be."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from handlers.stepup import flow as stepup
from handlers.stepup import reset
from handlers.vocabulary import SEND_ENROL, Notice, Outcome, Reply, ThenEnrol

ROOT = Path(__file__).resolve().parents[2]
HOME = Path("handlers/vocabulary.py")
# The command as Reply's convention writes it for the reader to send ("send: enrol", "Send: enrol").
INSTRUCTION = re.compile(r"\bsend:\s*enrol\b", re.IGNORECASE)
# Where Signpost's messages are worded, "send enrol" without the colon too; but a duty manager or an
# admin told what a practitioner they reset can do ("they can send enrol") is no instruction to them.
TO_THE_READER = re.compile(r"\bsend\s+enrol\b", re.IGNORECASE)
ABOUT_SOMEONE_ELSE = re.compile(r"\bthey (?:can |then |have been told to )send enrol\b", re.IGNORECASE)


def texts(path: Path) -> list[tuple[int, str]]:
    """Every string literal in a module (f-strings' literal parts too), but docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def modules(*packages: str) -> list[Path]:
    return sorted(path.relative_to(ROOT) for package in packages for path in (ROOT / package).rglob("*.py"))


def test_only_then_enrol_writes_the_instruction_to_send_enrol() -> None:
    """A new message that says "send: enrol" written as a plain string (as five were: a piped console
    then told its user to send what it refuses) fails here: build it as a ThenEnrol."""
    found = [
        f"{path}:{line}: {text!r}"
        for path in modules("handlers", "store", "bot")
        for line, text in texts(ROOT / path)
        if INSTRUCTION.search(text) and path != HOME
    ]
    found += [
        f"{path}:{line}: {text!r}"
        for path in modules("handlers", "store")
        for line, text in texts(ROOT / path)
        if TO_THE_READER.search(ABOUT_SOMEONE_ELSE.sub("", text))
    ]
    assert not found, "\n".join(found)


def test_the_home_is_where_the_instruction_is_written() -> None:
    """The scan above looks at the right files: the one home holds the instruction."""
    assert any(text == SEND_ENROL for _, text in texts(ROOT / HOME))
    assert INSTRUCTION.fullmatch(SEND_ENROL)


def test_chat_still_reads_each_message_word_for_word() -> None:
    """Slack, Teams and a console at a terminal show the text as it was before ThenEnrol."""
    assert stepup.NOT_ENROLLED.text == (
        "Signpost checks a 6-digit code from an authenticator app before it shows anything, and you "
        "haven't set one up yet, so this request has not run. Send: enrol"
    )
    assert stepup.DISABLED_TEXT.text == (
        "Code checks are switched off for you after too many wrong codes, so Signpost can't show results. "
        "Ask your duty manager or a Signpost admin to reset your authenticator, then send: enrol"
    )
    assert stepup.PENDING_TEXT.text == (
        "Please finish setting up your authenticator app first. If you haven't added Signpost to it yet and no "
        "longer have the QR code, secret or set-up link you were given, send: enrol"
    )
    assert stepup.ENROL_DISCARDED.format(tries=10).text == (
        "That set-up didn't work after 10 wrong codes, so Signpost has cancelled it. "
        "To start again with a new QR code, send: enrol"
    )
    assert stepup.ALREADY_ENROLLED.format(who="your duty manager").text == (
        "You already have an authenticator app set up. If you've lost it or changed phone, ask your duty manager "
        "to reset it, then send: enrol"
    )
    assert reset.RESET_NOTICE.format(by="an administrator").text == (
        "Your Signpost authenticator was reset by an administrator. If you did not ask for this, tell a Signpost "
        "admin at once. To see results again, send: enrol"
    )


def test_a_message_marked_then_enrol_has_that_message_s_text() -> None:
    """What a front end puts in the instruction's place replaces the instruction, never other words."""
    said = ThenEnrol("Ask your duty manager to reset it, then")
    assert said.reply(Outcome.REFUSED).text == said.text and said.instead("start x") == f"{said.lead} start x"
    with pytest.raises(ValueError):
        Reply(Outcome.REFUSED, "something else", then_enrol=said)
    with pytest.raises(ValueError):
        Notice("P001", "stepup_reset", "something else", then_enrol=said)
