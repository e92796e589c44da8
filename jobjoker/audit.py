"""The audit trail: who did what to which job, worker, user or token, and who logged in.

Contract: ``AuditLog.record(actor, action, target, detail)`` appends one entry (an ``Actor`` is
the user and the address a request came from; ``None`` means the server itself). Entries are
never changed or deleted through the API; ``list`` pages them newest first, for admins.
Actions are short dotted words: ``job.create``, ``job.start``, ``job.stop``, ``job.kill``,
``job.delete``, ``worker.save``, ``worker.delete``, ``login.ok``, ``login.failed``, ``logout``,
``user.create``, ``user.update``, ``user.delete``, ``user.password``, ``token.create``,
``token.revoke``.
"""
import dataclasses
import logging
import time

import peewee

from jobjoker import models

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

    def __init__(self):
        self._insert_sql = {}  # database class -> (SQL of one entry's INSERT, parameter names)

    def record(self, actor, action, target=None, detail=None):
        self.record_many(actor, action, [(target, detail)])

    def record_many(self, actor, action, entries):
        """One entry per ``(target, detail)`` of ``entries``, all in one statement (a batch of
        jobs is recorded job by job, as single requests would be)."""
        if not entries:
            return
        actor = actor or SERVER
        values = {"time": time.time(), "actor": actor.username, "action": action,
                  "address": actor.address}
        # The INSERT's SQL is built once per database dialect: Peewee takes longer to build it
        # than SQLite takes to run it, and jobs are recorded at every create and start.
        dialect = type(models.database.obj)
        if dialect not in self._insert_sql:
            self._insert_sql[dialect] = models.AuditEntry.insert({
                getattr(models.AuditEntry, name): peewee.Value(name, converter=False)
                for name in ("time", "actor", "action", "target", "detail", "address")}).sql()
        sql, names = self._insert_sql[dialect]
        rows = [[dict(values, target=target, detail=detail)[name] for name in names]
                for target, detail in entries]
        with models.database.atomic():
            models.database.cursor().executemany(sql, rows)
        for target, detail in entries:
            log.info("audit: %s %s %s%s", actor.username or "(server)", action, target or "",
                     " (%s)" % detail if detail else "")

    def list(self, offset=0, limit=100, actor=None, action=None):
        query = models.AuditEntry.select()
        if actor:
            query = query.where(models.AuditEntry.actor == actor)
        if action:
            query = query.where(models.AuditEntry.action == action)
        query = query.order_by(models.AuditEntry.id.desc()).offset(offset).limit(limit)
        return [entry_to_dict(entry) for entry in query]
