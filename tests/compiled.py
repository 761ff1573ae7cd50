"""One cache of compiled SQL for every engine a test process makes, per kind of database.

SQLAlchemy compiles each statement once per engine and keeps it in that engine's cache. A test
makes an engine of its own (a database of its own, tests/databases.py), so every test compiled
again each of the few hundred statements it ran: a tenth of the suite's CPU. The statements and
the dialects are the same from test to test; only the engine differs.

SQLAlchemy's cache keys begin with the dialect object, which is new with each engine. This cache
keys by the dialect's kind (its class and the server version it found), so an engine of a kind
seen before finds what an earlier one compiled, as the store's own ``Prepared`` statements are kept
by dialect name for the life of the process (store/prepared.py). It is given to each engine as its
``compiled_cache`` execution option (SQLAlchemy's documented way to supply the cache) when the
engine first connects.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, MutableMapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.util import LRUCache


class ByDialectKind(MutableMapping[Any, Any]):
    """SQLAlchemy's LRU cache of compiled statements, its keys' dialect replaced by the dialect's kind."""

    # SQLAlchemy's own default is 500 an engine; the whole suite compiles a few thousand statements
    # (the cache trims back to this once it holds half as many again).
    def __init__(self, capacity: int = 5_000) -> None:
        self._compiled: LRUCache[Hashable, Any] = LRUCache(capacity)

    @staticmethod
    def _kind(key: tuple[Any, ...]) -> Hashable:
        dialect, *rest = key
        return (type(dialect), dialect.server_version_info, dialect.paramstyle, *rest)

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        return self._compiled[self._kind(key)]

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        return self._compiled.get(self._kind(key), default)

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        self._compiled[self._kind(key)] = value

    def __delitem__(self, key: tuple[Any, ...]) -> None:
        del self._compiled[self._kind(key)]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._compiled)

    def __len__(self) -> int:
        return len(self._compiled)


SHARED = ByDialectKind()


def share_compiled_sql() -> None:
    """From now on, each engine of this process compiles into ``SHARED`` (from its first connection)."""

    @event.listens_for(Engine, "engine_connect")
    def shared(connection: Connection) -> None:
        engine = connection.engine
        if engine.get_execution_options().get("compiled_cache") is not SHARED:
            engine.update_execution_options(compiled_cache=SHARED)
            connection.execution_options(compiled_cache=SHARED)  # in place: this first connection too
