"""The workers domain: what the API can do with workers, as coroutines.

Contract: ``WorkerService(storage, repository, audit)`` lists, reads, saves and deletes workers.
The files are the ``WorkerRepository``'s, read, parsed (``ast``) and written in an executor, so
a big worker never holds the IOLoop; a save or a delete is then recorded in the audit trail and
announced (``{"type": "worker", "action": "saved" | "deleted", "name"}``) in one transaction. A
save also records the code as a version of the worker (``jobjoker.codestore``: saved now, by
the user) in that transaction. A worker with an active job cannot be deleted (``Conflict``);
deleting one keeps its versions (the jobs that ran them still show them).
"""
import asyncio
import time

from jobjoker import codestore, jobstore
from jobjoker.errors import Conflict
from jobjoker.workers import check_name


class WorkerService:
    """Workers as the API sees them."""

    def __init__(self, storage, repository, audit):
        self.storage = storage
        self.repository = repository
        self.audit = audit

    @staticmethod
    async def _off_loop(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def list(self):
        """Every worker's summary, by name."""
        return await self._off_loop(self.repository.list)

    async def get(self, name):
        """A worker's summary: name, description, parameters, size, modified time, hash."""
        return await self._off_loop(self.repository.get, name)

    async def code(self, name):
        """The worker's source as text."""
        return await self._off_loop(self.repository.code, name)

    async def save(self, name, code, actor=None):
        """Check and save a worker's code; returns (summary, created)."""
        summary, created = await self._off_loop(self.repository.save, name, code)
        source = codestore.source_of(name, code, time.time())
        await self.storage.transaction(self._saved, actor, source, "%s, %s" % (
            "created" if created else "replaced", summary["hash"]))
        return summary, created

    def _saved(self, tx, actor, source, detail):
        """Writer thread: a save's version of the code, audit entry and announcement."""
        codestore.record(tx, source.worker, source.hash, source.text, source.mtime,
                         actor.username if actor and actor.username else None)
        codestore.prune(tx, source.worker)
        self._recorded(tx, actor, "worker.save", "saved", source.worker, detail)

    async def delete(self, name, actor=None):
        """Delete a worker unless one of its jobs is active; returns its last summary."""
        check_name(name)
        active = await self.storage.read(jobstore.an_active_job_of, name)
        if active is not None:
            raise Conflict("worker %s has an active job (%s): stop it before deleting the worker"
                           % (name, active))
        summary = await self._off_loop(self.repository.delete, name)
        await self.storage.transaction(self._recorded, actor, "worker.delete", "deleted", name,
                                       summary["hash"])
        return summary

    def _recorded(self, tx, actor, audit_action, event_action, name, detail):
        """Writer thread: the audit entry and the announcement of a change already made."""
        self.audit.record(tx, actor, audit_action, name, detail)
        tx.publish({"type": "worker", "action": event_action, "name": name})
