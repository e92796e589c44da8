"""``/jobs/ID/attempts``: every attempt of a job's retry chain (``jobjoker.retries``)."""
from jobjoker import retries
from jobjoker.handlers.base import APIHandler, JobPathMixin


class JobAttemptsHandler(JobPathMixin, APIHandler):
    """The retry chain a job belongs to."""

    permissions = {"GET": "read"}

    async def get(self, job_id):
        """Every attempt of the chain, first first (``attempt`` 1, 2, ...), each as ``GET
        /jobs/ID`` shows a job (without its result)."""
        attempts = await retries.attempts(self.settings["storage"], job_id)
        self.send_data(attempts, message=retries.attempt_message(attempts, job_id))


default_handlers = [
    (r"/jobs/([^/]+)/attempts", JobAttemptsHandler),
]
