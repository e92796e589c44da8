"""``/``: the admin page; ``/static/...``: its files; ``/openapi.json``: the API's description.

The page and its files need the same authentication as the API (Tornado's own ``static_path``
would serve them to anyone, so it is not used) and carry the strict Content-Security-Policy the
page is written for.
"""
import json
import os

import tornado.web

from handlers.base import APIHandler, AuthMixin, ErrorEnvelopeMixin, set_security_headers
from jobjoker.openapi import openapi_document


class IndexHandler(APIHandler):
    """The admin page."""

    def get(self):
        """The page's HTML (its scripts and styles are files under /static/)."""
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        with open(os.path.join(self.settings["static_dir"], "index.html"), "rb") as f:
            self.finish(f.read())


class StaticHandler(ErrorEnvelopeMixin, AuthMixin, tornado.web.StaticFileHandler):
    """The page's scripts, styles and vendored libraries, for authenticated users only."""

    async def prepare(self):
        await self.authenticate()

    def set_default_headers(self):
        set_security_headers(self)

    def set_extra_headers(self, path):
        # Vendored files never change under a name (their folder carries the version); ours may.
        self.set_header("Cache-Control", "private, max-age=%d"
                        % (86400 if path.startswith("vendor/") else 0))


class OpenAPIHandler(APIHandler):
    """The OpenAPI 3 description of the whole API."""

    def get(self):
        """The document (not in the envelope: tools read it as is)."""
        self.finish(json.dumps(openapi_document()))


def static_route(static_dir):
    return (r"/static/(.+)", StaticHandler, {"path": static_dir})


default_handlers = [
    (r"/", IndexHandler),
    (r"/openapi.json", OpenAPIHandler),
]
