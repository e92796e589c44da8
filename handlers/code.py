"""``/jobs/ID/code``: the code a job ran, and a diff from it to today's worker."""
from jobjoker.handlers.base import APIHandler, JobPathMixin


class JobCodeHandler(JobPathMixin, APIHandler):
    """The code a job ran (``jobjoker.jobcode``)."""

    async def get(self, job_id):
        """``{job, worker, hash, source, saved, saved_by, current}``: ``current`` when today's
        worker file is that same code."""
        self.send_data(await self.settings["code"].job_code(job_id))


class JobCodeDiffHandler(JobPathMixin, APIHandler):
    """What changed in the worker since a job ran it."""

    async def get(self, job_id):
        """``{job, worker, hash, current_hash, current, worker_deleted, diff}``: a unified diff
        from the code the job ran to today's worker file ("" when the same)."""
        diff = await self.settings["code"].job_code_diff(job_id)
        self.send_data(diff, message="the worker was deleted" if diff["worker_deleted"] else
                       "the same code as today's worker" if diff["current"] else "")


default_handlers = [
    (r"/jobs/([^/]+)/code", JobCodeHandler),
    (r"/jobs/([^/]+)/code/diff", JobCodeDiffHandler),
]
