"""``tests.spread``: a matrix of inputs runs each input once, half of them on each store."""

from __future__ import annotations

import pytest

from tests.spread import either_store, spread


def test_each_case_runs_once_and_half_of_them_on_each_backend() -> None:
    mark = spread("x", {f"case {i}": i for i in range(10)}).mark
    argnames, params = mark.args
    assert argnames == "backend, x" and mark.kwargs["indirect"] == ["backend"]
    assert sorted(param.values[1] for param in params) == list(range(10))
    backends = [param.values[0] for param in params]
    assert backends.count("sqlite") == backends.count("postgres") == 5
    assert [param.id for param in params] == [f"{param.values[0]}-case {param.values[1]}" for param in params]


def test_a_kinds_by_variants_matrix_puts_no_variant_on_one_backend_alone() -> None:
    """Taken in turn, variants 0 and 2 of two kinds would each land on one backend only."""
    cases = {f"{kind}, variant {v}": (kind, v) for v in range(4) for kind in ("click", "message")}
    params = spread("kind, variant", cases).mark.args[1]
    assert all(len(param.values) == 3 for param in params)
    on = {v: {param.values[0] for param in params if param.values[2] == v} for v in range(4)}
    assert any(len(backends) == 2 for backends in on.values()), on


def test_tuples_without_ids_are_named_as_pytest_names_them() -> None:
    params = spread("a, b", [("x", 1), ("y", None)]).mark.args[1]
    assert sorted(param.id.split("-", 1)[1] for param in params) == ["x-1", "y-None"]


@spread("case", ["first", "second", "third", "fourth"])
def test_the_store_a_case_runs_on_is_the_one_its_id_names(
    backend: str, case: str, request: pytest.FixtureRequest
) -> None:
    assert request.node.name.endswith(f"[{backend}-{case}]")


def test_a_test_on_either_store_runs_once_on_one_store() -> None:
    def test_one() -> None: ...

    [mark] = either_store(test_one).pytestmark  # type: ignore[attr-defined]
    assert mark.args[0] == "backend" and mark.kwargs["indirect"] is True
    assert len(mark.args[1]) == 1 and mark.args[1][0] in ("sqlite", "postgres")


@either_store
def test_a_test_on_either_store_gets_that_store(backend: str, db_url: str) -> None:
    assert db_url.startswith("sqlite" if backend == "sqlite" else "postgresql")


@pytest.mark.one_store
def test_a_front_end_test_gets_one_store(backend: str, db_url: str) -> None:
    assert db_url.startswith("sqlite" if backend == "sqlite" else "postgresql")


def test_an_unmarked_test_gets_both_stores(backend: str) -> None:
    assert backend in ("sqlite", "postgres")


def test_a_test_marked_one_store_is_collected_once_and_an_unmarked_one_on_each_store(
    request: pytest.FixtureRequest,
) -> None:
    """What this run collected of the two tests above (they are in this module, so collected with it)."""
    here = [item for item in request.session.items if item.path == request.node.path]
    names = [item.name for item in here if isinstance(item, pytest.Function)]
    assert len([n for n in names if n.startswith("test_a_front_end_test_gets_one_store[")]) == 1, names
    assert sorted(n for n in names if n.startswith("test_an_unmarked_test_gets_both_stores[")) == [
        "test_an_unmarked_test_gets_both_stores[postgres]",
        "test_an_unmarked_test_gets_both_stores[sqlite]",
    ]
