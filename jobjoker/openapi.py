"""The OpenAPI 3.0 description of the REST API (served at ``/openapi.json``), and who may call
each operation.

Contract: ``openapi_document()`` returns the whole document as plain JSON-ready data, a new dict
on every call: the paths of ``jobjoker.openapi_paths`` (what each route takes and answers) and
the components of ``jobjoker.openapi_components`` (what its messages look like), with a role
for each operation. That role is not written anywhere but asked, as the server asks it, of the
handler the route table dispatches its path to (``needs_authentication()``, then
``required_permission()``: the permission it declares, or the fail-closed default), so the two
cannot disagree; the operation names the least role with that permission (``x-jobjoker-role``:
public, viewer, operator, admin, or self for any signed-in user acting on their own account),
and the credentials it takes and the 401 and 429 it can answer follow from that role and its
method, in one place. ``tests/test_openapi.py`` checks the document against the route table,
the role matrix of ``tests/test_security.py`` and real replies; ``tests/test_fuzz.py`` fuzzes a
server with it.
"""
import re

import tornado.httputil

from jobjoker import __version__
from jobjoker.roles import ROLES, allows
from jobjoker.config import Config
from jobjoker.openapi_components import ERROR_RESPONSES, components, ref
from jobjoker.openapi_paths import paths as operations_by_path

# Who may call an operation, as the start of its description.
ROLE_RULES = {
    "public": "Public: needs no credentials.",
    "viewer": "Role: viewer or above (any signed-in user).",
    "operator": "Role: operator or admin.",
    "admin": "Role: admin.",
    "self": "Role: any signed-in user, for their own account.",
}
SAFE_METHODS = ("get", "head", "options")
OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The keys of an operation, in the order the document shows them.
OPERATION_KEYS = ("operationId", "tags", "summary", "description", "x-jobjoker-role",
                  "parameters", "requestBody", "responses", "security")
# Any one of these proves who is asking (OpenAPI: a list of alternatives) ...
CREDENTIALS = [{"basicAuth": []}, {"bearerAuth": []}, {"sessionCookie": []}]
# ... and on an unsafe method the session cookie needs the XSRF token beside it.
UNSAFE_CREDENTIALS = [{"basicAuth": []}, {"bearerAuth": []},
                      {"sessionCookie": [], "xsrfToken": []}]


def openapi_document(routes, config=Config):
    """The OpenAPI 3.0.3 document of the whole REST API.

    ``routes`` are the ``(pattern, handler class)`` pairs whose handlers say who may call each
    operation: the application's (``jobjoker.app.routes()``), which builds it once. Limits and
    lifetimes are ``config``'s (by default the ``Config`` defaults).
    """
    paths = authorize(operations_by_path(config), routes)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "JobJoker",
            "version": __version__,
            "license": {"name": "MIT"},
            "description": (
                "A self-hosted job runner: start, stop and watch workers' jobs.\n\n"
                "Every JSON reply is the envelope `{success, message, total, data}` with "
                "`data` always a list; failures set `success` to false and say in `message` "
                "what to fix.\n\n"
                "Every operation but %s needs credentials: HTTP "
                "Basic, an API token as `Authorization: Bearer jj_...`, or the session cookie "
                "from POST /session, which on POST, PUT, PATCH and DELETE counts only with "
                "the XSRF token in an `X-XSRFToken` header. Each operation's description "
                "opens with the role it needs: viewer < operator < admin, or self (any "
                "signed-in user, for their own account)." % public_operations(paths)),
        },
        "servers": [{"url": config.base_path or "/"}],  # --base-path
        "security": CREDENTIALS,
        "tags": [
            {"name": "jobs", "description": "Runs of workers, their log and response."},
            {"name": "streams", "description": "Live updates over WebSockets."},
            {"name": "workers", "description": "Worker code."},
            {"name": "session", "description": "Browser login and logout."},
            {"name": "users", "description": "Accounts, roles and passwords."},
            {"name": "tokens", "description": "API tokens for scripts."},
            {"name": "audit", "description": "Who did what."},
            {"name": "schedules", "description": "Jobs run at cron times."},
            {"name": "webhooks", "description": "URLs told of job ends, and their deliveries."},
            {"name": "server", "description": "Health, the admin page, this document."},
        ],
        "paths": paths,
        "components": components(config),
    }


def handler_for(path, routes):
    """The handler class Tornado dispatches ``path`` to: that of the first route whose pattern
    matches all of it. A template's ``{id}`` matches ``([^/]+)`` as any one segment would."""
    for pattern, handler_class, *_ in routes:
        if re.fullmatch(pattern, path):
            return handler_class
    raise LookupError("the document describes %s, which no route serves" % path)


def least_role(handler_class, method):
    """The least role that may call ``method`` on ``handler_class``, asked of the handler's own
    ``needs_authentication`` and ``required_permission`` (the permission it declares, or the
    fail-closed default), so the document cannot say otherwise than the server does."""
    # An instance that is never initialised nor run: it only answers for a request's method.
    handler = handler_class.__new__(handler_class)
    handler.request = tornado.httputil.HTTPServerRequest(
        start_line=tornado.httputil.RequestStartLine(method.upper(), "/", "HTTP/1.1"),
        headers=tornado.httputil.HTTPHeaders({"Host": "localhost"}))
    # A handler without needs_authentication (the WebSocket ones) authenticates every request.
    if not getattr(handler, "needs_authentication", lambda: True)():
        return "public"
    permission = handler.required_permission()
    if permission == "self":  # any signed-in user; the domain checks the rest
        return "self"
    for role in ROLES:  # least first
        if allows(role, permission):
            return role
    raise ValueError("%s declares %s for %s, which no role has"
                     % (handler_class.__name__, permission, method.upper()))


def authorize(paths, routes):
    """Give each operation the role its handler requires and what follows from it.

    The role's rule opens the description and is ``x-jobjoker-role``. Every operation but the
    public ones answers 401 without valid credentials and 429 while its credentials are
    throttled; a public one overrides the global security requirement with none; on a
    signed-in unsafe one the session cookie counts only with the XSRF token beside it (403
    without).
    """
    for path, item in paths.items():
        handler_class = handler_for(path, routes)
        for method, op in item.items():
            if method not in OPENAPI_METHODS:
                continue
            role = least_role(handler_class, method)
            op["description"] = " ".join(filter(None, (ROLE_RULES[role], op.get("description"))))
            op["x-jobjoker-role"] = role
            if role != "public":
                for status in ("401", "429"):
                    op["responses"][status] = ref("responses", ERROR_RESPONSES[status][0])
            op["responses"] = dict(sorted(op["responses"].items()))
            if role == "public":
                op["security"] = []
            elif method not in SAFE_METHODS:
                op["security"] = UNSAFE_CREDENTIALS
            item[method] = {key: op[key] for key in OPERATION_KEYS if key in op}
    return paths


def public_operations(paths):
    """The operations that need no credentials, as a phrase (``GET /health and GET /login``)."""
    public = ["%s %s" % (method.upper(), path) for path, item in paths.items()
              for method, op in item.items()
              if method in OPENAPI_METHODS and op["x-jobjoker-role"] == "public"]
    return " and ".join(filter(None, (", ".join(public[:-1]), public[-1])))
