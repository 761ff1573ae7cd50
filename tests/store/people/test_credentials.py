"""Credentials at rest: sealed seeds bound to their owner, one-time tokens, atomic step acceptance."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.app import Signpost
from handlers.stepup import totp
from handlers.stepup.flow import ahead_step
from handlers.vocabulary import Platform, Principal
from store.keys import keychain
from store.keys.crypto import DecryptionError, KeyRing
from store.people import credentials, practitioners
from store.tables.people import ChatIdentity, EnrolmentToken, ParkedCommand, TotpCredential
from tests.factories import console, load_standard

P1 = Principal(Platform.SLACK, "T1", "U1")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    return signpost


async def enrol(app: Signpost, practitioner_id: str) -> bytes:
    seed = totp.new_seed()
    async with app.ctx.db.write() as session:
        await credentials.enrol(session, app.ctx.keys, practitioner_id, seed, app.ctx.clock.now())
    return seed


async def test_raw_seed_column_is_not_the_seed(app: Signpost) -> None:
    """What the database holds is ciphertext: neither the seed nor its base32 text appears in it."""
    seed = await enrol(app, "P001")
    async with app.ctx.db.read() as session:
        raw = (await session.execute(select(TotpCredential.seed))).scalar_one()
        assert await credentials.load_seed(session, app.ctx.keys, "P001") == seed
    assert raw != seed and seed not in raw and totp.base32(seed).encode() not in raw
    assert len(raw) == 12 + len(seed) + 16  # nonce, ciphertext, tag


async def test_swapped_ciphertexts_fail_to_decrypt(app: Signpost) -> None:
    """The practitioner id is bound in: P001's sealed seed copied onto P002's row does not open."""
    await enrol(app, "P001")
    await enrol(app, "P002")
    async with app.ctx.db.write() as session:
        result = await session.execute(select(TotpCredential.practitioner_id, TotpCredential.seed))
        rows = {pid: sealed for pid, sealed in result}
        for pid, other in (("P001", "P002"), ("P002", "P001")):
            await session.execute(
                update(TotpCredential).where(TotpCredential.practitioner_id == pid).values(seed=rows[other])
            )
    async with app.ctx.db.read() as session:
        for pid in ("P001", "P002"):
            with pytest.raises(DecryptionError):
                await credentials.load_seed(session, app.ctx.keys, pid)


async def test_enrolment_token_works_once_and_only_its_digest_is_stored(app: Signpost) -> None:
    """Redeeming spends the token; the table never holds the token itself."""
    now = app.ctx.clock.now()
    async with app.ctx.db.write() as session:
        token = await credentials.issue_token(session, "P001", now, timedelta(minutes=10))
    async with app.ctx.db.read() as session:
        stored = (await session.execute(select(EnrolmentToken.token_hash))).scalars().all()
    assert stored == [credentials.token_digest(token)] and token not in stored[0]
    async with app.ctx.db.write() as session:
        assert await credentials.redeem_token(session, token, now) == "P001"
    async with app.ctx.db.write() as session:
        assert await credentials.redeem_token(session, token, now) is None


async def test_enrolment_token_expires_after_its_lifetime(app: Signpost) -> None:
    """At ten minutes it still works; a second later it is dead."""
    now = app.ctx.clock.now()
    ttl = timedelta(minutes=10)
    async with app.ctx.db.write() as session:
        on_time = await credentials.issue_token(session, "P001", now, ttl)
        late = await credentials.issue_token(session, "P002", now, ttl)
    async with app.ctx.db.write() as session:
        assert await credentials.redeem_token(session, on_time, now + ttl - timedelta(seconds=1)) == "P001"
        assert await credentials.redeem_token(session, late, now + ttl + timedelta(seconds=1)) is None


async def test_checking_a_token_spends_nothing_and_sees_expiry_and_redemption(app: Signpost) -> None:
    """The page's GET asks whether the link is live: asking twice leaves it redeemable; once
    redeemed, or past its lifetime, it is not live."""
    now = app.ctx.clock.now()
    ttl = timedelta(minutes=10)
    async with app.ctx.db.write() as session:
        token = await credentials.issue_token(session, "P001", now, ttl)
    async with app.ctx.db.read() as session:
        assert await credentials.token_is_live(session, token, now)
        assert await credentials.token_is_live(session, token, now + ttl - timedelta(seconds=1))
        assert not await credentials.token_is_live(session, token, now + ttl + timedelta(seconds=1))
        assert not await credentials.token_is_live(session, "A" * 43, now)
    async with app.ctx.db.write() as session:
        assert await credentials.redeem_token(session, token, now) == "P001"
    async with app.ctx.db.read() as session:
        assert not await credentials.token_is_live(session, token, now)


async def test_re_enrolment_kills_earlier_links(app: Signpost) -> None:
    """A new enrolment replaces the pending one, and the old link no longer opens anything."""
    now = app.ctx.clock.now()
    await enrol(app, "P001")
    async with app.ctx.db.write() as session:
        old = await credentials.issue_token(session, "P001", now, timedelta(minutes=10))
    await enrol(app, "P001")
    async with app.ctx.db.write() as session:
        assert await credentials.redeem_token(session, old, now) is None


async def park_a_search(app: Signpost, now: datetime, born: date | None = None, keys: KeyRing | None = None) -> str:
    """P1's search for Amy, parked until a code arrives (``born``: the date it names; ``keys``: a
    ring other than the app's); its challenge id."""
    async with app.ctx.db.write() as session:
        return await credentials.park(
            session,
            keys or app.ctx.keys,
            principal=P1,
            practitioner_id="P001",
            spec_name="search",
            channel="direct",
            text="Amy Jones 03/04/2014",
            now=now,
            ttl=timedelta(minutes=10),
            born=born,
        )


async def test_parked_command_is_sealed_claimed_once_and_only_by_its_owner(app: Signpost) -> None:
    """Ciphertext at rest; a claim takes it out, so a second claim (or a stranger's) gets nothing."""
    now = app.ctx.clock.now()
    challenge = await park_a_search(app, now)
    async with app.ctx.db.read() as session:
        raw = (await session.execute(select(ParkedCommand.text))).scalar_one()
    assert raw is not None and b"Amy" not in raw
    stranger = Principal(Platform.SLACK, "T1", "U2")
    async with app.ctx.db.write() as session:
        assert await credentials.claim(session, app.ctx.keys, challenge, stranger, now) is None
    async with app.ctx.db.write() as session:
        parked = await credentials.claim(session, app.ctx.keys, challenge, P1, now)
    assert parked is not None and parked.text == "Amy Jones 03/04/2014" and not parked.expired
    async with app.ctx.db.write() as session:
        assert await credentials.claim(session, app.ctx.keys, challenge, P1, now) is None


async def test_accepting_a_time_step_is_atomic_under_concurrency(app: Signpost) -> None:
    """Two transactions that both saw the old step race to accept it: exactly one wins.

    On PostgreSQL both read before either writes (a barrier), so the conditional UPDATE alone
    must decide; SQLite serialises writers, so the second sees the first's step.
    """
    await enrol(app, "P001")
    now = app.ctx.clock.now()
    step = totp.time_step(now)
    barrier = asyncio.Barrier(2) if app.ctx.db.dialect == "postgresql" else None

    async def attempt() -> bool:
        async with app.ctx.db.write() as session:
            if barrier is not None:
                state = await credentials.get(session, "P001")
                assert state is not None and state.last_step < step  # both saw the old step
                await barrier.wait()
            return await credentials.accept_step(session, "P001", step, now, console("P001"), ahead_step(now))

    results = await asyncio.gather(attempt(), attempt())
    assert sorted(results) == [False, True]
    async with app.ctx.db.read() as session:
        state = await credentials.get(session, "P001")
    assert state is not None and state.last_step == step and state.state == "active"


async def test_failures_lock_every_fifth_and_disable_at_the_hundredth(app: Signpost) -> None:
    """The throttle counts in the database: locks at 5, 10, …; disabled at 100; nothing after."""
    await enrol(app, "P001")
    now = app.ctx.clock.now()
    seen = []
    async with app.ctx.db.write() as session:
        for _ in range(101):
            seen.append(
                await credentials.record_failure(
                    session, "P001", now, lock_after=5, lock_for=timedelta(minutes=15), disable_after=100
                )
            )
    locked_at = [f.failures for f in seen[:100] if f is not None and f.newly_locked]
    assert locked_at == list(range(5, 100, 5))
    assert seen[99] is not None and seen[99].newly_disabled and seen[99].state == "disabled"
    assert seen[4] is not None and seen[4].locked_until == now + timedelta(minutes=15)
    assert seen[100] is None  # a disabled credential counts nothing more


async def test_a_parked_search_naming_a_date_of_birth_is_destroyed_with_that_days_children(app: Signpost) -> None:
    """A search waiting for its code, a backup taken meanwhile, the child destroyed at 24: under
    the month's key the backup's copy still opened with the key file (two years). It is sealed
    under the birth date's cohort key, as the search's audit terms are, and dies with it. An
    expired one is deleted by the scheduler's minute task, not only at the next park."""
    now = app.ctx.clock.now()
    keys = app.ctx.keys
    keychain.ensure_chains(keys, now.date())
    born = date(2014, 4, 3)
    challenge = await park_a_search(app, now, born)
    async with app.ctx.db.read() as session:
        kek_id = (await session.execute(select(ParkedCommand.kek_id))).scalar_one()
    assert kek_id == keychain.key_for(keys, keychain.Chain.DAY, keychain.day_slot(born))
    keychain.puncture(keys, keychain.Chain.DAY, keychain.day_slot(born) + 1, now.date())
    async with app.ctx.db.write() as session:
        lost = await credentials.claim(session, keys, challenge, P1, now)
    assert lost is not None and lost.lost and lost.text == "" and not lost.expired
    await park_a_search(app, now)
    assert await credentials.forget_expired_parked(app.ctx.db, now + timedelta(minutes=9)) == 0
    assert await credentials.forget_expired_parked(app.ctx.db, now + timedelta(minutes=11)) == 1


async def test_a_parked_command_naming_no_date_is_sealed_under_a_key_soon_destroyed_and_goes_with_it(
    app: Signpost,
) -> None:
    """A backup taken while a command waits for its code held what was typed under the master key,
    readable with the key file until a rotation, and then under the month's key, for two years. It
    is under the key retention destroys next but one: within two days the backup's copy opens no
    more (a command waits ten minutes at most)."""
    now = app.ctx.clock.now()
    keys = app.ctx.keys
    keychain.ensure_chains(keys, now.date())
    challenge = await park_a_search(app, now)
    slot = credentials._soon_destroyed(keys, now.date())
    assert slot is not None
    assert await parked_kek_id(app) == keychain.key_for(keys, keychain.Chain.DAY, slot)
    keychain.puncture(keys, keychain.Chain.DAY, slot + 1, now.date())
    async with app.ctx.db.write() as session:
        lost = await credentials.claim(session, keys, challenge, P1, now)
    assert lost is not None and lost.lost and lost.text == ""


async def parked_kek_id(app: Signpost) -> str | None:
    async with app.ctx.db.read() as session:
        return (await session.execute(select(ParkedCommand.kek_id))).scalar_one()


async def test_a_parked_search_naming_a_destroyed_date_outlives_a_run_catching_up_to_today(app: Signpost) -> None:
    """Five days without a retention run: the key file's cutoff lags. A search naming a date whose
    children are destroyed is sealed under the key today's run leaves for the day after tomorrow,
    not the lagging file's next but one, which the run that catches up destroys at once."""
    keys = app.ctx.keys
    later = app.ctx.clock.now() + timedelta(days=5)
    lagging = keychain.cutoff_of(keys, keychain.Chain.DAY)
    challenge = await park_a_search(app, later, born=date(1990, 1, 1))
    tomorrows = keychain.day_slot(keychain.first_retained_dob(later.date()))
    assert lagging is not None and lagging + 1 < tomorrows
    assert await parked_kek_id(app) == keychain.key_for(keys, keychain.Chain.DAY, tomorrows + 1)
    keychain.puncture(keys, keychain.Chain.DAY, tomorrows, later.date())  # the catch-up, through today
    async with app.ctx.db.write() as session:
        parked = await credentials.claim(session, keys, challenge, P1, later)
    assert parked is not None and parked.text == "Amy Jones 03/04/2014" and not parked.lost


async def test_a_parked_search_naming_a_destroyed_date_with_no_day_chain_is_kept_and_runs(app: Signpost) -> None:
    """A ring without its chains (no slot to seal under, ``_soon_destroyed`` is None): what was typed
    is sealed under the master key, as everything such a ring holds is, and the code still runs it."""
    bare = KeyRing.generate()
    now = app.ctx.clock.now()
    challenge = await park_a_search(app, now, born=date(1990, 1, 1), keys=bare)
    assert await parked_kek_id(app) == bare.current_kek_id
    async with app.ctx.db.write() as session:
        parked = await credentials.claim(session, bare, challenge, P1, now)
    assert parked is not None and parked.text == "Amy Jones 03/04/2014" and not parked.lost


async def test_a_parked_command_that_does_not_open_under_a_key_held_fails_closed(app: Signpost) -> None:
    """Only a destroyed key makes a parked command lost: one whose ciphertext fails to open under a
    key still held (moved onto another challenge) raises, as any tampering does."""
    now = app.ctx.clock.now()
    first = await park_a_search(app, now)
    second = await park_a_search(app, now)
    async with app.ctx.db.write() as session:
        sealed = (await session.execute(select(ParkedCommand.text).where(ParkedCommand.challenge_id == first))).scalar()
        await session.execute(update(ParkedCommand).where(ParkedCommand.challenge_id == second).values(text=sealed))
    async with app.ctx.db.write() as session:
        with pytest.raises(DecryptionError):
            await credentials.claim(session, app.ctx.keys, second, P1, now)


async def test_a_spent_step_and_those_before_it_are_never_accepted_and_nothing_else_changes(app: Signpost) -> None:
    """A code written into free text is spent (handlers.stepup.flow.spend_shown): its step, and any
    earlier one, is refused as accepted already; a later step still counts. Spending never moves
    the count back, nor confirms, freshens or unlocks a credential."""
    await enrol(app, "P001")
    now = app.ctx.clock.now()
    step = totp.time_step(now)
    async with app.ctx.db.write() as session:
        await credentials.spend_step(session, "P001", step, ahead_step(now))
        await credentials.spend_step(session, "P001", step - 5, ahead_step(now))  # never back
    async with app.ctx.db.read() as session:
        spent = await credentials.get(session, "P001")
    assert spent is not None
    assert (spent.last_step, spent.state, spent.stepped_up_at) == (step, credentials.PENDING, None)
    async with app.ctx.db.write() as session:
        assert not await credentials.accept_step(session, "P001", step, now, console("P001"), ahead_step(now))
        assert not await credentials.accept_step(session, "P001", step - 1, now, console("P001"), ahead_step(now))
        assert await credentials.accept_step(session, "P001", step + 1, now, console("P001"), ahead_step(now))


async def test_a_code_is_kept_where_it_was_typed_and_a_reset_forgets_every_one(app: Signpost) -> None:
    """A code typed in a chat account is that account's (``ChatIdentity.stepped_up_at``), one typed
    at the console the credential's; removing the credential (a reset, a new enrolment) leaves no
    account with a code that could still cover it."""
    now = app.ctx.clock.now()
    teams = Principal(Platform.TEAMS, "0f1e2d3c-0000-4000-8000-00000000000a", "aad-p001")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, P1, "P001", now)
        await practitioners.link_identity(session, teams, "P001", now)
    await enrol(app, "P001")
    step = totp.time_step(now)
    async with app.ctx.db.write() as session:
        assert await credentials.accept_step(session, "P001", step, now, P1, ahead_step(now))

    async def stamps() -> tuple[datetime | None, dict[str, datetime | None]]:
        async with app.ctx.db.read() as session:
            state = await credentials.get(session, "P001")
            found = await session.execute(select(ChatIdentity.platform, ChatIdentity.stepped_up_at))
            return (None if state is None else state.stepped_up_at), {platform: at for platform, at in found}

    assert await stamps() == (None, {"slack": now, "teams": None})
    later = now + timedelta(seconds=30)
    async with app.ctx.db.write() as session:
        assert await credentials.accept_step(session, "P001", step + 1, later, console("P001"), ahead_step(later))
    assert await stamps() == (later, {"slack": now, "teams": None})
    async with app.ctx.db.write() as session:
        assert await credentials.reset(session, "P001")
    assert await stamps() == (None, {"slack": None, "teams": None})
