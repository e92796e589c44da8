"""Authentication under attack (issue 12): concurrent guesses, the cost of unknown users, bad
tokens, spoofed proxy headers, XSRF tokens bound to the session, one's own password, open
sockets of revoked credentials and identifiers compared exactly. Each test replays the attack."""
import asyncio
import base64
import time

import pytest

from jobjoker import auth, models
from jobjoker.events import EventHub
from jobjoker.storage import Storage


def basic(user, password, address="10.0.0.1"):
    return auth.Credentials(authorization="Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode(), address=address)


@pytest.fixture
def storage(database_url, io_loop):
    """The storage of a fresh database, as a server would have it."""
    db = models.open_database(database_url)
    db.close()
    storage = Storage(db, EventHub())
    yield storage
    io_loop.run_sync(storage.close)
    models.database.initialize(None)


@pytest.fixture
def counted_checks(monkeypatch):
    """Every password check the authenticator runs, in the order they end; each takes a little
    while (in its thread), as a real scrypt does, so that a wave of them overlaps."""
    done = []
    check = auth._check_password

    def slow_check(password, stored):
        time.sleep(0.02)
        result = check(password, stored)
        done.append(password)
        return result
    monkeypatch.setattr(auth, "_check_password", slow_check)
    return done


# --- High 1: concurrent guesses ---------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_concurrent_guesses_for_one_account_are_held_to_the_limit(storage, counted_checks):
    await auth.ensure_admin(storage, "the-right-one")
    authenticator = auth.Authenticator(storage, auth.Throttle(per_account=10, per_address=1000))
    guesses = ["guess-%d" % i for i in range(99)] + ["the-right-one"]

    async def guess(password, i):
        try:
            return await authenticator.check_password("admin", password, "10.0.%d.1" % i)
        except auth.Throttled:
            return "throttled"
    results = await asyncio.gather(*(guess(p, i) for i, p in enumerate(guesses)))
    assert len(counted_checks) <= 10, len(counted_checks)
    assert results[-1] == "throttled"  # the right password, sent last, was never tried
    assert results.count("throttled") >= 90


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_guesses_from_one_address_are_held_to_its_limit(storage, counted_checks):
    authenticator = auth.Authenticator(storage, auth.Throttle(per_account=1000, per_address=50))

    async def guess(i):
        try:
            return await authenticator.check_password("user-%d" % i, "guess", "10.9.9.9")
        except auth.Throttled:
            return "throttled"
    results = await asyncio.gather(*(guess(i) for i in range(100)))
    assert len(counted_checks) <= 50, len(counted_checks)
    assert results.count("throttled") >= 50


@pytest.mark.gen_test(timeout=60)
async def test_a_wave_of_unknown_users_does_not_hold_up_a_login_from_elsewhere(
        storage, counted_checks):
    await auth.ensure_admin(storage, "real-password")
    authenticator = auth.Authenticator(storage, auth.Throttle(per_account=10, per_address=100))
    wave = [asyncio.ensure_future(authenticator.check_password(
        "ghost-%d" % i, "wave-%d" % i, "10.6.6.6")) for i in range(100)]
    await asyncio.sleep(0)  # the wave is queued first
    user = await authenticator.check_password("admin", "real-password", "10.1.1.1")
    assert user is not None and user.username == "admin"
    # Unknown users still cost a hash each (same time as a real one), but hold at most the
    # address's own slots: the real login ran among the first few, not after the 100.
    finished_before = counted_checks.index("real-password")
    assert finished_before < 20, finished_before
    assert all(r is None for r in await asyncio.gather(*wave))
    assert len(counted_checks) == 101  # every unknown user was hashed
