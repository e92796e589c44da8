"""The code a job ran and a worker's versions, as the API shows them.

Contract: ``CodeService(config, storage, repository)`` answers ``GET /jobs/ID/code`` (the
version a job ran, with its source, and whether today's worker file is the same: ``current``),
``GET /jobs/ID/code/diff`` (a unified diff from the code the job ran to today's file, or that the
worker was deleted), ``GET /workers/NAME/versions`` (a page of a worker's versions, newest first,
each with how many jobs ran it) and ``GET /workers/NAME/versions/HASH``. The rows are
``jobjoker.codestore``'s, read on the reader threads; today's file is read in an executor. A job
that has not started, or started before versions were kept, has no code to show: ``NotFound``
says which.
"""
import asyncio

from jobjoker import codestore, jobstore
from jobjoker.errors import BadRequest, NotFound
from jobjoker.paging import parse_page
from jobjoker.states import JobStatus
from jobjoker.workers import check_name

HASH_LENGTH = 64


class CodeService:
    """The code of jobs and the versions of workers."""

    def __init__(self, config, storage, repository):
        self.config = config
        self.storage = storage
        self.repository = repository

    async def _today(self, worker):
        """Today's ``codestore.Source`` of ``worker``, or None when it was deleted."""
        return await asyncio.get_running_loop().run_in_executor(
            None, codestore.read_worker, worker, self.repository.path(worker))

    async def _ran(self, job_id):
        """The version job ``job_id`` ran (a dict with its source), or ``NotFound`` saying why
        there is none."""
        def read():
            job = jobstore.get(job_id)
            if job.code_hash is None:
                return job, None
            return job, codestore.get(job.worker, job.code_hash)
        job, version = await self.storage.read(read)
        if job.code_hash is None:
            if job.status == JobStatus.IDLE.value:
                raise NotFound("job %s has not started: the code a job runs is recorded when it "
                               "starts" % job_id)
            raise NotFound("job %s started before JobJoker kept the code each job ran: its code "
                           "was not recorded" % job_id)
        if version is None:
            raise NotFound("the code job %s ran (%s %s) is no longer kept"
                           % (job_id, job.worker, job.code_hash[:12]))
        return version

    async def job_code(self, job_id):
        """``{worker, hash, source, saved, saved_by, current}`` of the code the job ran."""
        version = await self._ran(job_id)
        today = await self._today(version["worker"])
        return dict(version, job=job_id,
                    current=today is not None and today.hash == version["hash"])

    async def job_code_diff(self, job_id):
        """A unified diff from the code the job ran to today's worker file."""
        version = await self._ran(job_id)
        worker = version["worker"]
        today = await self._today(worker)
        diff = "" if today is None else codestore.unified_diff(
            version["source"], today.text, "%s.py (job %s ran %s)" % (
                worker, job_id, version["hash"][:12]),
            "%s.py (today, %s)" % (worker, today.hash[:12]))
        return {"job": job_id, "worker": worker, "hash": version["hash"],
                "current_hash": None if today is None else today.hash,
                "current": today is not None and today.hash == version["hash"],
                "worker_deleted": today is None, "diff": diff}

    async def versions(self, name, offset=None, limit=None):
        """A page of a worker's versions newest first, and how many it has."""
        check_name(name)
        offset, limit = parse_page(offset, limit, "jobs", self.config)
        return await self.storage.read(codestore.page, name, offset, limit)

    async def version(self, name, hash_):
        """One version of a worker, with its source."""
        check_name(name)
        if len(hash_) != HASH_LENGTH or any(c not in "0123456789abcdef" for c in hash_):
            raise BadRequest("a version is named by its hash: %d lowercase hex digits"
                             % HASH_LENGTH)
        version = await self.storage.read(codestore.get, name, hash_)
        if version is None:
            raise NotFound("worker %s has no version %s kept" % (name, hash_[:12]))
        return version
