"""The OpenAPI 3.0 description of the REST API (served at ``/openapi.json``).

Contract: ``openapi_document()`` returns the whole document as plain JSON-ready data, a new dict
on every call. It is built from small helpers — one generator for the reply envelope, shared
parameters, request bodies and error responses under ``components`` — so each path below reads
as the handler it describes. Who may call an operation is not written here but asked, as the
server asks it, of the handler the route table dispatches its path to (``needs_authentication()``,
then ``required_permission()``), so the two cannot disagree; the operation names the least role
with that permission (``x-jobjoker-role``: public, viewer, operator, admin, or self for any
signed-in user acting on their own account), and the credentials it takes and the 401 and 429 it
can answer follow from that role and its method. Enums and limits come from the domain modules
they describe. ``tests/test_openapi.py`` checks the rest against the route table, the role matrix
of ``tests/test_security.py`` and real replies; ``tests/test_fuzz.py`` fuzzes a server with it.
"""
import re

import tornado.httputil

from jobjoker import __version__
from jobjoker.accounts import MAX_PASSWORD, MIN_PASSWORD, USERNAME
from jobjoker.auth import ROLES, SESSION_COOKIE, SESSION_SECONDS, TOKEN_PREFIX, allows
from jobjoker.jobs import MAX_BATCH, MAX_ENTRY_PAGE, MAX_OFFSET, MAX_PAGE
from jobjoker.parameters import MASK
from jobjoker.parameters import TYPES as PARAMETER_TYPES
from jobjoker.states import COMMANDS, JobStatus
from jobjoker.workers import NAME_PATTERN, NAME_RULE

STATUSES = [status.value for status in JobStatus]
WORKER_NAME = {"type": "string", "pattern": "^%s$" % NAME_PATTERN.pattern,
               "description": "A worker name: %s." % NAME_RULE, "example": "Foobar"}
USER_NAME = {"type": "string", "pattern": "^%s$" % USERNAME.pattern,
             "description": "A username: 1 to 64 letters, digits or `. _ @ -`, starting with a "
                            "letter or digit.", "example": "ann"}
ROLE = {"type": "string", "enum": list(ROLES),
        "description": "viewer reads; operator also creates, runs, stops, kills and deletes "
                       "jobs; admin also manages workers' code, users, others' tokens and reads "
                       "the audit trail."}
TIMESTAMP = {"type": "number", "format": "double", "description": "Seconds since the epoch."}
# The audit page's default and largest size (handlers/audit.py); test_openapi.py asks the server.
AUDIT_PAGE, MAX_AUDIT_PAGE = 100, 1000

# Error statuses and the shared response component each one refers to.
ERROR_RESPONSES = {
    "400": ("BadRequest", "The request is malformed: bad JSON, a missing field, an invalid "
                          "name, an unknown word, a bad offset or limit."),
    "401": ("Unauthorized", "No valid credentials: none were sent, or the password, token or "
                            "session is wrong, expired or revoked, or its user is disabled. "
                            "From POST /session: the username or password is wrong."),
    "403": ("Forbidden", "Not allowed: the role is too low (the operation's description names "
                         "the role it needs), a request authenticated by the session cookie "
                         "lacks the XSRF token on an unsafe method, the account is another "
                         "user's, a WebSocket upgrade comes from another origin, or the Host "
                         "header names another host while the server listens on loopback only "
                         "(DNS rebinding)."),
    "404": ("NotFound", "The job, worker, user or token named does not exist."),
    "405": ("MethodNotAllowed", "The resource exists, but the server alone may change it."),
    "409": ("Conflict", "The request is valid, but the current state forbids it "
                        "(an active job, an existing username, the last active admin)."),
    "413": ("TooLarge", "The body, the parameters or the worker code exceed their limit."),
    "422": ("Unprocessable", "Well-formed but invalid content: an unknown role, a password "
                             "outside its length limits, worker code that does not parse (then "
                             "`data` holds one item with the offending `line`)."),
    "429": ("TooManyRequests", "Too many failed logins from this account or this address: "
                               "even the right password is refused until `Retry-After` seconds "
                               "have passed."),
    "500": ("InternalError", "An unexpected failure; the details are in the server log only."),
    "503": ("Unavailable", "A dependency (the database or the supervisor) is away or busy; the "
                           "request may succeed later."),
}

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


# --- helpers -----------------------------------------------------------------------------------

def ref(kind, name):
    """A ``$ref`` to ``#/components/<kind>/<name>``."""
    return {"$ref": "#/components/%s/%s" % (kind, name)}


def nullable(schema):
    """``schema`` that also admits null (OpenAPI 3.0 spells it ``nullable: true``)."""
    return dict(schema, nullable=True)


def strict_object(description, properties):
    """An object with exactly these properties, all required: new fields must be documented."""
    return {"type": "object", "description": description, "required": list(properties),
            "additionalProperties": False, "properties": properties}


def envelope(item_schema, description, success=True, max_items=None, min_items=0):
    """The reply envelope ``{"success", "message", "total", "data": [item, ...]}``."""
    data = {"type": "array", "items": item_schema, "minItems": min_items}
    if max_items is not None:
        data["maxItems"] = max_items
    return strict_object(description, {
        "success": {"type": "boolean", "enum": [success]},
        "message": {"type": "string", "description": "What happened, for a person to read."},
        "total": {"type": "integer", "minimum": 0, "description": "How many items `data` holds."},
        "data": data,
    })


def json_reply(description, envelope_name, headers=None):
    """A 2xx response whose body is the named envelope."""
    reply = {"description": description,
             "content": {"application/json": {"schema": ref("schemas", envelope_name)}}}
    if headers:
        reply["headers"] = headers
    return reply


def header(description, schema=None, required=True):
    """A response header; ``required`` ones are sent with every such response."""
    return {"description": description, "required": required,
            "schema": schema or {"type": "string"}}


def text_reply(description, media_type="text/plain"):
    """A 2xx response whose body is text, outside the envelope."""
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def operation(operation_id, tag, summary, replies, errors=(), parameters=None, body=None,
              description=None):
    """One operation: its 2xx ``replies`` plus the shared error responses for ``errors``.

    Every operation can fail with 500, with 503 while the database is away, and with 403 (the
    Host check, if nothing else). Who may call it is not written here: ``authorize`` asks the
    handler that serves it and adds what that implies.
    """
    responses = dict(replies)
    for status in set(errors) | {"403", "500", "503"}:
        responses[status] = ref("responses", ERROR_RESPONSES[status][0])
    result = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        result["description"] = description
    if parameters:
        result["parameters"] = parameters
    if body:
        result["requestBody"] = body
    result["responses"] = responses
    return result


def route_table():
    """The application's routes, ``(pattern, handler class)`` pairs as Tornado takes them."""
    # Imported here, not at the top: the app imports the handler that serves this document.
    from jobjoker.app import routes
    return routes()


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


def plain_text_body(description, media_types=("text/plain",), required=True):
    """A request body of text."""
    return {"required": required, "description": description,
            "content": {media_type: {"schema": {"type": "string"}} for media_type in media_types}}


def json_body(schema_name, description=None):
    """A required JSON request body of the named schema."""
    body = {"required": True, "content": {
        "application/json": {"schema": ref("schemas", schema_name)}}}
    if description:
        body["description"] = description
    return body


# --- components --------------------------------------------------------------------------------

def item_schemas():
    """The items that envelopes carry."""
    return {
        "Job": strict_object("A job: one run of a worker with its parameters.", {
            "id": {"type": "string", "description": "Opaque, URL-safe and time-ordered.",
                   "example": "01m8rtezv60hs6kq8t9t"},
            "worker": WORKER_NAME,
            "status": {"type": "string", "enum": STATUSES,
                       "description": "idle -> active -> one of stop, error, done."},
            "parameters": {"type": "object", "additionalProperties": True,
                           "description": "The parameters the job was created with, defaults "
                                          "filled in; secret ones show as `%s`." % MASK},
            "pid": nullable({"type": "integer", "description": "Its process id once started."}),
            "node": nullable({"type": "string", "description": "The server that ran it."}),
            "created": TIMESTAMP,
            "starttime": nullable(TIMESTAMP),
            "stoptime": nullable(TIMESTAMP),
            "duration": nullable({"type": "number", "description":
                                  "Seconds from start to stop (or to now while active)."}),
            "stop_requested": nullable(dict(TIMESTAMP, description="When a stop was asked for.")),
            "exit_code": nullable({"type": "integer"}),
            "exit_signal": nullable({"type": "integer",
                                     "description": "The signal that ended the process."}),
            "error": nullable({"type": "string", "description": "Why the job failed."}),
            "created_by": nullable({"type": "string", "description": "The user who created it."}),
            "log_count": {"type": "integer", "minimum": 0},
            "response_count": {"type": "integer", "minimum": 0},
            "revision": {"type": "integer", "minimum": 0, "description":
                         "Grows with every change of the job: of two copies of it (a reply, an "
                         "event), the one with the higher revision is the newer."},
        }),
        "Worker": strict_object("A worker: a Python class in the workers folder.", {
            "name": WORKER_NAME,
            "description": {"type": "string", "description": "The class docstring."},
            "parameters": nullable({
                "type": "object", "additionalProperties": ref("schemas", "ParameterSpec"),
                "description": "The parameters the class declares (`parameters = {...}`), by "
                               "name; a job's parameters are checked against them. Null when "
                               "it declares none (then any object is accepted)."}),
            "size": {"type": "integer", "minimum": 0, "description": "Bytes of code."},
            "modified": TIMESTAMP,
            "hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        }),
        "Entry": strict_object("One entry of a job's log or response.", {
            "seq": {"type": "integer", "minimum": 0,
                    "description": "Its position in the stream (0 is the first entry). A log "
                                   "past its cap has a gap of numbers after its marker entry."},
            "message": {"type": "string"},
            "time": nullable(dict(TIMESTAMP, description="When it was written (null when the "
                                                         "stored line had no valid stamp).")),
        }),
        "AppendedEntry": strict_object("The entry that a POST appended.", {
            "seq": {"type": "integer", "minimum": 0,
                    "description": "Its position in the stream (0 is the first entry)."},
            "message": {"type": "string"},
            "time": {"type": "number", "description": "When it was appended (epoch seconds)."},
        }),
        "StatusItem": strict_object("A job's status.", {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
        }),
        "PidItem": strict_object("A job's process id (null until it has started).", {
            "id": {"type": "string"},
            "pid": nullable({"type": "integer"}),
        }),
        "Health": strict_object("The server is ready.", {
            "status": {"type": "string", "enum": ["ok"]},
            "version": {"type": "string", "example": __version__},
            "node": {"type": "string", "description": "This server's name."},
            "running_jobs": {"type": "integer", "minimum": 0},
            "loop_lag_ms": strict_object(
                "How late the server's event loop ran its timers over about the last minute "
                "(milliseconds): every request and stream waited this long at that moment.", {
                    "p50": {"type": "number", "minimum": 0},
                    "p99": {"type": "number", "minimum": 0},
                    "max": {"type": "number", "minimum": 0},
                }),
        }),
        "ParameterSpec": {
            "type": "object", "required": ["type"], "additionalProperties": False,
            "description": "One declared parameter. A secret one's value is stored apart, "
                           "never shown again (its default neither) and masked in the job's "
                           "log and response.",
            "properties": {
                "type": {"type": "string", "enum": list(PARAMETER_TYPES)},
                "required": {"type": "boolean"},
                "default": {"description": "Used when the job does not give it."},
                "description": {"type": "string"},
                "label": {"type": "string"},
                "secret": {"type": "boolean"},
                "enum": {"type": "array", "description": "The values allowed."},
                "minimum": {"type": "number"},
                "maximum": {"type": "number"},
            },
        },
        "ErrorDetail": strict_object("Where worker code went wrong.", {
            "line": {"type": "integer", "minimum": 1},
        }),
        "Session": strict_object("Who is signed in, and how.", {
            "username": USER_NAME,
            "role": ROLE,
            "scheme": {"type": "string", "enum": ["basic", "bearer", "session"],
                       "description": "The credentials of this request: a password, an API "
                                      "token or the session cookie."},
            "xsrf": {"type": "string", "description": "The XSRF token (also the `_xsrf` "
                                                      "cookie): send it in an `X-XSRFToken` "
                                                      "header with every unsafe request that "
                                                      "the session cookie authenticates."},
        }),
        "User": strict_object("A user (never their password or its hash).", {
            "username": USER_NAME,
            "role": ROLE,
            "created": TIMESTAMP,
            "disabled": {"type": "boolean",
                         "description": "A disabled user's password, tokens and sessions stop "
                                        "working at once."},
        }),
        "Token": strict_object("An API token (never its secret).", token_properties()),
        "TokenCreated": strict_object("A new API token, with the secret shown this once.", dict(
            token_properties(), token={
                "type": "string", "pattern": "^%s[0-9a-f]+_[A-Za-z0-9_-]+$" % TOKEN_PREFIX,
                "description": "`%s<id>_<secret>`: send it as `Authorization: Bearer ...`. "
                               "Only a hash is stored, so it cannot be shown again."
                               % TOKEN_PREFIX})),
        "AuditEntry": strict_object("One thing someone did, or tried to.", {
            "id": {"type": "integer", "minimum": 1, "description": "Rising: newer is larger."},
            "time": TIMESTAMP,
            "actor": nullable({"type": "string", "description": "The user who acted (null for "
                                                                "the server itself or for "
                                                                "credentials that proved no "
                                                                "one)."}),
            "action": {"type": "string", "example": "job.start", "description": AUDIT_ACTIONS},
            "target": nullable({"type": "string", "description": "What it was done to: a job "
                                                                 "id, a worker, a username, a "
                                                                 "token id."}),
            "detail": nullable({"type": "string"}),
            "address": nullable({"type": "string", "description": "The client's address."}),
        }),
    }


AUDIT_ACTIONS = ("A dotted word: job.create, job.start, job.stop, job.kill, job.delete, "
                 "worker.save, worker.delete, login.ok, login.failed, logout, user.create, "
                 "user.update, user.delete, user.password, token.create, token.revoke.")


def token_properties():
    return {
        "id": {"type": "string", "pattern": "^[0-9a-f]+$", "example": "3f9a0c41d2e7"},
        "name": {"type": "string", "minLength": 1, "maxLength": 100,
                 "description": "What the token is for."},
        "username": dict(USER_NAME, description="Its owner."),
        "role": dict(ROLE, description="Never above its owner's: a request with it has the "
                                       "lesser of the two."),
        "created": TIMESTAMP,
        "expires": nullable(dict(TIMESTAMP, description="When it stops working (null: never).")),
        "last_used": nullable(dict(TIMESTAMP, description="Updated at most once a minute.")),
        "revoked": nullable(dict(TIMESTAMP, description="When it was revoked.")),
    }


# envelope name -> (item, description, how many items: "one" or "many")
ENVELOPES = {
    "JobEnvelope": ("Job", "One job.", "one"),
    "JobListEnvelope": ("Job", "A page of jobs, newest first.", "many"),
    "WorkerEnvelope": ("Worker", "One worker.", "one"),
    "WorkerListEnvelope": ("Worker", "Every worker, by name.", "many"),
    "EntryListEnvelope": ("Entry", "A page of entries, oldest first.", "many"),
    "AppendedEntryEnvelope": ("AppendedEntry", "The entry appended.", "one"),
    "StatusEnvelope": ("StatusItem", "A job's status.", "one"),
    "PidEnvelope": ("PidItem", "A job's pid.", "one"),
    "HealthEnvelope": ("Health", "The server's readiness.", "one"),
    "SessionEnvelope": ("Session", "Who is signed in.", "one"),
    "UserEnvelope": ("User", "One user.", "one"),
    "UserListEnvelope": ("User", "Every user, by name.", "many"),
    "TokenEnvelope": ("Token", "One API token.", "one"),
    "TokenListEnvelope": ("Token", "API tokens, newest first.", "many"),
    "TokenCreatedEnvelope": ("TokenCreated", "The new token with its secret.", "one"),
    "AuditListEnvelope": ("AuditEntry", "A page of the audit trail, newest first.", "many"),
}


def schemas():
    result = item_schemas()
    for name, (item, description, count) in ENVELOPES.items():
        one = count == "one"
        result[name] = envelope(ref("schemas", item), description,
                                min_items=1 if one else 0, max_items=1 if one else None)
    result["ErrorEnvelope"] = envelope(
        ref("schemas", "ErrorDetail"), "A failure: `success` is false, `message` says what to "
        "fix, `data` is empty or holds one ErrorDetail.", success=False, max_items=1)
    job_parameters = nullable({"type": "object", "additionalProperties": True,
                               "description": "Handed to the worker; null means {}."})
    result["JobCreate"] = {
        "type": "object", "required": ["worker"],
        "properties": {
            "worker": WORKER_NAME,
            "parameters": job_parameters,
            "start": {"type": "boolean", "default": False,
                      "description": "true: start the job at once, in this request."},
        },
        "example": {"worker": "TestWorker", "parameters": {"count": 3, "sleep": 1}},
    }
    result["JobBatch"] = {
        "type": "object", "required": ["jobs"], "additionalProperties": False,
        "properties": {
            "jobs": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": {
                "type": "object", "required": ["worker"], "additionalProperties": False,
                "properties": {"worker": WORKER_NAME, "parameters": job_parameters}}},
            "start": {"type": "boolean", "default": False,
                      "description": "true: start every job at once, in this request."},
        },
        "example": {"jobs": [{"worker": "Foobar"},
                             {"worker": "TestWorker", "parameters": {"count": 3}}],
                    "start": True},
    }
    result["Command"] = {"type": "string", "enum": list(COMMANDS)}
    result["EmptyEnvelope"] = envelope({}, "Done; `data` is empty.", max_items=0)
    password = {"type": "string", "minLength": MIN_PASSWORD, "maxLength": MAX_PASSWORD}
    result["Login"] = {
        "type": "object", "required": ["username", "password"],
        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        "example": {"username": "admin", "password": "correct horse battery staple"},
    }
    result["UserCreate"] = {
        "type": "object", "required": ["username", "password"],
        "properties": {"username": USER_NAME, "password": password,
                       "role": dict(ROLE, default="viewer")},
        "example": {"username": "ann", "password": "a long passphrase", "role": "operator"},
    }
    result["UserUpdate"] = {
        "type": "object", "additionalProperties": False,
        "description": "Either or both; any other field is refused (400).",
        "properties": {"role": ROLE, "disabled": {"type": "boolean"}},
        "example": {"role": "viewer", "disabled": False},
    }
    result["PasswordChange"] = {
        "type": "object", "required": ["password"],
        "properties": {
            "password": dict(password, description="The new password."),
            "current": {"type": "string", "description": "Your current password: needed "
                                                         "unless you are an admin."},
        },
        "example": {"current": "the old passphrase", "password": "a new long passphrase"},
    }
    result["TokenCreate"] = {
        "type": "object", "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "role": dict(ROLE, description="At most your own role, which is the default."),
            "expires_in": nullable({"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                    "description": "Seconds until it expires; absent or null "
                                                   "for never."}),
        },
        "example": {"name": "nightly import", "role": "operator", "expires_in": 86400},
    }
    return result


def parameters():
    def query(name, description, schema):
        # The server reads an empty value (`?offset=`) as no value: the default, no filter.
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema, "allowEmptyValue": True}

    def page_limit(default, maximum):
        return query("limit", "How many items at most.",
                     {"type": "integer", "minimum": 0, "maximum": maximum, "default": default})

    return {
        "JobId": {"name": "id", "in": "path", "required": True, "description": "The job's id.",
                  "schema": {"type": "string"}},
        "WorkerName": {"name": "name", "in": "path", "required": True,
                       "description": "The worker's name (400 when it is not a valid name).",
                       "schema": WORKER_NAME},
        "Offset": query("offset", "How many items to skip.",
                        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
        "JobsLimit": page_limit(50, MAX_PAGE),
        "EntriesLimit": page_limit(1000, MAX_ENTRY_PAGE),
        "StatusFilter": query("status", "Only jobs with this status.",
                              {"type": "string", "enum": STATUSES}),
        "WorkerFilter": query("worker", "Only jobs of this worker.", WORKER_NAME),
        "LogFrom": query("log_from", "The first log entry to send (its index).",
                         {"type": "integer", "minimum": 0, "default": 0}),
        "ResponseFrom": query("response_from", "The first response entry to send (its index).",
                              {"type": "integer", "minimum": 0, "default": 0}),
        "UserName": {"name": "name", "in": "path", "required": True,
                     "description": "The user's name.", "schema": USER_NAME},
        "TokenId": {"name": "id", "in": "path", "required": True,
                    "description": "The token's id (the part after `%s` in the token)."
                                   % TOKEN_PREFIX, "schema": {"type": "string"}},
        "TokenUser": query("user", "Whose tokens: a username, or `*` for everyone's (admins "
                                   "only, 403 for others); your own when absent.",
                           {"type": "string"}),
        "AuditLimit": page_limit(AUDIT_PAGE, MAX_AUDIT_PAGE),
        "ActorFilter": query("actor", "Only entries of this user.", {"type": "string"}),
        "ActionFilter": query("action", "Only entries of this action (`job.start`, say).",
                              {"type": "string"}),
        "Format": query("format", "`text` gives the messages as plain lines, one per entry "
                                  "(as does `Accept: text/plain`); any other value, JSON.",
                        {"type": "string", "example": "text"}),
    }


def responses():
    result = {}
    for status, (name, description) in ERROR_RESPONSES.items():
        result[name] = {"description": description, "content": {
            "application/json": {"schema": ref("schemas", "ErrorEnvelope")}}}
    result["Unauthorized"]["headers"] = {"WWW-Authenticate": header(
        'The Basic challenge: `Basic realm="JobJoker", charset="UTF-8"`. Not sent to a request '
        "with an `X-Requested-With` header (the admin page's own, which shows its sign-in form "
        "instead of the browser's dialog).", required=False)}
    result["MethodNotAllowed"]["headers"] = {"Allow": header(
        "The methods the resource does answer, such as `GET`.")}
    result["TooManyRequests"]["headers"] = {"Retry-After": header(
        "Seconds until the throttle lets this account and address try again.",
        {"type": "integer", "minimum": 1})}
    result["Unavailable"]["headers"] = {"Retry-After": header(
        "Seconds to wait before trying again (sent when the database is away).",
        {"type": "integer", "minimum": 0}, required=False)}
    return result


# --- paths -------------------------------------------------------------------------------------

def server_paths():
    return {
        "/health": {"get": operation(
            "getHealth", "server", "Is the server ready?",
            {"200": json_reply("Ready: the database and the supervisor answer.",
                               "HealthEnvelope")},
            description="So load balancers and scripts can ask.")},
        "/": {"get": operation(
            "getAdminPage", "server", "The admin page",
            {"200": text_reply("The page's HTML.", "text/html"),
             "302": {"description": "No credentials, from a browser (`Accept: text/html`): "
                                    "off to the sign-in form.",
                     "headers": {"Location": header("`/login`.")}}},
            description="Without credentials a browser is sent to /login; a script gets the "
                        "401.")},
        "/login": {"get": operation(
            "getLoginPage", "server", "The sign-in form",
            {"200": text_reply("The form's HTML; it posts to /session.", "text/html")})},
        "/openapi.json": {"get": operation(
            "getOpenAPI", "server", "This document",
            {"200": {"description": "The OpenAPI document itself (not in the envelope).",
                     "content": {"application/json": {"schema": {
                         "type": "object", "required": ["openapi", "info", "paths"]}}}}})},
    }


def worker_paths():
    name = [ref("parameters", "WorkerName")]
    return {
        "/workers": {"get": operation(
            "listWorkers", "workers", "List the workers",
            {"200": json_reply("Every worker with its description.", "WorkerListEnvelope")})},
        "/workers/{name}": {
            "parameters": name,
            "get": operation(
                "getWorker", "workers", "Read a worker's summary",
                {"200": json_reply("The worker's name, description, size, modified time and "
                                   "hash.", "WorkerEnvelope")},
                errors=["400", "404"]),
            "put": operation(
                "saveWorker", "workers", "Create or replace a worker's code",
                {"200": json_reply("Saved over the old code.", "WorkerEnvelope"),
                 "201": json_reply("Created.", "WorkerEnvelope")},
                errors=["400", "413", "422"],
                body=plain_text_body(
                    "The worker's Python source (UTF-8), defining `class <name>(jobjoker.Worker)`"
                    " with a `run` method. It is parsed, never run, before it is saved.",
                    media_types=("text/x-python", "text/plain")),
                description="Worker code runs as the server's user, hence admins only. 400 for "
                            "an invalid name or code that is not UTF-8; 413 past the worker "
                            "size limit; 422 for code that does not parse or lacks the class "
                            "(with the line)."),
            "delete": operation(
                "deleteWorker", "workers", "Delete a worker",
                {"200": json_reply("Deleted; `data` holds its last summary.", "WorkerEnvelope")},
                errors=["400", "404", "409"],
                description="409 while one of its jobs is active."),
        },
        "/workers/{name}/code": {
            "parameters": name,
            "get": operation(
                "getWorkerCode", "workers", "Read a worker's source code",
                {"200": text_reply("The code.")}, errors=["400", "404"]),
        },
    }


def entries_path(stream):
    """``/jobs/{id}/log`` or ``/jobs/{id}/response``: one route, two paths."""
    title = stream.capitalize()
    return {
        "parameters": [ref("parameters", "JobId")],
        "get": operation(
            "getJob%s" % title, "jobs", "Read a page of the job's %s" % stream,
            {"200": {
                "description": "Entries from `offset`, oldest first.",
                "headers": {"X-Total-Count": header(
                    "How many entries the %s holds in all." % stream,
                    {"type": "integer", "minimum": 0})},
                "content": {
                    "application/json": {"schema": ref("schemas", "EntryListEnvelope")},
                    "text/plain": {"schema": {"type": "string"}},
                }}},
            errors=["400", "404"],
            parameters=[ref("parameters", "Offset"), ref("parameters", "EntriesLimit"),
                        ref("parameters", "Format")]),
        "post": operation(
            "appendJob%s" % title, "jobs", "Append one entry to the job's %s" % stream,
            {"201": json_reply("Appended.", "AppendedEntryEnvelope")},
            errors=["400", "404", "413"],
            body=plain_text_body("The message (UTF-8); newlines stay inside the one entry. "
                                 "No body appends an empty entry.", required=False)),
    }


def download_path(stream):
    """``/jobs/{id}/log/download`` or ``/jobs/{id}/response/download``."""
    return {
        "parameters": [ref("parameters", "JobId")],
        "get": operation(
            "download%s" % stream.capitalize(), "jobs", "Download the job's whole %s" % stream,
            {"200": {"description": "Every message, one per line, as an attachment "
                                    "(`Content-Disposition`), however long.",
                     "headers": {"Content-Disposition": header(
                         'attachment; filename="job-{id}-%s.txt"' % stream)},
                     "content": {"text/plain": {"schema": {"type": "string"}}}}},
            errors=["404"]),
    }


def job_paths():
    job_id = [ref("parameters", "JobId")]
    return {
        "/jobs": {
            "get": operation(
                "listJobs", "jobs", "List jobs, newest first",
                {"200": json_reply("A page of jobs.", "JobListEnvelope")},
                errors=["400"],
                parameters=[ref("parameters", name) for name in
                            ("StatusFilter", "WorkerFilter", "Offset", "JobsLimit")]),
            "post": operation(
                "createJob", "jobs", "Create a job, idle or started",
                {"201": json_reply("Created: idle (start it with PUT /jobs/{id}/status), or "
                                   "with `\"start\": true` started too (active, with its pid, "
                                   "or already ended if it ran that fast).",
                                   "JobEnvelope", headers={"Location": header(
                                       "The new job's path, /jobs/{id}.")})},
                errors=["400", "404", "413", "422"],
                body=json_body("JobCreate"),
                description="400 for a body that is not a JSON object, lacks `worker`, has "
                            "parameters holding NaN or Infinity, or a `start` that is not a "
                            "boolean; 404 for an unknown worker; 413 for parameters past their "
                            "limit; 422 for `parameters` that are neither an object nor null, "
                            "or that do not fit what the worker declares (every problem is "
                            "listed). 503 with `\"start\": true` when the job was created but "
                            "could not start: it stays, ended `error`, and the message names "
                            "it."),
        },
        "/jobs/batch": {
            "post": operation(
                "createJobs", "jobs", "Create many jobs at once, idle or started",
                {"201": json_reply("Created, in the order given: idle, or with "
                                   "`\"start\": true` started too. A job that could not start "
                                   "is there ended `error` (the message counts them).",
                                   "JobListEnvelope")},
                errors=["400", "413"],
                body=json_body("JobBatch"),
                description="All or none: every job is checked as POST /jobs checks one, "
                            "before any is created. 400 names the first problems by their "
                            "place (`jobs[3].worker: no worker named 'X'`), unknown keys "
                            "included, or says the batch holds more than %d jobs; 413 for a "
                            "body past the size limit. 503 with `\"start\": true` when the "
                            "jobs were created but none could start (they stay, ended "
                            "`error`)." % MAX_BATCH),
        },
        "/jobs/{id}": {
            "parameters": job_id,
            "get": operation("getJob", "jobs", "Read a job",
                             {"200": json_reply("The job.", "JobEnvelope")},
                             errors=["404"]),
            "delete": operation(
                "deleteJob", "jobs", "Delete a job with its log and response",
                {"200": json_reply("Deleted; `data` holds the job as it was.", "JobEnvelope")},
                errors=["404", "409"], description="409 while the job is active."),
        },
        "/jobs/{id}/status": {
            "parameters": job_id,
            "get": operation("getJobStatus", "jobs", "Read a job's status",
                             {"200": json_reply("The status.", "StatusEnvelope")},
                             errors=["404"]),
            "put": operation(
                "commandJob", "jobs", "Start, stop or kill a job",
                {"200": json_reply("Started: the job is active, with its pid.", "JobEnvelope"),
                 "202": json_reply("Stopping (SIGTERM sent, SIGKILL follows after the grace "
                                   "period) or being killed (SIGKILL sent); the job becomes "
                                   "`stop` once its process is reaped.", "JobEnvelope")},
                errors=["400", "404", "409", "413"],
                body={"required": True, "description": "The command word, in any case.",
                      "content": {
                          "text/plain": {"schema": ref("schemas", "Command")},
                          "application/json": {"schema": {"oneOf": [
                              ref("schemas", "Command"),
                              {"type": "object", "required": ["status"],
                               "properties": {"status": ref("schemas", "Command")}}]}}}},
                description="400 for another word (statuses such as `done` are the "
                            "server's to set); 404 for an unknown job, or a worker deleted "
                            "since; 409 when the job's status forbids the command, or it runs "
                            "on another server; 503 when the supervisor cannot be reached."),
        },
        "/jobs/{id}/log": entries_path("log"),
        "/jobs/{id}/response": entries_path("response"),
        "/jobs/{id}/log/download": download_path("log"),
        "/jobs/{id}/response/download": download_path("response"),
        "/jobs/{id}/pid": {
            "parameters": job_id,
            "get": operation("getJobPid", "jobs", "Read a job's pid",
                             {"200": json_reply("The pid (null until started).", "PidEnvelope")},
                             errors=["404"]),
            "put": operation(
                "setJobPid", "jobs", "Refused: the server alone sets the pid",
                {}, errors=["404", "405"],
                description="Always 405 for an existing job: use PUT /jobs/{id}/status."),
        },
        "/jobs/{id}/stream": {
            "parameters": job_id,
            "get": operation(
                "streamJob", "streams", "Follow a job live (WebSocket)",
                {"101": {"description": "Upgraded to a WebSocket. The server sends JSON text "
                                        "messages: `status` (now and on every change), `log` and "
                                        "`response` (`seq` and `entries`, backlog first, then "
                                        "live, no gap, no duplicate) and `end` once the job is "
                                        "final and everything was sent; then it closes (1000). "
                                        "A subscriber that stops reading is closed with 1013. "
                                        "See docs/streams.md."}},
                errors=["400", "404"],
                parameters=[ref("parameters", "LogFrom"), ref("parameters", "ResponseFrom")],
                description="Credentials, the origin (403 from another site) and the job (404) "
                            "are checked before the upgrade."),
        },
        "/events": {
            "get": operation(
                "streamEvents", "streams", "Follow every job and worker change (WebSocket)",
                {"101": {"description": "Upgraded to a WebSocket. Each message is "
                                        "`{\"type\": \"job\", \"action\": \"created\"|"
                                        "\"status\"|\"updated\"|\"deleted\", \"job\": {...}}` "
                                        "or `{\"type\": \"worker\", \"action\": \"saved\"|"
                                        "\"deleted\", \"name\": ...}`. See docs/streams.md."}},
                errors=["400"],
                description="Credentials and the origin (403 from another site) are checked "
                            "before the upgrade."),
        },
    }


def session_paths():
    cookies = {"Set-Cookie": header(
        "`%s=<secret>; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d` (and `Secure` under TLS); "
        "also `_xsrf=<token>` when the request had no XSRF cookie yet."
        % (SESSION_COOKIE, SESSION_SECONDS))}
    return {"/session": {
        "get": operation(
            "getSession", "session", "Who am I?",
            {"200": json_reply("The signed-in user, the credentials used and the XSRF token "
                               "(the `_xsrf` cookie is set when the request had none).",
                               "SessionEnvelope")}),
        "post": operation(
            "login", "session", "Log in: start a browser session",
            {"201": json_reply("Signed in: the session cookie and the XSRF cookie are set.",
                               "SessionEnvelope", headers=cookies)},
            errors=["400", "401", "413", "429"], body=json_body("Login"),
            description="Checks the username and password and sets the `%s` cookie (a "
                        "server-side session that logout or a password change revokes, good "
                        "for %d hours). Throttled like every password check: 429 after too "
                        "many failures for the account or the address, even with the right "
                        "password. 401 looks the same for an unknown user and a wrong "
                        "password." % (SESSION_COOKIE, SESSION_SECONDS // 3600)),
        "delete": operation(
            "logout", "session", "Log out",
            {"200": json_reply("Signed out: a session is revoked on the server and its cookie "
                               "cleared.", "EmptyEnvelope", headers={"Set-Cookie": header(
                                   "Clears `%s`." % SESSION_COOKIE)})},
            description="With Basic or a token there is no session to end; the call is only "
                        "recorded."),
    }}


def user_paths():
    name = [ref("parameters", "UserName")]
    return {
        "/users": {
            "get": operation(
                "listUsers", "users", "List the users",
                {"200": json_reply("Every user.", "UserListEnvelope")}),
            "post": operation(
                "createUser", "users", "Create a user",
                {"201": json_reply("Created.", "UserEnvelope")},
                errors=["400", "409", "413", "422"],
                body=json_body("UserCreate"),
                description="400 for a body that is not an object or an invalid username; 409 "
                            "when the name is taken; 422 for an unknown role or a password of "
                            "fewer than %d or more than %d characters."
                            % (MIN_PASSWORD, MAX_PASSWORD)),
        },
        "/users/{name}": {
            "parameters": name,
            "get": operation(
                "getUser", "users", "Read a user",
                {"200": json_reply("The user.", "UserEnvelope")},
                errors=["404"],
                description="An admin may read anyone; others only themselves (403)."),
            "patch": operation(
                "updateUser", "users", "Change a user's role or disabled flag",
                {"200": json_reply("The user as changed.", "UserEnvelope")},
                errors=["400", "404", "409", "413", "422"],
                body=json_body("UserUpdate"),
                description="Lowering a role or disabling ends the user's browser sessions at "
                            "once. 400 for another field or a `disabled` that is not a boolean; "
                            "409 when it would leave no active admin; 422 for an unknown role."),
            "delete": operation(
                "deleteUser", "users", "Delete a user with their tokens and sessions",
                {"200": json_reply("Deleted; `data` holds the user as they were.",
                                   "UserEnvelope")},
                errors=["404", "409"],
                description="409 for the last active admin."),
        },
        "/users/{name}/password": {
            "parameters": name,
            "put": operation(
                "setPassword", "users", "Set a user's password",
                {"200": json_reply("Changed; the user's browser sessions are ended.",
                                   "UserEnvelope")},
                errors=["400", "404", "413", "422"],
                body=json_body("PasswordChange"),
                description="Your own with `current` (403 when it is wrong), or anyone's as an "
                            "admin (403 for others). 422 for a password of fewer than %d or "
                            "more than %d characters." % (MIN_PASSWORD, MAX_PASSWORD)),
        },
    }


def token_paths():
    return {
        "/tokens": {
            "get": operation(
                "listTokens", "tokens", "List API tokens",
                {"200": json_reply("The tokens, newest first, never their secrets.",
                                   "TokenListEnvelope")},
                parameters=[ref("parameters", "TokenUser")],
                description="Your own; an admin may ask for anyone's with `?user=NAME`, or "
                            "everyone's with `?user=*`."),
            "post": operation(
                "createToken", "tokens", "Create an API token",
                {"201": json_reply("Created: `token` holds the secret, shown only this once.",
                                   "TokenCreatedEnvelope")},
                errors=["400", "413", "422"], body=json_body("TokenCreate"),
                description="For yourself, with a role no higher than yours (403 above it). A "
                            "token cannot create tokens (403 with Bearer): sign in with a "
                            "password. 400 for a missing or overlong `name` or an `expires_in` "
                            "that is not a positive number; 422 for an unknown role."),
        },
        "/tokens/{id}": {
            "parameters": [ref("parameters", "TokenId")],
            "delete": operation(
                "revokeToken", "tokens", "Revoke an API token",
                {"200": json_reply("Revoked at once (again: no change); `data` holds the "
                                   "token.", "TokenEnvelope")},
                errors=["404"],
                description="Its owner or an admin; anyone else's token is a 404, as if it "
                            "did not exist."),
        },
    }


def audit_paths():
    return {"/audit": {"get": operation(
        "listAudit", "audit", "Read the audit trail, newest first",
        {"200": json_reply("A page of entries.", "AuditListEnvelope")},
        errors=["400"],
        parameters=[ref("parameters", name) for name in
                    ("ActorFilter", "ActionFilter", "Offset", "AuditLimit")],
        description="Who created, started, stopped, killed or deleted which job, who "
                    "changed which worker, user or token, who logged in or failed to.")}}


# --- the document ------------------------------------------------------------------------------

def openapi_document(routes=None):
    """The OpenAPI 3.0.3 document of the whole REST API.

    ``routes`` are the ``(pattern, handler class)`` pairs whose handlers say who may call each
    operation: the application's own unless given.
    """
    paths = authorize({
        **server_paths(), **worker_paths(), **job_paths(), **session_paths(), **user_paths(),
        **token_paths(), **audit_paths()}, route_table() if routes is None else routes)
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
        "servers": [{"url": "/"}],
        "security": CREDENTIALS,
        "tags": [
            {"name": "jobs", "description": "Runs of workers, their log and response."},
            {"name": "streams", "description": "Live updates over WebSockets."},
            {"name": "workers", "description": "Worker code."},
            {"name": "session", "description": "Browser login and logout."},
            {"name": "users", "description": "Accounts, roles and passwords."},
            {"name": "tokens", "description": "API tokens for scripts."},
            {"name": "audit", "description": "Who did what."},
            {"name": "server", "description": "Health, the admin page, this document."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": security_schemes(),
            "schemas": schemas(),
            "parameters": parameters(),
            "responses": responses(),
        },
    }


def security_schemes():
    return {
        "basicAuth": {"type": "http", "scheme": "basic",
                      "description": "A user's name and password. Failed attempts are "
                                     "throttled per account and per address (429)."},
        "bearerAuth": {"type": "http", "scheme": "bearer",
                       "bearerFormat": "%s<id>_<secret>" % TOKEN_PREFIX,
                       "description": "An API token from POST /tokens; a request with it has "
                                      "the lesser of the token's role and its owner's."},
        "sessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                          "description": "The browser session that POST /session starts "
                                         "(HttpOnly, SameSite=Strict). On unsafe methods it "
                                         "counts only together with xsrfToken."},
        "xsrfToken": {"type": "apiKey", "in": "header", "name": "X-XSRFToken",
                      "description": "The value of the `_xsrf` cookie (also `xsrf` in GET "
                                     "/session), echoed in this header; the `_xsrf` cookie "
                                     "must be sent as well. A cross-site form cannot know it."},
    }
