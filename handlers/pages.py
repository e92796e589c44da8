"""``/``: the admin page; ``/login``: its sign-in form; ``/static/...``: their files;
``/openapi.json``: the API's description.

The page and its files need the same authentication as the API (Tornado's own ``static_path``
would serve them to anyone, so it is not used); only the sign-in form and the few files it
loads (``PUBLIC_FILES``) are served to anyone. A browser that asks for ``/`` without credentials
is sent to ``/login`` instead of the bare 401. Everything carries the strict
Content-Security-Policy the pages are written for.

Under ``--base-path /jobjoker`` every route is served below the prefix (``jobjoker.app``), and
``/jobjoker`` itself is sent on to ``/jobjoker/``: the pages name their files and the page's
scripts their calls relative to where they are, so they need no rewriting for a prefix.
"""
import os
import re

import tornado.web

from jobjoker import errors
from jobjoker.handlers.access import AuthMixin
from jobjoker.handlers.base import APIHandler, ErrorEnvelopeMixin, reject_nul_in_path, \
    set_security_headers


# What the sign-in form needs before anyone has signed in: nothing else is public.
PUBLIC_FILES = frozenset({"login.html", "js/login.js", "app.css", "favicon.svg"})


class IndexHandler(APIHandler):
    """The admin page."""

    query_names = None  # a browser's page address: what a link adds is not ours to refuse

    async def prepare(self):
        try:
            await super().prepare()
        except errors.Unauthorized:
            if "text/html" not in self.request.headers.get("Accept", ""):
                raise  # a script gets the 401 (and the Basic challenge)
            self.redirect(self.config.base_path + "/login")

    def get(self):
        """The page's HTML (its scripts and styles are files under /static/)."""
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        with open(os.path.join(self.settings["static_dir"], "index.html"), "rb") as f:
            self.finish(f.read())


class LoginPageHandler(APIHandler):
    """The sign-in form (public): it posts to /session and goes on to the page."""

    auth_required = False
    query_names = None

    def get(self):
        """The form's HTML."""
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        with open(os.path.join(self.settings["static_dir"], "login.html"), "rb") as f:
            self.finish(f.read())


class StaticHandler(ErrorEnvelopeMixin, AuthMixin, tornado.web.StaticFileHandler):
    """The page's scripts, styles and vendored libraries, for authenticated users only (but the
    few files the sign-in form needs)."""

    async def prepare(self):
        reject_nul_in_path(self)
        if self.path_args and self.path_args[0] in PUBLIC_FILES:
            self.check_host()
        else:
            await self.authenticate()
        if self.path_args and _is_package_file(self.path_args[0]):
            raise errors.NotFound("no such file: /static/%s" % self.path_args[0])

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
        self.finish(self.settings["openapi"])


def _is_package_file(path):
    """Whether ``path`` is one of the files that make the page's folder a Python package (so it
    installs as ``jobjoker.static``) rather than a file of the page (templates/worker.py is
    one of the page's: the new worker's first code)."""
    parts = path.split("/")
    return parts[-1] == "__init__.py" or "__pycache__" in parts


def static_route(static_dir):
    return (r"/static/(.+)", StaticHandler, {"path": static_dir})


def prefix_routes(base_path):
    """Under a prefix, its bare form (``/jobjoker``) leads to the page (``/jobjoker/``): the
    page's relative addresses need the trailing slash."""
    if not base_path:
        return []
    return [(re.escape(base_path), PrefixRedirectHandler,
             {"url": base_path + "/", "permanent": False})]


class PrefixRedirectHandler(tornado.web.RedirectHandler):
    """``/jobjoker`` -> ``/jobjoker/``, with the headers of every reply."""

    def set_default_headers(self):
        set_security_headers(self)


default_handlers = [
    (r"/", IndexHandler),
    (r"/login", LoginPageHandler),
    (r"/openapi.json", OpenAPIHandler),
]
