"""Login throttling: failed attempts per account and per address, and turns at hashing.

Contract: ``Throttle`` admits an attempt (``begin``) only while the failures of its account and
of its address in the last ``window`` seconds, plus the attempts of either still being checked,
are under their limits, and raises ``Throttled`` (a 429 with ``Retry-After``) otherwise; every
admitted attempt is settled with ``end``. ``CheckSlots`` bounds how many password checks hash at
once, overall and per address. Both live in this server's memory: a restart forgets them, and
several servers on one database count separately (a shared store would come with them).
"""
import asyncio
import collections
import contextlib
import time

from jobjoker.errors import TooManyRequests


class Throttled(TooManyRequests):
    """Too many failed logins for an account or an address; retry after ``retry_after`` s.

    A domain error: wherever a password is checked, it becomes a 429 with Retry-After.
    """

    def __init__(self, retry_after):
        super().__init__("too many failed logins from this account or address; try again in "
                         "%d s" % retry_after, retry_after)


class Throttle:
    """Counts failed logins per account and per address in a sliding window, and the attempts
    being checked right now.

    An attempt is admitted (``begin``) only while the failures in the window *plus the attempts
    in flight* stay under the limit, and settled (``end``) once its answer is known: so 100
    guesses sent at once are 10 checked and 90 refused, not 100 checked (the limit was checked
    before the hash and counted after it). The counters live in this server's memory: several
    servers on one database each count their own (a shared store would come with them).
    """

    def __init__(self, per_account=10, per_address=50, window=300.0, clock=time.monotonic):
        self.limits = {"account": per_account, "address": per_address}
        self.window = window
        self.clock = clock
        self._failures = collections.defaultdict(collections.deque)  # (kind, key) -> times
        self._in_flight = collections.Counter()  # (kind, key) -> attempts being checked
        self._sweep_at = 1024  # entries: past this, forget the keys whose window has passed

    def _recent(self, kind, key):
        times = self._failures.get((kind, key))
        if not times:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._failures[(kind, key)]
        return times

    @staticmethod
    def _keys(account, address):
        return [(kind, key) for kind, key in (("account", account), ("address", address))
                if key]

    def check(self, account, address):
        """Raise ``Throttled`` while the account or the address is at its limit, counting the
        attempts in flight as failures to be."""
        for kind, key in self._keys(account, address):
            times = self._recent(kind, key)
            if (len(times) if times else 0) + self._in_flight[(kind, key)] >= self.limits[kind]:
                retry = int(times[0] + self.window - self.clock()) + 1 if times else 1
                raise Throttled(max(1, retry))

    def begin(self, account, address):
        """Admit one attempt (or raise ``Throttled``); every admitted one must ``end``."""
        self.check(account, address)
        for key in self._keys(account, address):
            self._in_flight[key] += 1

    def end(self, account, address, ok):
        """Settle an attempt: ``ok`` True, False, or None when it could not be decided (a
        database error), which counts neither way."""
        for key in self._keys(account, address):
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
        if ok:
            self.succeed(account)
        elif ok is not None:
            self.fail(account, address)

    def fail(self, account, address):
        now = self.clock()
        for key in self._keys(account, address):
            self._failures[key].append(now)
        if len(self._failures) > self._sweep_at:
            # Guesses at made-up user names each leave a key: drop the stale ones now and
            # then (amortised: the next sweep waits until the table has doubled).
            cutoff = now - self.window
            for key in [k for k, times in self._failures.items() if times[-1] < cutoff]:
                del self._failures[key]
            self._sweep_at = max(1024, 2 * len(self._failures))

    def succeed(self, account):
        if account:
            self._failures.pop(("account", account), None)


class CheckSlots:
    """At most ``overall`` password checks at once, and at most ``per_address`` of them for one
    client address; the rest wait their turn in order.

    A wave of guesses from one address then holds ``per_address`` hashing threads at most, and a
    login from anywhere else finds a free one instead of queueing behind the whole wave.
    """

    def __init__(self, overall=4, per_address=2):
        self.per_address = per_address
        self._overall = asyncio.Semaphore(overall)
        self._addresses = {}  # address -> [its semaphore, requests using it]

    @contextlib.asynccontextmanager
    async def slot(self, address):
        entry = self._addresses.setdefault(address, [asyncio.Semaphore(self.per_address), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                async with self._overall:
                    yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._addresses[address]
