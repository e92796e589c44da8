"""``/metrics``: the server's figures in Prometheus's text format (``jobjoker.metrics``).

Read access, as every other read: a viewer (or any higher role) by session, Basic or a Bearer
token. A Prometheus server scrapes it with an API token of a viewer
(``authorization: {type: Bearer, credentials_file: ...}`` in its scrape config).
"""
from jobjoker.handlers.base import APIHandler


class MetricsHandler(APIHandler):
    """Every figure, read now (the jobs by status at most every few seconds)."""

    permissions = {"GET": "read"}

    async def get(self):
        """Prometheus text exposition format."""
        text, content_type = await self.settings["metrics"].exposition()
        self.set_header("Content-Type", content_type)
        self.finish(text)


default_handlers = [
    (r"/metrics", MetricsHandler),
]
