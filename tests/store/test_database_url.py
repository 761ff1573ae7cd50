"""``store.db.url_problem``: a database URL Signpost cannot use is named by the part that is wrong,
in words, and never quoted (it may hold a password)."""

from __future__ import annotations

import pytest

from store.db import url_problem

SECRET = "s3cretpw"

BAD = [
    ("nonsense", "is not a database URL: expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB"),
    (f"mysql://u:{SECRET}@db.example/signpost", "the driver must be sqlite+aiosqlite or postgresql+asyncpg"),
    (f"postgresql://u:{SECRET}@db.example/signpost", "the driver must be sqlite+aiosqlite or postgresql+asyncpg"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example:notaport/signpost", "the port must be a number from 1 to 65535"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example:99999/signpost", "the port must be a number from 1 to 65535"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example:0/signpost", "the port must be a number from 1 to 65535"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example:/signpost", "the port must be a number from 1 to 65535"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example:\u0665\u0664\u0663\u0662/signpost", "the port must be a number"),
    (f"postgresql+asyncpg://u:{SECRET}@[::1/signpost", "the host is an IPv6 address without its closing ]"),
    (f"postgresql+asyncpg://u:{SECRET}@[::1]x/signpost", "the host is malformed"),
    (f"postgresql+asyncpg://u:p@{SECRET}@db.example/signpost", "the host holds an @: write an @ in the user or"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example/signpost?sslmode=require", "takes no query option sslmode (asyncpg"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example/signpost?timeout=5", "takes no query option timeout;"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example/signpost?ssl=yes", "the query option ssl has a value"),
    (f"postgresql+asyncpg://u:{SECRET}@db.example/signpost?ssl=require&ssl=disable", "ssl is given more than once"),
    (f"postgresql+asyncpg://u:{SECRET}@/signpost?host=a:5432&host=b:x", "the hosts and ports cannot be read"),
    ("sqlite+aiosqlite:///./signpost.db?mode=ro", "sqlite+aiosqlite takes no query option mode; it takes timeout"),
    ("sqlite+aiosqlite://db.example/signpost.db", "a SQLite URL has no user, password, host or port"),
    ("sqlite+aiosqlite:///./signpost.db\x00", "holds a control character or an invisible formatting mark"),
    (" sqlite+aiosqlite:///./signpost.db", "starts or ends with a space"),
]


@pytest.mark.parametrize(("url", "problem"), BAD)
def test_a_url_signpost_cannot_use_is_named_by_its_wrong_part_and_never_quoted(url: str, problem: str) -> None:
    found = url_problem(url)
    assert found is not None and problem in found
    assert SECRET not in found and "db.example" not in found and "signpost.db" not in found


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./signpost.db",
        "sqlite+aiosqlite:////var/lib/signpost/a store.db",
        "sqlite+aiosqlite:///./signpost.db?timeout=30",
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://signpost@127.0.0.1:5432/signpost",
        f"postgresql+asyncpg://signpost:{SECRET}@db.example/signpost?ssl=require&command_timeout=30",
        "postgresql+asyncpg://signpost:p%40ss@[::1]:5432/signpost",
        "postgresql+asyncpg://signpost@/signpost?host=/var/run/postgresql",
        "postgresql+asyncpg://signpost@/signpost?host=a:5432&host=b:5433&target_session_attrs=primary",
    ],
)
def test_a_url_signpost_can_use_has_no_problem(url: str) -> None:
    assert url_problem(url) is None


def test_an_unknown_option_is_named_back_only_when_it_reads_as_an_option_name() -> None:
    """A query option's name is said back (`mode`), but not text that may be a secret pasted in the
    wrong place (digits, mixed case, a long run): the URL is never quoted, in part or whole."""
    problem = url_problem("postgresql+asyncpg://u@db.example/signpost?Tr0ub4dor3=1")
    assert problem is not None and "Tr0ub4dor3" not in problem and "takes no such query option" in problem
