"""Nothing plain at rest: identity and query terms are unreadable in the raw rows."""

from __future__ import annotations

from sqlalchemy import text

from bot.app import Signpost
from store.keys.crypto import DecryptionError, child_aad, open_sealed
from store.register import children
from tests.factories import AMY, BEN, load_standard, ready, say

# Five bytes or more, so random ciphertext cannot contain one by chance (p < 1e-9 per string).
PLAIN = ("Jones", "JONES", "Amelia", "AMELIA", "Smith", "2014-04-03", "M1 2AB", "M12AB", "20140403")


async def raw_rows(app: Signpost, sql: str) -> list[tuple[object, ...]]:
    async with app.ctx.db.read() as session:
        return [tuple(row) for row in (await session.execute(text(sql))).all()]


def flatten(rows: list[tuple[object, ...]]) -> bytes:
    out = b""
    for row in rows:
        for value in row:
            out += value if isinstance(value, bytes) else str(value).encode()
            out += b"|"
    return out


async def test_children_tables_hold_no_plain_name_dob_or_postcode(signpost: Signpost) -> None:
    """Read every raw column of children, keys and blind index: no identity field appears."""
    await load_standard(signpost)
    blob = b""
    for table in ("children", "child_keys", "child_terms"):
        blob += flatten(await raw_rows(signpost, f"SELECT * FROM {table}"))
    for plain in PLAIN:
        assert plain.encode() not in blob, plain


async def test_audit_rows_hold_no_plain_query_terms(signpost: Signpost) -> None:
    """After demographic searches the audit table still holds no typed name, date or postcode."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    await say(signpost, "P002", "Amy Jones 03/04/2014 M1 2AB")
    await say(signpost, "P002", "Amy Smith 03/04/2014")
    blob = flatten(await raw_rows(signpost, "SELECT * FROM audit_events"))
    for plain in (*PLAIN, "03/04/2014"):
        assert plain.encode() not in blob, plain


async def test_identity_is_bound_to_its_child(signpost: Signpost) -> None:
    """A child's sealed identity moved onto another child's row fails to decrypt (AAD binds the ref)."""
    await load_standard(signpost)
    async with signpost.ctx.db.read() as session:
        amy_key = await children.data_key_for(session, signpost.ctx.keys, int(AMY))
        (sealed,) = (await session.execute(text(f"SELECT identity FROM children WHERE ref = {AMY}"))).one()
    assert amy_key is not None
    assert open_sealed(amy_key, sealed, child_aad(int(AMY)))  # opens where it belongs
    try:
        open_sealed(amy_key, sealed, child_aad(int(BEN)))
    except DecryptionError:
        pass
    else:
        raise AssertionError("identity decrypted under another child's reference")


async def test_each_child_has_its_own_data_key(signpost: Signpost) -> None:
    """Per-child keys: no two wrapped keys are equal and none opens another child's identity."""
    await load_standard(signpost)
    async with signpost.ctx.db.read() as session:
        amy_key = await children.data_key_for(session, signpost.ctx.keys, int(AMY))
        ben_key = await children.data_key_for(session, signpost.ctx.keys, int(BEN))
        (ben_sealed,) = (await session.execute(text(f"SELECT identity FROM children WHERE ref = {BEN}"))).one()
    assert amy_key != ben_key
    try:
        open_sealed(amy_key or b"", ben_sealed, child_aad(int(BEN)))
    except DecryptionError:
        return
    raise AssertionError("one child's key opened another child's identity")


async def test_database_errors_do_not_carry_the_values_in_their_message(signpost: Signpost) -> None:
    """A failing statement's message (which a logged traceback would show) names no parameter value."""
    marker = "Unmistakable-Marker-Value"
    try:
        async with signpost.ctx.db.write() as session:
            await session.execute(text("INSERT INTO meta (key, value) VALUES (:k, :v)"), {"k": "x", "v": marker})
            await session.execute(text("INSERT INTO meta (key, value) VALUES (:k, :v)"), {"k": "x", "v": marker})
    except Exception as exc:  # the duplicate key fails on both backends
        assert marker not in str(exc)
        assert "hidden due to hide_parameters" in str(exc)
    else:
        raise AssertionError("the duplicate insert should have failed")
