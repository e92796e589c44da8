"""The audit trail: who did what to which job, worker, user or token, and who logged in.

Contract: ``AuditLog.record(tx, actor, action, target, detail)`` appends one entry within a write
transaction, so that an action and its trace commit together (``write`` does it in a
transaction of its own); an ``Actor`` is the user and the address a request came from, ``None``
the server itself. Entries are never changed or deleted through the API; ``list`` pages them
newest first, for admins.
Actions are short dotted words: ``job.create``, ``job.start``, ``job.stop``, ``job.kill``,
``job.delete``, ``worker.save``, ``worker.delete``, ``login.ok``, ``login.failed``, ``logout``,
``user.create``, ``user.update``, ``user.delete``, ``user.password``, ``token.create``,
``token.revoke``.
"""
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


def entry_to_dict(entry):
    return {"id": entry.id, "time": entry.time, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": entry.detail, "address": entry.address}


class AuditLog:
    """Append-only record of security-relevant actions."""

    def __init__(self, storage):
        self.storage = storage

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
