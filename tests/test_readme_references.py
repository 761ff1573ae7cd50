"""Every module, function and file README.md names is one that exists: a newcomer following it to
the code finds what it names (it sent them to `handlers.lifecycle.retention_tick`, which is in
`handlers.lifecycle.flows`)."""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
PACKAGES = ("bot", "handlers", "store", "tests", "benchmarks")


def dotted_names() -> set[str]:
    """`package.module.name` in backticks, or called there (`…name(ctx, now)`), for Signpost's own
    packages."""
    return set(re.findall(rf"`((?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\([^`)]*\))?`", README))


def paths() -> set[str]:
    """`folder/…` in backticks, and link targets, inside this repository."""
    named = set(re.findall(rf"`((?:{'|'.join(PACKAGES)}|examples)/[A-Za-z0-9_./-]*)`", README))
    linked = {target.split("#", 1)[0] for target in re.findall(r"\]\(([^)#:]+(?:#[^)]*)?)\)", README)}
    return named | {target for target in linked if target and target != "link"}


def resolves(dotted: str) -> bool:
    """A module, or an attribute reached from the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def test_every_dotted_name_the_readme_gives_exists() -> None:
    names = dotted_names()
    assert "bot.web.read_body" in names and "store.people.practitioners.holders" in names  # the scan finds them
    assert [name for name in sorted(names) if not resolves(name)] == []


def test_every_path_the_readme_gives_exists() -> None:
    named = paths()
    assert "tests/bot/cli/test_settings.py" in named and "manifest.yml" in named  # the scan finds them
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []


def test_the_migration_counts_the_readme_gives_are_this_signposts() -> None:
    """README said `db current` prints "up to date: 16 of 16 migrations applied" and that Alembic
    sees "a dozen heads", when it printed 17 of 17 and 13: the numbers it gives are the shipped ones."""
    from store.db import revisions, shipped_heads

    shipped, heads = len(revisions()), len(shipped_heads())
    assert re.findall(r'"up to date: (\d+) of (\d+) migrations applied', README) == [(str(shipped), str(shipped))]
    assert re.findall(r"Alembic sees (\S+) heads", README) == [str(heads)]


def test_the_audit_export_messages_the_readme_quotes_are_the_programs() -> None:
    """README quoted `no audit events for actor P001`, an id the demo register does not hold (for
    which the program says it is not a practitioner id): the quoted id is the demo's, and both
    messages are the program's own words."""
    from handlers.operator.audit import Export
    from store.register.synthetic import SyntheticRegister

    demo_ids = {who for who, _ in SyntheticRegister().practitioner_ids()}
    quoted = re.findall(r"`no audit events for actor ([^`]+)`", README)
    assert quoted and set(quoted) <= demo_ids, quoted

    async def no_events() -> AsyncIterator[dict[str, object]]:
        return
        yield {}

    for known, actor in ((True, quoted[0]), (False, "Amy Jones")):
        said = Export(no_events(), actor_known=known).nothing_found(actor)
        assert f"`{said}`" in README, said
