"""The OpenAPI 3.0 description of the REST API (served at ``/openapi.json``).

Contract: ``openapi_document()`` returns the whole document as plain JSON-ready data, a new dict
on every call. It is built from small helpers — one generator for the reply envelope, shared
parameters, request bodies and error responses under ``components`` — so each path below reads
as the handler it describes. Enums and limits come from the domain modules they describe, so they
cannot drift apart; ``tests/test_openapi.py`` checks the rest against the route table and against
real replies.
"""
from jobjoker import __version__
from jobjoker.jobs import MAX_ENTRY_PAGE, MAX_PAGE
from jobjoker.states import COMMANDS, JobStatus
from jobjoker.workers import NAME_PATTERN, NAME_RULE

STATUSES = [status.value for status in JobStatus]
WORKER_NAME = {"type": "string", "pattern": "^%s$" % NAME_PATTERN.pattern,
               "description": "A worker name: %s." % NAME_RULE, "example": "Foobar"}
TIMESTAMP = {"type": "number", "format": "double", "description": "Seconds since the epoch."}

# Error statuses and the shared response component each one refers to.
ERROR_RESPONSES = {
    "400": ("BadRequest", "The request is malformed: bad JSON, a missing field, an invalid "
                          "name, an unknown word, a bad offset or limit."),
    "401": ("Unauthorized", "No valid HTTP Basic credentials were sent."),
    "404": ("NotFound", "The job or worker named does not exist."),
    "405": ("MethodNotAllowed", "The resource exists, but the server alone may change it."),
    "409": ("Conflict", "The request is valid, but the current state forbids it "
                        "(an active job, say)."),
    "413": ("TooLarge", "The body, the parameters or the worker code exceed their limit."),
    "422": ("Unprocessable", "Well-formed but invalid content. For worker code that does not "
                             "parse, `data` holds one item with the offending `line`."),
    "403": ("Forbidden", "A WebSocket upgrade from another origin than the server's own."),
    "500": ("InternalError", "An unexpected failure; the details are in the server log only."),
    "503": ("Unavailable", "A dependency (the database or the supervisor) is away or busy; the "
                           "request may succeed later."),
}


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
              description=None, public=False):
    """One operation: its 2xx ``replies`` plus the shared error responses for ``errors``.

    Every operation can fail with 500, and with 503 while the database is away; every one but
    the ``public`` ones answers 401 without credentials (and a public one overrides the global
    security requirement with none).
    """
    responses = dict(replies)
    statuses = set(errors) | {"500", "503"} | (set() if public else {"401"})
    for status in sorted(statuses):
        responses[status] = ref("responses", ERROR_RESPONSES[status][0])
    result = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        result["description"] = description
    if parameters:
        result["parameters"] = parameters
    if body:
        result["requestBody"] = body
    result["responses"] = responses
    if public:
        result["security"] = []
    return result


def plain_text_body(description, media_types=("text/plain",)):
    """A required request body of text."""
    return {"required": True, "description": description,
            "content": {media_type: {"schema": {"type": "string"}} for media_type in media_types}}


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
                           "description": "The parameters the job was created with."},
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
        }),
        "Worker": strict_object("A worker: a Python class in the workers folder.", {
            "name": WORKER_NAME,
            "description": {"type": "string", "description": "The class docstring."},
            "size": {"type": "integer", "minimum": 0, "description": "Bytes of code."},
            "modified": TIMESTAMP,
            "hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        }),
        "Entry": strict_object("One entry of a job's log or response.", {
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
        }),
        "ErrorDetail": strict_object("Where worker code went wrong.", {
            "line": {"type": "integer", "minimum": 1},
        }),
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
    result["JobCreate"] = {
        "type": "object", "required": ["worker"],
        "properties": {
            "worker": WORKER_NAME,
            "parameters": nullable({"type": "object", "additionalProperties": True,
                                    "description": "Handed to the worker; null means {}."}),
        },
        "example": {"worker": "TestWorker", "parameters": {"count": 3, "sleep": 1}},
    }
    result["Command"] = {"type": "string", "enum": list(COMMANDS)}
    return result


def parameters():
    def query(name, description, schema):
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema}

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
                        {"type": "integer", "minimum": 0, "default": 0}),
        "JobsLimit": page_limit(50, MAX_PAGE),
        "EntriesLimit": page_limit(1000, MAX_ENTRY_PAGE),
        "StatusFilter": query("status", "Only jobs with this status.",
                              {"type": "string", "enum": STATUSES}),
        "WorkerFilter": query("worker", "Only jobs of this worker.", WORKER_NAME),
        "LogFrom": query("log_from", "The first log entry to send (its index).",
                         {"type": "integer", "minimum": 0, "default": 0}),
        "ResponseFrom": query("response_from", "The first response entry to send (its index).",
                              {"type": "integer", "minimum": 0, "default": 0}),
        "Format": query("format", "`text` gives the messages as plain lines, one per entry "
                                  "(as does `Accept: text/plain`).",
                        {"type": "string", "enum": ["text"]}),
    }


def responses():
    result = {}
    for status, (name, description) in ERROR_RESPONSES.items():
        result[name] = {"description": description, "content": {
            "application/json": {"schema": ref("schemas", "ErrorEnvelope")}}}
    result["Unauthorized"]["headers"] = {"WWW-Authenticate": header(
        'The Basic challenge: `Basic realm="JobJoker", charset="UTF-8"`.')}
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
            public=True,
            description="Needs no credentials, so load balancers and scripts can ask.")},
        "/": {"get": operation(
            "getAdminPage", "server", "The admin page",
            {"200": text_reply("The page's HTML.", "text/html")})},
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
                description="400 for an invalid name or code that is not UTF-8; 413 past the "
                            "worker size limit; 422 for code that does not parse or lacks the "
                            "class (with the line)."),
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
            body=plain_text_body("The message (UTF-8); newlines stay inside the one entry.")),
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
                "createJob", "jobs", "Create an idle job",
                {"201": json_reply("Created; start it with PUT /jobs/{id}/status.",
                                   "JobEnvelope", headers={"Location": header(
                                       "The new job's path, /jobs/{id}.")})},
                errors=["400", "404", "413", "422"],
                body={"required": True, "content": {
                    "application/json": {"schema": ref("schemas", "JobCreate")}}},
                description="400 for a body that is not a JSON object, lacks `worker`, or has "
                            "parameters holding NaN or Infinity; 404 for an unknown worker; 413 "
                            "for parameters past their limit; 422 for `parameters` that are "
                            "neither an object nor null."),
        },
        "/jobs/{id}": {
            "parameters": job_id,
            "get": operation("getJob", "jobs", "Read a job",
                             {"200": json_reply("The job.", "JobEnvelope")}, errors=["404"]),
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
                errors=["400", "403", "404"],
                parameters=[ref("parameters", "LogFrom"), ref("parameters", "ResponseFrom")]),
        },
        "/events": {
            "get": operation(
                "streamEvents", "streams", "Follow every job and worker change (WebSocket)",
                {"101": {"description": "Upgraded to a WebSocket. Each message is "
                                        "`{\"type\": \"job\", \"action\": \"created\"|"
                                        "\"status\"|\"updated\"|\"deleted\", \"job\": {...}}` "
                                        "or `{\"type\": \"worker\", \"action\": \"saved\"|"
                                        "\"deleted\", \"name\": ...}`. See docs/streams.md."}},
                errors=["400", "403"]),
        },
    }


# --- the document ------------------------------------------------------------------------------

def openapi_document():
    """The OpenAPI 3.0.3 document of the whole REST API."""
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
                "what to fix. Every path but /health needs HTTP Basic credentials."),
        },
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}],
        "tags": [
            {"name": "jobs", "description": "Runs of workers, their log and response."},
            {"name": "workers", "description": "Worker code."},
            {"name": "server", "description": "Health, the admin page, this document."},
        ],
        "paths": {**server_paths(), **worker_paths(), **job_paths()},
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": schemas(),
            "parameters": parameters(),
            "responses": responses(),
        },
    }
