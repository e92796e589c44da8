"""``/``: the admin page (a placeholder until the admin-page issue), and ``/openapi.json``."""
import json
import os

from handlers.base import APIHandler
from jobjoker.openapi import openapi_document


class IndexHandler(APIHandler):
    """The admin page."""

    def get(self):
        """The page's HTML."""
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        with open(os.path.join(self.settings["static_dir"], "index.html"), "rb") as f:
            self.finish(f.read())


class OpenAPIHandler(APIHandler):
    """The OpenAPI 3 description of the whole API."""

    def get(self):
        """The document (not in the envelope: tools read it as is)."""
        self.finish(json.dumps(openapi_document()))


default_handlers = [
    (r"/", IndexHandler),
    (r"/openapi.json", OpenAPIHandler),
]
