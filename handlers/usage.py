"""``/jobs/ID/usage``: a job's resource use (CPU time, memory, and their series over time)."""
from jobjoker.handlers.base import APIHandler, JobPathMixin


class JobUsageHandler(JobPathMixin, APIHandler):
    """A job's CPU time and memory: its totals and the series the page draws."""

    permissions = {"GET": "read"}

    async def get(self, job_id):
        """``[{"id", "cpu_seconds", "rss_bytes", "max_rss_bytes", "sampling", "step",
        "points": [[t, cpu_seconds, rss_bytes], ...]}]`` (``jobjoker.usage``)."""
        self.send_data(await self.settings["usage"].usage_of(job_id))


default_handlers = [
    (r"/jobs/([^/]+)/usage", JobUsageHandler),
]
