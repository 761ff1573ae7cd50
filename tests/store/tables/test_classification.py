"""Every table says what personal data it holds; what retention, rotation and decommissioning
cover is derived from that, so a new table cannot be forgotten by any of them."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table

from store.keys.rotation import WRAPPED_KEY_TABLES
from store.lifecycle import decommission, retention
from store.tables import (
    Base,
    Personal,
    child_rows,
    feed_text_tables,
    imported_tables,
    tables_holding,
    wrapped_key_tables,
)
from store.tables.base import holds

KNOWN = {p.value for p in Personal}


def classification_problems(metadata: MetaData) -> list[str]:
    """Why a table's classification is missing or unusable (empty: every table is classified)."""
    problems = []
    for table in metadata.sorted_tables:
        kind = table.info.get("personal")
        if kind not in KNOWN:
            problems.append(f"{table.name}: personal={kind!r}, expected one of {sorted(KNOWN)}")
        child = table.info.get("child_column")
        if child is not None and (child not in table.c or kind not in (Personal.CHILD, Personal.PERSON)):
            problems.append(f"{table.name}: child_column {child!r} must be a column of a 'child' or 'person' table")
        for column in table.info.get("wrapped_key", ()):
            if column not in table.c:
                problems.append(f"{table.name}: wrapped_key column {column!r} does not exist")
        if "wrapped_key" in table.info and kind not in (Personal.CHILD, Personal.PERSON):
            problems.append(f"{table.name}: wrapped keys open personal data: classify it 'child' or 'person'")
    return problems


def test_every_table_is_classified_with_a_known_class() -> None:
    """Each table on Base.metadata declares 'child', 'person', 'audit' or 'none', and the columns it
    names for per-child rows and wrapped keys exist."""
    assert "teams_conversations" in Base.metadata.tables  # importing any table registers them all
    assert classification_problems(Base.metadata) == []


def test_an_unclassified_or_misclassified_table_is_caught() -> None:
    """The check fails for a table with no class, an unknown class, or a child column it lacks."""
    metadata = MetaData()
    Table("plain", metadata, Column("id", Integer, primary_key=True))
    Table("odd", metadata, Column("id", Integer, primary_key=True), info={"personal": "secret"})
    Table(
        "orphan",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(10)),
        **holds(Personal.CHILD, child_column="child_ref"),
    )
    problems = classification_problems(metadata)
    assert [p.split(":")[0] for p in problems] == ["odd", "orphan", "plain"]


def test_every_mapped_table_is_defined_in_store_tables() -> None:
    """One home: every mapped class lives in a module of store/tables."""
    modules = {mapper.class_.__module__ for mapper in Base.registry.mappers}
    assert {m for m in modules if not m.startswith("store.tables.")} == set()


def test_teams_conversations_and_credentials_are_personal() -> None:
    """The tables the reviewer found forgotten are covered: Teams conversation references, chat
    links, enrolment links, registrations, notices, TOTP seeds and parked commands."""
    person = {t.name for t in tables_holding(Personal.PERSON)}
    assert {
        "teams_conversations",
        "chat_identities",
        "practitioners",
        "enrolment_tokens",
        "registration_requests",
        "notices",
        "totp_credentials",
        "parked_commands",
    } <= person
    audit = {"audit_events", "audit_subjects", "audit_candidates", "decommissions"}
    assert audit == {t.name for t in tables_holding(Personal.AUDIT)}


def test_lists_are_derived_from_the_classification() -> None:
    """Rotation re-wraps, retention deletes per child and compacts, and decommissioning empties
    exactly what the tables declare."""
    wrapped = {t.name for t, _, _ in wrapped_key_tables()}
    assert wrapped == {"child_keys", "audit_term_keys", "totp_credentials", "parked_commands"}
    assert {spec.table.name for spec in WRAPPED_KEY_TABLES} == wrapped
    per_child = {t.name for t, _ in child_rows()}
    assert per_child == {
        "child_keys",
        "child_terms",
        "involvements",
        "access_requests",
        "access_grants",
        "relay_messages",
        "notices",  # those naming a child (a lookup, an access request, a relayed message)
    }
    # child_terms goes by (term, child_ref) pairs, recomputed from the identity: no index on child_ref alone.
    assert {t.name for t, _ in retention.CHILD_ROWS} == per_child - {"child_terms"}
    # and local_authorities: destruction deletes an authority only the destroyed child named (a name, maybe).
    assert {t.name for t in feed_text_tables()} == {"local_authorities"}
    # what an import writes, analysed after it on PostgreSQL (store/register/feeds.py, ``_analyse``)
    assert {t.name for t in imported_tables()} == {
        "local_authorities",
        "children",
        "child_keys",
        "child_terms",
        "involvements",
        "name_counts",
        "practitioners",
    }
    child_tables = {t.name for t in tables_holding(Personal.CHILD)}
    assert set(retention.AFFECTED_TABLES) == child_tables | per_child | {"local_authorities"}
    emptied = {t.name for t in decommission.personal_tables()}
    assert emptied == {t.name for t in Base.metadata.sorted_tables if t.info["personal"] in ("child", "person")}


def test_deletion_order_deletes_dependents_first() -> None:
    """Grants before the requests they point at, per-child rows before children, links before people."""
    order = [t.name for t in decommission.personal_tables()]
    assert order.index("access_grants") < order.index("access_requests") < order.index("children")
    assert order.index("chat_identities") < order.index("practitioners")
    assert order.index("involvements") < order.index("children")
