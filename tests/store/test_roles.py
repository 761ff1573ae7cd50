"""PostgreSQL: the service can run as a role that owns nothing, and says so when it does not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from bot.app import build
from handlers.clock import FakeClock
from store.db import Database
from store.keys.crypto import KeyRing
from store.roles import RoleRefused, grant_runtime
from tests.databases import drop_role
from tests.factories import load_standard, say

pytestmark = pytest.mark.postgres_only


def as_role(url: str, role: str) -> str:
    """The same database, connected as another role (trust authentication on the test server)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def runtime_role(db_url: str) -> AsyncIterator[str]:
    """A fresh role name; dropped (with its grants) afterwards."""
    role = f"signpost_rt_{uuid.uuid4().hex[:10]}"
    yield role
    await drop_role(db_url, role)


def rewrite_warnings(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == "database_role_can_rewrite_audit"]


async def test_superuser_connection_warns_at_start_once_without_secrets(db_url: str) -> None:
    """Connected as the postgres superuser: one warning line saying why, with no URL or role name in it."""
    with capture_logs() as logs:
        db = await Database.open(db_url)
    await db.close()
    warnings = rewrite_warnings(logs)
    assert [(w["log_level"], w["reason"]) for w in warnings] == [("warning", "superuser")]
    assert "postgres" not in str(warnings[0]) and "127.0.0.1" not in str(warnings[0])


async def test_runtime_role_does_the_work_without_a_warning_and_cannot_touch_the_audit(
    db_url: str, runtime_role: str
) -> None:
    """grant-runtime makes a role that owns nothing: Signpost starts silently as it, imports and
    answers searches, but cannot delete audit events or switch off the audit's triggers."""
    owner = await Database.open(db_url)
    statements = await grant_runtime(owner, runtime_role)
    await owner.close()
    assert statements[0].startswith(f'CREATE ROLE "{runtime_role}" LOGIN NOSUPERUSER')

    with capture_logs() as logs:
        runtime = await Database.open(as_role(db_url, runtime_role))
    assert rewrite_warnings(logs) == []
    keys = KeyRing.generate()
    app = build(runtime, keys, FakeClock())
    try:
        await load_standard(app)
        reply = await say(app, "P001", "help")
        assert reply.text
    finally:
        await app.ctx.audit.close()
        await runtime.close()

    conn = await asyncpg.connect(dsn(as_role(db_url, runtime_role)))
    try:
        assert await conn.fetchval("SELECT count(*) FROM audit_events") > 0
        for attack in (
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_events_append_only ON audit_events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(attack)
    finally:
        await conn.close()


async def test_owner_of_the_audit_tables_is_warned_and_refused_as_runtime_role(db_url: str, runtime_role: str) -> None:
    """A non-superuser that owns an audit table could disable its triggers: warned at start, and
    grant-runtime will not hand it the runtime grants."""
    admin = await asyncpg.connect(dsn(db_url))
    try:
        await admin.execute(f'CREATE ROLE "{runtime_role}" LOGIN')
        await admin.execute(f'GRANT USAGE ON SCHEMA public TO "{runtime_role}"')
        await admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{runtime_role}"')
        await admin.execute(f'ALTER TABLE audit_checkpoints OWNER TO "{runtime_role}"')
    finally:
        await admin.close()
    with capture_logs() as logs:
        db = await Database.open(as_role(db_url, runtime_role))
    await db.close()
    assert [w["reason"] for w in rewrite_warnings(logs)] == ["audit_owner"]

    owner = await Database.open(db_url)
    try:
        with pytest.raises(RoleRefused, match="owner"):
            await grant_runtime(owner, runtime_role)
    finally:
        await owner.close()
