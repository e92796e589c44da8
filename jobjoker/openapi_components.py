"""The reusable parts of the OpenAPI document: what the API's messages look like.

Contract: ``components()`` returns a new dict of OpenAPI ``components`` (the schemas of every
item, envelope and request body, the shared query and path parameters, one response per error
status, the security schemes); ``ref(kind, name)`` refers to one of them, and
``ERROR_RESPONSES`` names the response component of each error status. Enums and limits come
from the domain modules they describe, so they cannot drift apart.
"""
from jobjoker import __version__
from jobjoker.accounts import MAX_PASSWORD, MAX_TOKEN_NAME, MIN_PASSWORD, USERNAME
from jobjoker.auth import SESSION_COOKIE, TOKEN_PREFIX
from jobjoker.logsearch import MAX_SEARCH_CHARS
from jobjoker.roles import ROLES
from jobjoker.paging import DEFAULT_SIZES, MAX_OFFSET, largest
from jobjoker.parameters import MASK
from jobjoker.parameters import TYPES as PARAMETER_TYPES
from jobjoker.states import COMMANDS, REASONS, JobStatus
from jobjoker.usage_series import DEFAULT_CAP
from jobjoker.worker_settings import MAX_TIMEOUT
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
    "503": ("Unavailable", "A dependency (the database or the supervisor) is away or busy, or "
                           "the server holds as many request bodies and large replies as it "
                           "may at once (--max-body-memory, then with `Retry-After`); the "
                           "request may succeed later."),
}


def components(config):
    """Every component of the document, under OpenAPI's names (its limits from ``config``)."""
    return {
        "securitySchemes": security_schemes(),
        "schemas": schemas(config),
        "parameters": parameters(config),
        "responses": responses(),
    }


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


def header(description, schema=None, required=True):
    """A response header; ``required`` ones are sent with every such response."""
    return {"description": description, "required": required,
            "schema": schema or {"type": "string"}}


def retry_fields():
    """The Job's retry policy (``jobjoker.retries``), from ``openapi_retries``."""
    from jobjoker.openapi_retries import retry_policy_fields  # it builds on this module
    return retry_policy_fields()


def retry_body(whole_batch=False):
    """The retry settings the bodies that create jobs take, from ``openapi_retries``."""
    from jobjoker.openapi_retries import retry_body_fields
    return retry_body_fields(whole_batch)


def item_schemas():
    """The items that envelopes carry."""
    return {
        "Job": strict_object("A job: one run of a worker with its parameters.", {
            "id": {"type": "string", "description": "Opaque, URL-safe and time-ordered.",
                   "example": "01m8rtezv60hs6kq8t9t"},
            "worker": WORKER_NAME,
            "status": {"type": "string", "enum": STATUSES,
                       "description": "idle [-> scheduled] [-> queued] -> active (<-> "
                                      "paused) -> one of stop, error, done."},
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
            "timeout": nullable({"type": "number", "description":
                                 "Its time limit in seconds from its start (its own, else its "
                                 "worker's, else the server's `--default-timeout`)."}),
            "deadline": nullable(dict(TIMESTAMP, description=
                                      "When its time limit runs out (set when it starts).")),
            "stop_reason": nullable({"type": "string", "enum": ["timeout"], "description":
                                     "Why the server itself stopped it (null: a request)."}),
            "pause_requested": nullable(dict(TIMESTAMP, description=
                                             "When a pause was asked for (null once resumed).")),
            "progress": nullable({"type": "number", "minimum": 0, "maximum": 1, "description":
                                  "How far it is, 0-1, as its worker last said "
                                  "(`self.progress()`)."}),
            "progress_message": nullable({"type": "string",
                                          "description": "What its worker said with it."}),
            "result_size": nullable({"type": "integer", "minimum": 0, "description":
                                     "Bytes of its structured result (`self.result()`), null "
                                     "when it has none: `GET /jobs/{id}/result` returns it."}),
            "rerun_of": nullable({"type": "string", "description":
                                  "The job this one runs again (`POST /jobs/{id}/rerun`)."}),
            "code_hash": nullable({"type": "string", "description":
                                   "The SHA-256 of the worker code it ran "
                                   "(`GET /jobs/{id}/code`)."}),
            "cpu_seconds": nullable({"type": "number", "minimum": 0, "description":
                                     "CPU time of its whole process group so far."}),
            "rss_bytes": nullable({"type": "integer", "minimum": 0, "description":
                                   "Resident memory of its process group at the last sample."}),
            "max_rss_bytes": nullable({"type": "integer", "minimum": 0, "description":
                                       "The peak of its resident memory."}),
            "start_at": nullable({"type": "number", "description":
                                  "When a `scheduled` job starts (epoch seconds): its "
                                  "`start_at`, or a retry's delay."}),
            "queued": nullable({"type": "number", "description":
                                "When it joined the queue of a concurrency cap (epoch "
                                "seconds): the queue is first in, first out."}),
            "reason": nullable({"type": "string", "enum": list(REASONS), "description":
                                "Why it ended, for machines (null until it ends): "
                                + "; ".join("`%s`: %s" % item for item in REASONS.items())
                                + "."}),
            "schedule_id": nullable({"type": "string", "description":
                                     "The schedule whose firing made it."}),
            "retry_of": nullable({"type": "string", "description":
                                  "The job this one retries (a retry chain)."}),
            "attempt": nullable({"type": "integer", "minimum": 1, "description":
                                 "Its attempt in a retry chain: 1 for a first run."}),
            **retry_fields(),
            "queue_position": nullable({"type": "integer", "minimum": 1, "description":
                                        "A `queued` job's place in the queue, 1 next, in the "
                                        "order (`queued`, `id`); null otherwise. Computed "
                                        "when read: events carry none."}),
        }),
        "Worker": strict_object("A worker: a Python class in the workers folder.", {
            "name": WORKER_NAME,
            "description": {"type": "string", "description": "The class docstring."},
            "error": nullable({"type": "string",
                               "description": "Why the file is not a valid worker (it runs no "
                                              "job); null when it is one."}),
            "parameters": nullable({
                "type": "object", "additionalProperties": ref("schemas", "ParameterSpec"),
                "description": "The parameters the class declares (`parameters = {...}`), by "
                               "name; a job's parameters are checked against them. Null when "
                               "it declares none (then any object is accepted)."}),
            "size": {"type": "integer", "minimum": 0, "description": "Bytes of code."},
            "modified": TIMESTAMP,
            "hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
            "timeout": nullable({"type": "number", "description":
                                 "The time limit in seconds its class declares (`timeout = "
                                 "3600`), for jobs that set none; null when it declares none."}),
            "max_active": nullable({"type": "integer", "minimum": 1, "description":
                                    "How many of its jobs may be active at once (`max_active "
                                    "= 2`); more wait `queued`. Null: no cap of its own."}),
            "retries": nullable({"type": "integer", "minimum": 0, "description":
                                 "How often a job of it that ends `error` is retried "
                                 "(`retries = 3`), for jobs that set none."}),
            "retry_delay": nullable({"type": "number", "minimum": 0, "description":
                                     "Seconds before the first retry (`retry_delay = 10`)."}),
            "retry_backoff": nullable({"type": "number", "minimum": 1, "description":
                                       "The factor each further retry's delay grows by."}),
            "retry_on_timeout": nullable({"type": "boolean", "description":
                                          "Whether a job its time limit ended is retried "
                                          "(off unless declared)."}),
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
        "Usage": usage_schema(),
        "Health": strict_object("The server is ready, as the signed-in see it.", {
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
            "supervisors": {
                "type": "array", "minItems": 1, "description": "The supervisors, the processes "
                "that fork this server's jobs: the one of the installed code first (connected or "
                "not), then any started before an upgrade, which drain (run their jobs to the "
                "end, start none, then exit).",
                "items": strict_object("One supervisor.", {
                    "role": {"type": "string", "enum": ["current", "draining"]},
                    "connected": {"type": "boolean"},
                    "pid": nullable({"type": "integer"}),
                    "protocol": nullable({"type": "integer", "minimum": 1}),
                    "code_hash": nullable({"type": "string", "description":
                                           "SHA-256 of the code it loaded (null: older than "
                                           "protocol 4)."}),
                    "jobs": {"type": "integer", "minimum": 0,
                             "description": "Jobs running under it."},
                    "draining": {"type": "boolean"},
                })},
        }),
        "HealthBrief": strict_object("The server is ready, as anyone may see it.", {
            "status": {"type": "string", "enum": ["ok"]},
        }),
        "HealthReply": {"oneOf": [ref("schemas", "Health"), ref("schemas", "HealthBrief")]},
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
            "xsrf": nullable({"type": "string", "description": "This session's XSRF token "
                              "(also the `_xsrf` cookie), derived from the session: send it in "
                              "an `X-XSRFToken` header with every unsafe request that the "
                              "session cookie authenticates. Null for Basic and tokens."}),
        }),
        "StreamOrigin": strict_object("Whether WebSockets from a page's origin are allowed.", {
            "origin": {"type": "string", "description": "The origin asked about."},
            "host": nullable({"type": "string", "description": "The Host header this server "
                                                            "was reached by."}),
            "allowed": {"type": "boolean"},
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


AUDIT_ACTIONS = ("A dotted word: job.create, job.start, job.stop, job.kill, job.pause, "
                 "job.resume, job.timeout (by the server: actor null), job.delete, "
                 "worker.save, worker.delete, login.ok, login.failed, logout, user.create, "
                 "user.update, user.delete, user.password, token.create, token.revoke, "
                 "schedule.create, schedule.update, schedule.delete, schedule.pause, "
                 "schedule.resume, schedule.run (a run-now), schedule.fire (by the server: "
                 "actor null), job.retry (by the server), webhook.create, webhook.update, "
                 "webhook.delete, webhook.rotate, retention.prune (by the server).")


def token_properties():
    return {
        "id": {"type": "string", "pattern": "^[0-9a-f]+$", "example": "3f9a0c41d2e7"},
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_NAME,
                 "description": "What the token is for."},
        "username": dict(USER_NAME, description="Its owner."),
        "role": dict(ROLE, description="Never above its owner's: a request with it has the "
                                       "lesser of the two."),
        "created": TIMESTAMP,
        "expires": nullable(dict(TIMESTAMP, description="When it stops working (null: never).")),
        "last_used": nullable(dict(TIMESTAMP, description="Updated at most once a minute.")),
        "revoked": nullable(dict(TIMESTAMP, description="When it was revoked.")),
    }


def usage_schema():
    """``GET /jobs/{id}/usage``'s item (``jobjoker.usage``)."""
    point = {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "number"},
             "description": "`[t, cpu_seconds, rss_bytes]`: when (epoch seconds), the group's "
                            "CPU time so far (it only grows: the CPU use between two points is "
                            "their difference over their times), and the highest summed RSS "
                            "of the samples the point stands for.",
             "example": [1796129303.5, 12.25, 209715200]}
    return strict_object(
        "A job's CPU time and memory, of its whole process group (null: never measured).", {
            "id": {"type": "string"},
            "cpu_seconds": nullable({"type": "number", "minimum": 0, "description":
                                     "User + system CPU time so far (at the end: the higher "
                                     "of the sampled figure and the exact one of its exit)."}),
            "rss_bytes": nullable({"type": "integer", "minimum": 0, "description":
                                   "Summed resident memory at the last sample."}),
            "max_rss_bytes": nullable({"type": "integer", "minimum": 0, "description":
                                       "The highest summed resident memory sampled (or its "
                                       "exit's peak, if higher)."}),
            "sampling": {"type": "boolean", "description":
                         "Whether this server samples it now (it runs here, and "
                         "--usage-interval is not 0); the figures are then the latest."},
            "step": nullable({"type": "number", "minimum": 0, "description":
                              "Seconds between points: the sampling interval for the first "
                              "%d points, then doubled each time the series is full (null "
                              "without points)." % DEFAULT_CAP}),
            "points": {"type": "array", "maxItems": DEFAULT_CAP, "items": point,
                       "description": "The series, oldest first; its first and last points "
                                      "are the first and latest samples."},
        })


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
    "UsageEnvelope": ("Usage", "A job's resource use.", "one"),
    "JobWithResultEnvelope": ("JobWithResult", "One job, with its result.", "one"),
    "ResultEnvelope": ("ResultValue", "A job's result, alone.", "one"),
    "HealthEnvelope": ("HealthReply", "The server's readiness.", "one"),
    "SessionEnvelope": ("Session", "Who is signed in.", "one"),
    "StreamOriginEnvelope": ("StreamOrigin", "Whether an origin may open streams.", "one"),
    "UserEnvelope": ("User", "One user.", "one"),
    "UserListEnvelope": ("User", "Every user, by name.", "many"),
    "TokenEnvelope": ("Token", "One API token.", "one"),
    "TokenListEnvelope": ("Token", "API tokens, newest first.", "many"),
    "TokenCreatedEnvelope": ("TokenCreated", "The new token with its secret.", "one"),
    "AuditListEnvelope": ("AuditEntry", "A page of the audit trail, newest first.", "many"),
}


RESULT_VALUE = {"description": "A job's structured result: any JSON value its worker gave "
                               "`self.result()` (the last call), secrets masked in its strings."}


START_AT = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "nullable": True, "example": "2026-12-24T18:00:00Z",
            "description": "When the job starts: an RFC 3339 time with its offset, or seconds "
                           "since the epoch. The job waits `scheduled` until then (a time "
                           "passed starts it at once); it implies `\"start\": true`, and "
                           "`\"start\": false` beside it is 400. Anything but a time: 400 "
                           "naming `start_at`."}


def with_result(job):
    """The Job schema of ``GET /jobs/{id}``: a job and its result (lists and events leave it
    out: a result may be a megabyte)."""
    return dict(job, description="A job with its structured result.",
                required=job["required"] + ["result"],
                properties=dict(job["properties"], result=dict(
                    RESULT_VALUE, description="Its structured result (`self.result()`), or "
                                              "null when it has none (see `result_size`).")))


def schemas(config):
    result = item_schemas()
    result["JobWithResult"] = with_result(result["Job"])
    result["ResultValue"] = RESULT_VALUE
    for name, (item, description, count) in ENVELOPES.items():
        one = count == "one"
        result[name] = envelope(ref("schemas", item), description,
                                min_items=1 if one else 0, max_items=1 if one else None)
    result["ErrorEnvelope"] = envelope(
        ref("schemas", "ErrorDetail"), "A failure: `success` is false, `message` says what to "
        "fix, `data` is empty or holds one ErrorDetail.", success=False, max_items=1)
    job_parameters = nullable({"type": "object", "additionalProperties": True,
                               "description": "Handed to the worker; null means {}."})
    job_timeout = nullable({
        "type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": MAX_TIMEOUT, "example": 3600,
        "description": "The job's time limit in seconds: at it the job is stopped as a stop "
                       "request stops it and ends `error`, `timed out after N s`. Null or "
                       "absent: its worker's declared `timeout`, else the server's "
                       "`--default-timeout`, else none. Anything but a positive number: 400."})
    result["JobCreate"] = {
        "type": "object", "additionalProperties": False, "required": ["worker"],
        "properties": {
            "worker": WORKER_NAME,
            "parameters": job_parameters,
            "start": {"type": "boolean", "default": False,
                      "description": "true: start the job at once, in this request."},
            "timeout": job_timeout,
            **retry_body(),
            "start_at": START_AT,
        },
        "example": {"worker": "TestWorker", "parameters": {"count": 3, "sleep": 1}},
    }
    result["JobBatch"] = {
        "type": "object", "required": ["jobs"], "additionalProperties": False,
        "properties": {
            "jobs": {"type": "array", "minItems": 1, "maxItems": config.max_batch, "items": {
                "type": "object", "required": ["worker"], "additionalProperties": False,
                "properties": {"worker": WORKER_NAME, "parameters": job_parameters,
                               "timeout": job_timeout, "start_at": START_AT,
                               **retry_body()}}},
            "start": {"type": "boolean", "default": False,
                      "description": "true: start every job at once, in this request."},
            "timeout": dict(job_timeout, description="The time limit of each job of the batch "
                            "that gives none of its own (see JobCreate's `timeout`)."),
            **retry_body(whole_batch=True),
            "start_at": dict(START_AT, description="The start time of each job of the batch "
                             "that gives none of its own (see JobCreate's `start_at`)."),
        },
        "example": {"jobs": [{"worker": "Foobar"},
                             {"worker": "TestWorker", "parameters": {"count": 3}}],
                    "start": True},
    }
    result["Command"] = {"type": "string", "enum": list(COMMANDS)}
    result["EmptyEnvelope"] = envelope({}, "Done; `data` is empty.", max_items=0)
    password = {"type": "string", "minLength": MIN_PASSWORD, "maxLength": MAX_PASSWORD}
    result["Login"] = {
        "type": "object", "additionalProperties": False, "required": ["username", "password"],
        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        "example": {"username": "admin", "password": "correct horse battery staple"},
    }
    result["UserCreate"] = {
        "type": "object", "additionalProperties": False, "required": ["username", "password"],
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
        "type": "object", "additionalProperties": False, "required": ["password"],
        "properties": {
            "password": dict(password, description="The new password."),
            "current": {"type": "string", "description": "Your current password: needed "
                                                         "for your own, admins included."},
        },
        "example": {"current": "the old passphrase", "password": "a new long passphrase"},
    }
    result["TokenCreate"] = {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_NAME},
            "role": dict(ROLE, description="At most your own role, which is the default."),
            "expires_in": nullable({"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                    "description": "Seconds until it expires; absent or null "
                                                   "for never."}),
        },
        "example": {"name": "nightly import", "role": "operator", "expires_in": 86400},
    }
    from jobjoker.openapi_code import code_schemas  # it builds on this module's helpers
    result.update(code_schemas())
    from jobjoker.openapi_schedules import schedule_schemas  # as code_schemas
    result.update(schedule_schemas())
    from jobjoker.openapi_webhooks import webhook_schemas
    result.update(webhook_schemas())
    from jobjoker.openapi_retries import retry_schemas
    result.update(retry_schemas())
    return result


def parameters(config):
    def query(name, description, schema):
        # The server reads an empty value (`?offset=`) as no value: the default, no filter.
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema, "allowEmptyValue": True}

    def page_limit(default, maximum):
        return query("limit", "How many items at most.",
                     {"type": "integer", "minimum": 0, "maximum": maximum, "default": default})

    return {
        "JobId": {"name": "id", "in": "path", "required": True,
                  "description": "The job's id, or its short id: its last 6 characters, as the "
                                 "admin page shows them (409 naming the jobs when several "
                                 "share it).",
                  "schema": {"type": "string"}},
        "WorkerName": {"name": "name", "in": "path", "required": True,
                       "description": "The worker's name (400 when it is not a valid name).",
                       "schema": WORKER_NAME},
        "Offset": query("offset", "How many items to skip.",
                        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
        "JobsLimit": page_limit(DEFAULT_SIZES["jobs"], largest("jobs", config)),
        "EntriesLimit": page_limit(DEFAULT_SIZES["entries"], largest("entries", config)),
        "Search": query("search", "Only the entries whose message holds this text (a plain "
                        "substring, matched literally); the scan answers within "
                        "`--search-seconds` and `X-Next-Offset` says where to search on.",
                        {"type": "string", "maxLength": MAX_SEARCH_CHARS}),
        "IgnoreCase": query("ignore_case", "With `search`: match in any case (Unicode case "
                            "folding).", {"type": "boolean", "default": False}),
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
        "AuditLimit": page_limit(DEFAULT_SIZES["audit"], largest("audit", config)),
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
                      "description": "The session's XSRF token (`xsrf` in GET /session, "
                                     "also the `_xsrf` cookie), echoed in this header; only "
                                     "the token of the session that the cookie names counts, "
                                     "and never a `_xsrf` URL or form argument. A cross-site "
                                     "form cannot know it."},
    }
