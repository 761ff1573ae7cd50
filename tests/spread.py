"""A matrix of hostile inputs spread over the two stores: each input runs once, on SQLite or on
PostgreSQL in turn, instead of once on each.

Every test that touches the store runs on both (tests/conftest.py, ``backend``). A test that throws
dozens of malformed bodies, arguments or dates at one path varies the *input*, and the input is read
and refused before the store is reached; what the store does with the one refusal (its audit event,
nothing half-applied) is the same statement whichever input it was. Run on both, such matrices
took a tenth of the suite's PostgreSQL time. Spread, each backend still sees half the inputs, and
the test's own assertions hold on each. ``make fuzz`` throws thousands more at both.

Only input matrices are spread: a test whose cases differ in what reaches the store (a crash at
each write, a migration, a date compared in SQL) stays on both backends for every case.

``either_store`` does the same for a whole test whose subject is not the store at all — where a
secret file is written, what a terminal shows — though it needs one to run: it runs on one store,
chosen by its name, so that such tests fall on both stores, half each. A module marked
``one_store`` (``pytestmark``) has each of its tests so run: the front ends' tests (Slack, Teams,
the console, the terminal) whose subject is the platform — a signature, a card, a prompt, an
argument — and whose store work is each handler's, which tests/handlers and tests/store run on
both. A front end's test of what the store keeps through a crash, a lost connection or a
redelivery is not so marked and runs on both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import pytest
from _pytest.mark.structures import MarkDecorator

BACKENDS = ("sqlite", "postgres")
Test = TypeVar("Test", bound=Callable[..., object])


def spread(argnames: str, cases: Mapping[str, object] | Iterable[object]) -> MarkDecorator:
    """``pytest.mark.parametrize(argnames, cases)`` with each case on one backend; ids are
    "<backend>-<case>", as the two-backend matrix names them. ``cases``: values by id, or values
    (ids as pytest makes them). Several ``argnames`` ("a, b") take tuples, as parametrize does.

    Half the cases go to each backend, chosen by a hash of the case's id rather than by its place:
    a matrix built as kinds by variants, taken in turn, would put each variant on one backend."""
    named = list(cases.items()) if isinstance(cases, Mapping) else [(None, value) for value in cases]
    ids = [str(name) if name is not None else _id(value, i) for i, (name, value) in enumerate(named)]
    ranks = sorted(range(len(ids)), key=lambda i: hashlib.sha256(ids[i].encode("utf-8", "backslashreplace")).digest())
    backend_of = {i: BACKENDS[rank % 2] for rank, i in enumerate(ranks)}
    several = "," in argnames
    params = []
    for i, (_, value) in enumerate(named):
        values = (backend_of[i], *value) if several else (backend_of[i], value)
        params.append(pytest.param(*values, id=f"{backend_of[i]}-{ids[i]}"))
    return pytest.mark.parametrize(f"backend, {argnames}", params, indirect=["backend"])


def _id(value: object, i: int) -> str:
    """A case's id when none is given, as pytest makes one: a plain value itself, the plain values
    of a tuple joined by "-", anything else by its place."""
    if isinstance(value, tuple):
        return "-".join(_id(part, i) for part in value)
    return str(value) if value is None or isinstance(value, (str, int, float, bool)) else f"case{i}"


def one_store(metafunc: pytest.Metafunc) -> None:
    """Run the test ``metafunc`` collects on one store, chosen by a hash of its module and name,
    when it is marked ``one_store``, needs a store and does not already choose its stores (a
    ``backend`` parametrize mark, or a behaviour of one store only)."""
    definition = metafunc.definition
    if "backend" not in metafunc.fixturenames or definition.get_closest_marker("one_store") is None:
        return
    if definition.get_closest_marker("postgres_only") or definition.get_closest_marker("sqlite_only"):
        return
    for mark in definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "backend" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return
    name = f"{definition.path.name}::{definition.originalname}"
    backend = BACKENDS[hashlib.sha256(name.encode()).digest()[0] % 2]
    definition.add_marker(pytest.mark.parametrize("backend", [backend], indirect=True))


def either_store(test: Test) -> Test:
    """Run ``test`` on one store, chosen by a hash of its name (its id: "[sqlite]" or "[postgres]")."""
    backend = BACKENDS[hashlib.sha256(test.__name__.encode()).digest()[0] % 2]
    marked: Test = pytest.mark.parametrize("backend", [backend], indirect=True)(test)
    return marked
