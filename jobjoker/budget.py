"""A server-wide memory budget: bytes that many holders keep at once, against one limit.

Contract: ``MemoryBudget(limit)``; ``take(n)`` reserves ``n`` bytes and says whether it could
(it always can when nothing is held, so one holder larger than the limit still makes progress,
alone); ``give_back(n)`` returns them; ``await wait()`` returns once something was given back.
It runs on the IOLoop only (no locks). Request bodies use one (``--max-body-memory``), stream
subscribers another (``--stream-memory``): whatever many clients make the server hold, together
it stays below the limit.
"""
import asyncio


class MemoryBudget:
    """Bytes held at once by many holders, bounded by ``limit``."""

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self._freed = None  # created on the loop, when someone first waits

    def fits(self, n):
        """Whether ``take(n)`` would succeed now."""
        return self.used == 0 or self.used + n <= self.limit

    def take(self, n):
        """Reserve ``n`` bytes; False (and nothing reserved) when they do not fit."""
        if not self.fits(n):
            return False
        self.used += n
        return True

    def give_back(self, n):
        self.used = max(0, self.used - n)
        if self._freed is not None and n:
            self._freed.set()
            self._freed = None

    async def wait(self):
        """Return once some bytes were given back."""
        if self._freed is None:
            self._freed = asyncio.Event()
        await self._freed.wait()
