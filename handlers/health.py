"""``/health``: is the server ready? Unauthenticated, so load balancers and scripts can ask."""
from jobjoker.handlers.base import APIHandler


class HealthHandler(APIHandler):
    """Readiness: 200 once the server has its database and supervisor, 503 otherwise."""

    auth_required = False

    async def get(self):
        """``[{"status": "ok", ...}]``."""
        self.send_data(await self.settings["health"]())


default_handlers = [
    (r"/health", HealthHandler),
]
