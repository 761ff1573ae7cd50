"""Dependencies point down: bot → handlers → store, and every layer may use the shared vocabulary.

Read statically from the source (every ``import`` and ``from … import`` anywhere in a module,
including inside functions), so a forbidden import fails here before it can ever run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = frozenset({"bot", "handlers", "store", "tests", "benchmarks"})
VOCABULARY = "handlers.vocabulary"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file at ``path``."""
    yield from _imports_in(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")


def _imports_in(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``source``, relative imports resolved.

    ``from package import name`` yields ``package.name``, so importing a submodule by name
    (``from handlers import refs``) is seen as importing ``handlers.refs``.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"


def _modules(package: str) -> list[Path]:
    found = sorted((ROOT / package).rglob("*.py"))
    assert found, f"no modules under {package}/"
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(package: str, forbidden: str, allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _modules(package)
        for line, module in _imports(path)
        if _within(module, forbidden) and not any(_within(module, ok) for ok in allowed)
    ]


def test_store_imports_nothing_from_handlers_but_the_vocabulary() -> None:
    """store/ keeps: it may use the shared vocabulary, and no decision code from handlers/."""
    assert _violations("store", "handlers", allowed=(VOCABULARY,)) == []


def test_store_imports_nothing_from_bot() -> None:
    """store/ never reaches up into a front end."""
    assert _violations("store", "bot") == []


def test_handlers_import_nothing_from_bot() -> None:
    """handlers/ decide without knowing which front end asked."""
    assert _violations("handlers", "bot") == []


def test_vocabulary_imports_nothing_of_ours() -> None:
    """The shared vocabulary sits below every layer, so it imports no Signpost module at all."""
    path = ROOT / "handlers" / "vocabulary.py"
    ours = [f"line {line}: {module}" for line, module in _imports(path) if module.split(".")[0] in OURS]
    assert ours == []


def test_the_import_reader_sees_every_spelling_of_an_import() -> None:
    """The checks above can fail: plain, from, submodule-by-name, relative and function-local
    imports of a higher layer are all read, as if written in a store module."""
    source = (
        "import handlers.refs\n"
        "from handlers import search\n"
        "from handlers.vocabulary import Role\n"
        "from ..keys import crypto\n"
        "def later() -> None:\n"
        "    from bot import app\n"
    )
    seen = [name for _, name in _imports_in(source, "store.register.probe", is_package=False)]
    assert seen == ["handlers.refs", "handlers.search", "handlers.vocabulary.Role", "store.keys.crypto", "bot.app"]
    refused = [name for name in seen if _within(name, "handlers") and not _within(name, VOCABULARY)]
    assert refused == ["handlers.refs", "handlers.search"]
