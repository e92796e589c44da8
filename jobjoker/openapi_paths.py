"""The paths of the OpenAPI document: what each route takes and answers.

Contract: ``paths()`` returns a new dict of every path of the REST API with its operations, each
built by ``operation()`` from its 2xx replies, the error statuses it can answer beyond those
every operation can, its parameters and body, so each reads as the handler it describes. Who may
call an operation is not said here: ``jobjoker.openapi`` asks the handler and adds it.
"""
from jobjoker.accounts import MAX_PASSWORD, MIN_PASSWORD
from jobjoker.auth import SESSION_COOKIE
from jobjoker.handlers.streams import ORIGIN_PATTERN
from jobjoker.openapi_code import code_paths
from jobjoker.openapi_retries import retry_paths
from jobjoker.openapi_components import ERROR_RESPONSES, header, ref
from jobjoker.openapi_schedules import schedule_paths
from jobjoker.openapi_webhooks import webhook_paths


def paths(config):
    """Every path of the REST API, with its operations (their roles not yet given); limits and
    lifetimes as ``config`` sets them."""
    return {**server_paths(), **worker_paths(), **job_paths(config), **session_paths(config),
            **user_paths(), **token_paths(), **audit_paths(),
            **job_ids_conflict(code_paths(operation, json_reply)),
            **schedule_paths(operation, json_reply),
            **webhook_paths(operation, json_reply),
            **job_ids_conflict(retry_paths(operation, json_reply))}


def operation(operation_id, tag, summary, replies, errors=(), parameters=None, body=None,
              description=None):
    """One operation: its 2xx ``replies`` plus the shared error responses for ``errors``.

    Every operation can fail with 500, with 503 while the database is away, with 403 (the
    Host check, if nothing else), and with 400 for a query parameter it does not take (the
    pages excepted, which never refuse one). Who may call it is not written here:
    ``jobjoker.openapi.authorize`` asks the handler that serves it and adds what that implies.
    """
    responses = dict(replies)
    for status in set(errors) | {"400", "403", "500", "503"}:
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


def json_reply(description, envelope_name, headers=None):
    """A 2xx response whose body is the named envelope."""
    reply = {"description": description,
             "content": {"application/json": {"schema": ref("schemas", envelope_name)}}}
    if headers:
        reply["headers"] = headers
    return reply


def text_reply(description, media_type="text/plain"):
    """A 2xx response whose body is text, outside the envelope."""
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


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


# --- the paths, by resource --------------------------------------------------------------------

def server_paths():
    return {
        "/health": {
            "get": operation(
                "getHealth", "server", "Is the server ready?",
                {"200": json_reply("Ready: the database and the supervisor answer. Without "
                                   "credentials only `{\"status\": \"ok\"}`; signed in, "
                                   "the details.", "HealthEnvelope")},
                description="So load balancers and scripts can ask. Credentials are "
                            "optional: with them (any role) the reply has the details and a "
                            "503 says why; without, only up (200) or down (503)."),
            "head": operation(
                "headHealth", "server", "Is the server ready? (status only)",
                {"200": {"description": "Ready; no body (GET's headers)."}},
                description="As GET, without the body: for probes that read the status."),
        },
        "/metrics": {"get": operation(
            "getMetrics", "server", "The server's figures for Prometheus",
            {"200": text_reply("Prometheus text format 0.0.4: jobs by status, starts and ends "
                               "by outcome, entries stored, stream subscribers, loop lag, the "
                               "database's ping and the supervisors' state.")},
            description="For a Prometheus scraper: give it an API token of a viewer.")},
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
                "description": "Entries from `offset`, oldest first (with `search`, those that "
                               "hold the text).",
                "headers": {"X-Total-Count": header(
                    "How many entries the %s holds in all." % stream,
                    {"type": "integer", "minimum": 0}),
                    "X-Next-Offset": header(
                    "Only when the page stopped at its size in bytes (--max-page-bytes) before "
                    "its `limit`, or a search stopped before the end (at its time, "
                    "--search-seconds, or its `limit`): the `offset` to read or search on from "
                    "(the message says so too).",
                    {"type": "integer", "minimum": 0}, required=False)},
                "content": {
                    "application/json": {"schema": ref("schemas", "EntryListEnvelope")},
                    "text/plain": {"schema": {"type": "string"}},
                }}},
            errors=["400", "404"],
            parameters=[ref("parameters", "Offset"), ref("parameters", "EntriesLimit"),
                        ref("parameters", "Format"), ref("parameters", "Search"),
                        ref("parameters", "IgnoreCase")]),
        "post": operation(
            "appendJob%s" % title, "jobs", "Append one entry to the job's %s" % stream,
            {"201": json_reply("Appended.", "AppendedEntryEnvelope")},
            errors=["400", "404", "409", "413"],
            body=plain_text_body("The message (UTF-8); newlines stay inside the one entry. "
                                 "No body appends an empty entry.", required=False),
            description="409 once the job ended more than `--secret-retention` seconds ago "
                        "(what is appended could no longer be masked with its secret values), "
                        "or when its secret values cannot be read with the server's key."),
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


def job_paths(config):
    """``/jobs`` and every ``/jobs/{id}/...`` path; any of the latter may answer 409 for a
    short id that several jobs share."""
    return job_ids_conflict(_job_paths(config))


def job_ids_conflict(result):
    """``result`` with 409 added to every operation of a ``/jobs/{id}/...`` path."""
    for path, item in result.items():
        if "{id}" in path:
            for operation_item in item.values():
                if isinstance(operation_item, dict) and "responses" in operation_item:
                    operation_item["responses"]["409"] = ref(
                        "responses", ERROR_RESPONSES["409"][0])
    return result


def _job_paths(config):
    job_id = [ref("parameters", "JobId")]
    return {
        "/jobs": {
            "get": operation(
                "listJobs", "jobs", "List jobs, newest first",
                {"200": json_reply("A page of jobs.", "JobListEnvelope", headers={
                    "X-Total-Count": header("How many jobs match the filters, in all pages.",
                                            {"type": "integer", "minimum": 0})})},
                errors=["400"],
                parameters=[ref("parameters", name) for name in
                            ("StatusFilter", "WorkerFilter", "Offset", "JobsLimit")]),
            "post": operation(
                "createJob", "jobs", "Create a job, idle or started",
                {"201": json_reply("Created: idle (start it with PUT /jobs/{id}/status), or "
                                   "with `\"start\": true` started too (active, with its pid, "
                                   "or already ended if it ran that fast; `queued` beyond a "
                                   "concurrency cap), or `scheduled` with a `start_at` to come.",
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
                            "`error`)." % config.max_batch),
        },
        "/jobs/{id}": {
            "parameters": job_id,
            "get": operation("getJob", "jobs", "Read a job",
                             {"200": json_reply("The job, with its `result` (null when it has "
                                                "none).", "JobWithResultEnvelope")},
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
                "commandJob", "jobs", "Start, stop, kill, pause or resume a job",
                {"200": json_reply("Started: the job is active, with its pid (a `scheduled` "
                                   "one starts now). Or cancelled: a `scheduled` or `queued` "
                                   "job stopped or killed is `stop`, reason `cancelled`.",
                                   "JobEnvelope"),
                 "202": json_reply("Queued (a start beyond a concurrency cap: the job is "
                                   "`queued`, with its `queue_position`, and starts when a "
                                   "slot frees). Or stopping (SIGTERM sent, SIGKILL follows after the grace "
                                   "period) or being killed (SIGKILL sent); the job becomes "
                                   "`stop` once its process is reaped. Or pausing (SIGSTOP "
                                   "sent, `pause_requested` set) or resuming (SIGCONT sent, "
                                   "`pause_requested` null): the job becomes `paused` or "
                                   "`active` once its process has stopped or continued.",
                                   "JobEnvelope")},
                errors=["400", "404", "409", "413"],
                body={"required": True, "description": "The command word, in any case.",
                      "content": {
                          "text/plain": {"schema": ref("schemas", "Command")},
                          "application/json": {"schema": {"oneOf": [
                              ref("schemas", "Command"),
                              {"type": "object", "required": ["status"],
                               "additionalProperties": False,
                               "properties": {"status": ref("schemas", "Command")}}]}}}},
                description="400 for another word (statuses such as `done` are the "
                            "server's to set); 404 for an unknown job, or a worker deleted "
                            "since; 409 when the job's status forbids the command (`pause` "
                            "needs an `active` job not being stopped, `resume` a `paused` one: "
                            "the message says the job's state), or it runs on another server; 503 when the supervisor cannot be reached."),
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
        "/jobs/{id}/usage": {
            "parameters": job_id,
            "get": operation(
                "getJobUsage", "jobs", "Read a job's CPU time and memory, with their series",
                {"200": json_reply("Its figures and series: live while it runs here, as "
                                   "stored otherwise (all null and no points for a job never "
                                   "sampled).", "UsageEnvelope")},
                errors=["404"],
                description="Sampled every --usage-interval seconds over the job's whole "
                            "process group. The job's stream carries each sample live "
                            "(`usage` messages, docs/streams.md)."),
        },
        "/jobs/{id}/result": {
            "parameters": job_id,
            "get": operation("getJobResult", "jobs", "Read a job's structured result",
                             {"200": json_reply("`data` holds the result alone: the value its "
                                                "worker gave `self.result()` last.",
                                                "ResultEnvelope")},
                             errors=["404"],
                             description="404 (`job ID has no result`) when the job stored "
                                         "none, as for an unknown job."),
        },
        "/jobs/{id}/stream": {
            "parameters": job_id,
            "get": operation(
                "streamJob", "streams", "Follow a job live (WebSocket)",
                {"101": {"description": "Upgraded to a WebSocket. The server sends JSON text "
                                        "messages: `status` (now and on every change), `log` and "
                                        "`response` (`seq` and `entries`, backlog first, then "
                                        "live, no gap, no duplicate), `progress` (coalesced: at "
                                        "most ~10 a second), `usage` (its latest CPU and "
                                        "memory sample, while it runs) and `end` once the job is "
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
                                        "\"deleted\", \"name\": ...}` or `{\"type\": "
                                        "\"progress\", \"job\": ID, \"progress\": 0-1, "
                                        "\"message\": ..., \"revision\": R}` (at most ~10 a "
                                        "second per job, the last never lost). See "
                                        "docs/streams.md."}},
                errors=["400"],
                description="Credentials and the origin (403 from another site) are checked "
                            "before the upgrade."),
        },
        "/streams/origin": {
            "get": operation(
                "getStreamOrigin", "streams", "May a page at this origin open the streams?",
                {"200": json_reply("The answer; when not allowed, `message` says why and "
                                   "what to change.", "StreamOriginEnvelope")},
                parameters=[{"name": "origin", "in": "query", "required": True,
                             "description": "The page's origin, e.g. "
                                            "`https://jobs.example.com:8443`.",
                             "schema": {"type": "string", "pattern": ORIGIN_PATTERN}}],
                description="A browser does not tell a page why its WebSocket handshake "
                            "failed: the admin page asks here, with its own origin, and the "
                            "same rule as the handshake's is applied to the same Host header."),
        },
    }


def session_paths(config):
    cookies = {"Set-Cookie": header(
        "`%s=<secret>; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d` (and `Secure` under TLS); "
        "also `_xsrf=<this session's XSRF token>; SameSite=Strict; Path=/`."
        % (SESSION_COOKIE, config.session_lifetime))}
    return {"/session": {
        "get": operation(
            "getSession", "session", "Who am I?",
            {"200": json_reply("The signed-in user, the credentials used and, for a "
                               "session, its XSRF token (the `_xsrf` cookie is set to it).",
                               "SessionEnvelope")}),
        "post": operation(
            "login", "session", "Log in: start a browser session",
            {"201": json_reply("Signed in: the session cookie and the XSRF cookie are set.",
                               "SessionEnvelope", headers=cookies)},
            errors=["400", "401", "413", "429"], body=json_body("Login"),
            description="Checks the username and password and sets the `%s` cookie (a "
                        "server-side session that logout or a password change revokes, good "
                        "for %g hours: --session-lifetime). Throttled like every password check: 429 after too "
                        "many failures for the account or the address, even with the right "
                        "password. 401 looks the same for an unknown user and a wrong "
                        "password. Nobody is signed in yet, so the body may be at most %d "
                        "bytes (--max-public-body-size; 413 past it)."
                        % (SESSION_COOKIE, config.session_lifetime / 3600,
                           config.max_public_body_size)),
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
                description="Your own with `current` (403 when it is wrong or missing, admins "
                            "included), or anyone else's as an admin (403 for others, and for "
                            "any request authenticated by a token). 422 for a password of fewer than %d or "
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
