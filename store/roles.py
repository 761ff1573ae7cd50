"""PostgreSQL roles: run Signpost as a role that cannot rewrite its own audit.

The audit's append-only triggers stop UPDATE, DELETE and TRUNCATE, but a table's owner (and any
superuser) can disable or drop a trigger. So the schema belongs to a *migration* role, which runs
``signpost db grant-runtime ROLE`` after every upgrade, and the service connects as a *runtime*
role that owns nothing: it may read and write the working tables, only read and append to the
audit tables, and move the chain head forward. At start Signpost logs one warning when it is
connected as a superuser or as the owner (or a member of the owner) of an audit table.
"""

from __future__ import annotations

import re

import structlog
from sqlalchemy import text

from store.db import Database
from store.tables.base import Base

log = structlog.get_logger("signpost.store")

# Append-only (triggers refuse UPDATE, DELETE, TRUNCATE): the runtime role may only read and add.
APPEND_ONLY = ("audit_events", "audit_subjects", "audit_candidates", "audit_chain", "audit_checkpoints")
CHAIN_HEAD = "audit_chain_head"  # moves forward only (trigger); never deleted
AUDIT_TABLES = (*APPEND_ONLY, CHAIN_HEAD)
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RoleRefused(Exception):
    """The grant was not made; the message is one line for the operator."""


async def audit_rewrite_risk(db: Database) -> str | None:
    """Why the connected role could rewrite the audit ("superuser" or "audit_owner"), or None."""
    if db.dialect != "postgresql":
        return None
    async with db.read() as session:
        row = (
            await session.execute(
                text(
                    "SELECT r.rolsuper, COALESCE(bool_or(pg_has_role(current_user, c.relowner, 'MEMBER')), false) "
                    "FROM pg_roles r LEFT JOIN pg_class c ON c.relname = ANY(:tables) "
                    "AND c.relnamespace = current_schema()::regnamespace "
                    "WHERE r.rolname = current_user GROUP BY r.rolsuper"
                ),
                {"tables": list(AUDIT_TABLES)},
            )
        ).one()
    if row[0]:
        return "superuser"
    return "audit_owner" if row[1] else None


async def warn_if_audit_rewritable(db: Database) -> str | None:
    """Log one warning (no role name, no URL) when the connected role could disable the audit triggers."""
    risk = await audit_rewrite_risk(db)
    if risk is not None:
        log.warning(
            "database_role_can_rewrite_audit",
            reason=risk,
            advice="run as a role made by 'signpost db grant-runtime' (see README)",
        )
    return risk


def _quoted(role: str) -> str:
    if not _ROLE.match(role):
        raise RoleRefused("a role name is lower-case letters, digits and underscores (at most 63)")
    return f'"{role}"'


async def grant_runtime(db: Database, role: str) -> list[str]:
    """Create (if missing) the runtime role and grant it exactly what the service needs.

    Run as the migration role (the owner of the tables), after migrating. Returns the statements run.
    """
    if db.dialect != "postgresql":
        raise RoleRefused("runtime roles are a PostgreSQL feature; a SQLite store is protected by file modes")
    name = _quoted(role)
    tables = [t.name for t in Base.metadata.sorted_tables]
    working = [t for t in tables if t not in AUDIT_TABLES]
    done: list[str] = []
    async with db.write() as session:
        found = (
            await session.execute(
                text(
                    "SELECT r.rolsuper, r.rolname = current_user, "
                    "COALESCE(bool_or(pg_has_role(r.oid, c.relowner, 'MEMBER')), false) "
                    "FROM pg_roles r LEFT JOIN pg_class c ON c.relname = ANY(:tables) "
                    "AND c.relnamespace = current_schema()::regnamespace "
                    "WHERE r.rolname = :role GROUP BY r.rolsuper, r.rolname"
                ),
                {"tables": tables, "role": role},
            )
        ).first()
        if found is not None and (found[0] or found[1] or found[2]):
            raise RoleRefused(f"{role} is a superuser, this role, or an owner of Signpost's tables: choose another")
        version = int((await session.execute(text("SHOW server_version_num"))).scalar_one())
        database, schema = (await session.execute(text("SELECT current_database(), current_schema()"))).one()
        schema = f'"{schema}"'
        statements = [] if found is not None else [f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"]
        statements += [
            f'GRANT CONNECT ON DATABASE "{database}" TO {name}',
            f"GRANT USAGE ON SCHEMA {schema} TO {name}",
            f"REVOKE CREATE ON SCHEMA {schema} FROM {name}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(working)} TO {name}",
            f"GRANT SELECT, INSERT ON {', '.join(APPEND_ONLY)} TO {name}",
            f"GRANT SELECT, INSERT, UPDATE ON {CHAIN_HEAD} TO {name}",
            f"GRANT SELECT ON alembic_version TO {name}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {name}",
        ]
        if version >= 170000:  # retention compacts (VACUUM FULL) the working tables; MAINTAIN allows it
            statements.append(f"GRANT MAINTAIN ON {', '.join(working)} TO {name}")
        for statement in statements:
            await session.execute(text(statement))
            done.append(statement)
    return done
