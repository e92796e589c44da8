"""``/workers``: list, read, save and delete worker code; list its kept versions."""
from jobjoker.handlers.base import APIHandler


class WorkersHandler(APIHandler):
    """The collection of workers."""

    async def get(self):
        """Every worker with its description."""
        self.send_data(await self.workers.list())


class WorkerHandler(APIHandler):
    """One worker. Saving or deleting code is an admin's: code runs as the server's user."""

    permissions = {"GET": "read", "PUT": "admin", "DELETE": "admin"}

    @property
    def max_body_size(self):
        return self.config.max_worker_size

    async def get(self, name):
        """The worker's name, description, size, modified time and hash."""
        self.send_data(await self.workers.get(name))

    async def put(self, name):
        """Save the body as the worker's code (checked first; 201 when new)."""
        summary, created = await self.workers.save(name, self.body, self.actor)
        self.send_data(summary, 201 if created else 200,
                       "worker %s %s" % (name, "created" if created else "saved"))

    async def delete(self, name):
        """Delete the worker (409 while one of its jobs is active)."""
        self.send_data(await self.workers.delete(name, self.actor),
                       message="worker %s deleted" % name)


class WorkerCodeHandler(APIHandler):
    """A worker's source code, as plain text."""

    async def get(self, name):
        """The code."""
        self.send_text(await self.workers.code(name))


class WorkerVersionsHandler(APIHandler):
    """The kept versions of a worker's code (``jobjoker.codestore``), even a deleted one's."""

    query_names = {"GET": ("offset", "limit")}

    async def get(self, name):
        """Versions newest first ``{worker, hash, saved, saved_by, jobs}`` (``saved_by`` null:
        found on disk at a job's start); ``X-Total-Count`` is how many are kept."""
        arg = self.get_query_argument
        versions, total = await self.settings["code"].versions(
            name, arg("offset", None), arg("limit", None))
        self.set_header("X-Total-Count", str(total))
        self.send_data(versions)


class WorkerVersionHandler(APIHandler):
    """One kept version of a worker's code."""

    async def get(self, name, hash_):
        """``{worker, hash, saved, saved_by, source}``."""
        self.send_data(await self.settings["code"].version(name, hash_))


default_handlers = [
    (r"/workers", WorkersHandler),
    (r"/workers/([^/]+)", WorkerHandler),
    (r"/workers/([^/]+)/code", WorkerCodeHandler),
    (r"/workers/([^/]+)/versions", WorkerVersionsHandler),
    (r"/workers/([^/]+)/versions/([^/]+)", WorkerVersionHandler),
]
