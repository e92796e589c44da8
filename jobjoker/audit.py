"""The audit trail: who did what to which job, worker, user or token, and who logged in.

Contract: ``AuditLog.record(tx, actor, action, target, detail)`` appends one entry within a write
transaction, so that an action and its trace commit together (``write`` does it in a
transaction of its own); an ``Actor`` is the user and the address a request came from, ``None``
the server itself. Entries are never changed or deleted through the API; ``list`` pages them
newest first, for admins. Failed attempts go through ``failure``: the first of an action from an
address for one target (the account tried) in ``REPEAT_WINDOW`` seconds gets its entry at once,
the rest of that window one entry with their count when it ends (``flush`` writes the pending
ones, at server stop), so a flood of bad credentials writes two rows a minute per address and
account, not one per request. The counts wait in
memory: a crash loses at most the last window's.
Actions are short dotted words: ``job.create``, ``job.start``, ``job.stop``, ``job.kill``,
``job.pause``, ``job.resume``, ``job.timeout`` and ``job.retry`` (the server's, actor null),
``job.delete``, ``worker.save``, ``worker.delete``, ``login.ok``, ``login.failed``, ``logout``,
``user.create``, ``user.update``, ``user.delete``, ``user.password``, ``token.create``,
``token.revoke``, the schedules' (``jobjoker.schedules``, ``jobjoker.schedulefire``), the
webhooks' (``webhook.create``, ``.update``, ``.delete``, ``.rotate``) and ``retention.prune``
(the server's).
"""
import asyncio
import dataclasses
import logging
import time

from jobjoker import models
from jobjoker.statements import executemany, param

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who acts: a user (None for the server itself) and the address of the request."""

    username: str = None
    address: str = None


SERVER = Actor()
REPEAT_WINDOW = 60.0  # seconds over which repeated failures from one address make one entry
TARGET_LENGTH = models.AuditEntry.target.max_length


@dataclasses.dataclass
class _Repeats:
    actor: Actor
    timer: object
    count: int = 0


def entry_to_dict(entry):
    return {"id": entry.id, "time": entry.time, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": entry.detail, "address": entry.address}


class AuditLog:
    """Append-only record of security-relevant actions."""

    def __init__(self, storage):
        self.storage = storage
        self._repeats = {}  # (action, address) -> _Repeats of the current window
        self._writes = set()  # the entries of ended windows being written

    def record(self, tx, actor, action, target=None, detail=None):
        """Within the write transaction ``tx`` (on the storage's writer thread)."""
        self.record_many(tx, actor, action, [(target, detail)])

    def record_many(self, tx, actor, action, entries):
        """One entry per ``(target, detail)`` of ``entries``, all in one statement (a batch of
        jobs is recorded job by job, as single requests would be), within ``tx``."""
        if not entries:
            return
        actor = actor or SERVER
        values = {"time": time.time(), "actor": actor.username, "action": action,
                  "address": actor.address}
        executemany("insert audit entry", lambda: models.AuditEntry.insert({
            getattr(models.AuditEntry, name): param(name)
            for name in ("time", "actor", "action", "target", "detail", "address")}),
            [dict(values, target=target, detail=detail) for target, detail in entries])

        def log_them():
            for target, detail in entries:
                log.info("audit: %s %s %s%s", actor.username or "(server)", action,
                         target or "", " (%s)" % detail if detail else "")
        tx.on_commit(log_them)

    async def write(self, actor, action, target=None, detail=None):
        """Record one entry in a transaction of its own."""
        await self.storage.transaction(self.record, actor, action, target, detail)

    async def failure(self, actor, action, target=None, detail=None):
        """Record a failed attempt (``login.failed``), folding repeats of it from one address
        for one target (the account tried, by the form or HTTP Basic, or the scheme of bad
        tokens): a flood of one kind is one row with a count, and a failure of another kind is
        still seen at once. ``detail`` goes with the first entry of a window. A target longer
        than the column (a made-up account name) is cut, with "..." to say so."""
        if target is not None and len(target) > TARGET_LENGTH:
            target = target[:TARGET_LENGTH - 3] + "..."
        key = (action, actor.address, target)
        repeats = self._repeats.get(key)
        if repeats is not None:
            repeats.count += 1
            return
        timer = asyncio.get_running_loop().call_later(REPEAT_WINDOW, self._end_window, key)
        self._repeats[key] = _Repeats(actor, timer)
        await self.write(actor, action, target, detail)

    def _end_window(self, key):
        task = asyncio.ensure_future(self._write_repeats(key))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_repeats(self, key):
        repeats = self._repeats.pop(key, None)
        if repeats is None or not repeats.count:
            return
        repeats.timer.cancel()
        action, _, target = key
        detail = "%d more in %d s from this address" % (repeats.count, REPEAT_WINDOW)
        try:
            await self.write(repeats.actor, action, target, detail)
        except Exception:
            log.exception("audit: %d repeated %s from %s could not be recorded", repeats.count,
                          action, repeats.actor.address)

    async def flush(self):
        """Write the counts of every window still open (the server is stopping)."""
        for key in list(self._repeats):
            await self._write_repeats(key)
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def list(self, offset=0, limit=100, actor=None, action=None):
        return await self.storage.read(self._page, offset, limit, actor, action)

    @staticmethod
    def _page(offset, limit, actor, action):
        query = models.AuditEntry.select()
        if actor:
            query = query.where(models.AuditEntry.actor == actor)
        if action:
            query = query.where(models.AuditEntry.action == action)
        query = query.order_by(models.AuditEntry.id.desc()).offset(offset).limit(limit)
        return [entry_to_dict(entry) for entry in query]
