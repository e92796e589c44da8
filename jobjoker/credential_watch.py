"""Open WebSockets and the credentials that opened them: closed once those stop proving them.

Contract: a stream handler ``add``s itself with its ``Identity`` when it opens and ``discard``s
itself when it closes; ``close(code, reason)`` is all the watch calls on it. ``changed(username)``
re-checks that user's sockets against the database (``auth.still_valid``) and closes those whose
credentials no longer hold with ``CLOSE_REVOKED`` (4401) and a reason: ``Accounts`` awaits it
after committing anything that ends or lowers a user's credentials (a token revoked, a session
ended, a password changed, the user disabled, deleted or given another role), so the sockets
are closed before the request that revoked them is answered. ``start()`` also re-checks every
open socket every ``RECHECK_SECONDS``: that catches what no request here announced, an expiry or
a change made by another server on the same database. Several servers have no shared channel
yet: each learns of the others' changes by that periodic re-check, so within RECHECK_SECONDS (a
notification through the database, e.g. PostgreSQL's LISTEN/NOTIFY or a polled table of changes,
would make it immediate). Every check is one batch of reads on the storage's reader threads.
"""
import asyncio
import logging
import time

from jobjoker import auth
from jobjoker.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

CLOSE_REVOKED = 4401  # "401" in the application's range of close codes (4000-4999)
REVOKED_REASON = "your credentials were revoked, expired or changed: sign in again"
RECHECK_SECONDS = 30.0


class CredentialWatch:
    """The open sockets of this server, by the identity that opened them."""

    def __init__(self, storage):
        self.storage = storage
        self._sockets = {}  # socket -> Identity
        self._changed = {}  # username -> monotonic time of the last change announced
        self._task = None

    def add(self, socket, identity, authenticated_at):
        """Watch ``socket``; ``authenticated_at`` (``time.monotonic()``): when its credentials
        were checked, so that a change announced since then is checked again at once."""
        self._sockets[socket] = identity
        if self._changed.get(identity.username, -1.0) >= authenticated_at:
            self._spawn(self._check([socket]))

    def discard(self, socket):
        self._sockets.pop(socket, None)

    async def changed(self, username):
        """``username``'s credentials changed: close their sockets that lost their proof."""
        self._changed[username] = time.monotonic()
        await self._check([s for s, i in list(self._sockets.items()) if i.username == username])

    async def _check(self, sockets):
        if not sockets:
            return
        identities = [self._sockets.get(s) for s in sockets]
        checked = [(s, i) for s, i in zip(sockets, identities) if i is not None]
        valid = await self.storage.read(auth.still_valid, [i for _, i in checked])
        for (socket, identity), ok in zip(checked, valid):
            if not ok and socket in self._sockets:
                log.info("closing a %s stream of %s: its credentials no longer hold",
                         identity.scheme, identity.username)
                self.discard(socket)
                socket.close(CLOSE_REVOKED, REVOKED_REASON)

    def _spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        task.add_done_callback(_log_failure)
        return task

    def start(self):
        """Re-check every open socket every RECHECK_SECONDS until ``stop``."""
        self._task = asyncio.ensure_future(self._recheck_forever())

    async def _recheck_forever(self):
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                await self._check(list(self._sockets))
                horizon = time.monotonic() - RECHECK_SECONDS
                self._changed = {u: t for u, t in self._changed.items() if t > horizon}
            except DatabaseUnavailable:  # an outage, logged once by the storage
                log.debug("re-checking the credentials of open streams waits for the database")
            except Exception:
                log.exception("re-checking the credentials of open streams failed; retrying "
                              "in %d s", RECHECK_SECONDS)

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _log_failure(task):
    if not task.cancelled() and task.exception() is not None:
        log.error("re-checking the credentials of an open stream failed",
                  exc_info=task.exception())
