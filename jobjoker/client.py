"""A small synchronous Python client for JobJoker, for scripts: REST calls, and following jobs live.

Contract: ``Client(url, username, password, timeout, token, ca_cert)`` talks to one server;
anything left out comes from ``JOBJOKER_URL`` (default ``http://127.0.0.1:8080``),
``JOBJOKER_USER`` (default ``admin``), ``JOBJOKER_PASSWORD`` or ``JOBJOKER_TOKEN``, and
``JOBJOKER_CA_BUNDLE`` (an empty variable counts as unset). An ``https://`` server's certificate
is checked against the CA certificates (PEM) in ``ca_cert`` when given (they replace the system's,
as for a self-signed server), else the system's (which ``SSL_CERT_FILE`` also sets); an untrusted
certificate raises ``ConnectionFailed`` saying so and how to trust it. A
token is sent as ``Authorization: Bearer``, else the user and password as HTTP Basic; the
environment's credentials are used only when neither is passed in. Every method makes one
request and returns the parsed ``data`` of the reply (a dict for one item, a list for a
collection); a refusal raises a ``ClientError`` subclass carrying the HTTP ``status`` and the
server's ``message``, and a server that cannot be reached raises ``ConnectionFailed``. REST goes
through the standard library; nothing is retried, since a repeated ``POST`` could create twice.

``follow(job_id)`` yields ``Event`` objects while the job runs: ``status`` (first, and on every
change), one ``log`` or ``response`` event per entry with its ``seq`` (its index in the stream),
and ``end`` once the job is final and every entry has been yielded. It keeps the next index of
each stream and, after any close other than that end (a server restart, a network error, a
``1013`` for a subscriber too slow), reconnects with ``log_from``/``response_from`` just past
what it yielded, so no entry is lost or repeated. Reconnects back off (0.1 s doubling to 5 s);
after ``max_retries`` failures in a row with no entry received in between it gives up and raises
the last error. A refusal that a retry cannot change (401, 404: the job was deleted) is raised
at once. ``follow`` runs Tornado's WebSocket client on a private event loop, so call it from
plain synchronous code (or from a thread, inside an asyncio program). ``wait(job_id)`` blocks
until a job is final the same way, with none of its entries transferred, and ``run`` creates,
starts and (by default) waits for a job.

Example (paste it with a server running and ``JOBJOKER_PASSWORD`` set)::

    from jobjoker.client import Client

    client = Client()
    job = client.create_job("TestWorker", {"count": 3, "sleep": 1})
    client.start(job["id"])
    for event in client.follow(job["id"]):
        if event.kind == "log":
            print(event.seq, event.message)
        elif event.kind == "end":
            print("ended", event.status)
"""
import asyncio
import base64
import dataclasses
import json
import logging
import os
import signal
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

import tornado.httpclient
import tornado.iostream
import tornado.websocket

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_USER = "admin"
CA_BUNDLE_VARIABLE = "JOBJOKER_CA_BUNDLE"
HOSTNAME_MISMATCH = 62  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, in SSLCertVerificationError
STREAMS = ("log", "response")
BACKOFF_FIRST = 0.1  # seconds before the first reconnect; doubles on each failure in a row
BACKOFF_MAX = 5.0
PING_INTERVAL = 30  # seconds; a server that vanished without closing is noticed within ~2x this
HANG_UP_SECONDS = 2  # how long a client that stops following waits for the server's close
# A stream offset past the end of any log: following from it yields only status and the end.
PAST_ANY_END = 2 ** 53

# A backlog message carries up to 2,000 entries and an entry can be megabytes long, so Tornado's
# default limit of 10 MiB per message would make such a log impossible to follow.
MAX_MESSAGE_SIZE = 1024 ** 3


class ClientError(Exception):
    """A request failed; ``status`` is the HTTP status (None when no reply came) and
    ``message`` the server's explanation."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status


class ConnectionFailed(ClientError):
    """The server could not be reached, or did not answer in time."""


class UntrustedCertificate(ConnectionFailed):
    """The server's TLS certificate is not signed by a trusted CA (``--ca-cert``); retrying
    cannot change that, so ``follow`` raises it at once."""


class BadRequestError(ClientError):
    """The server refused the request as malformed or invalid (400, 405, 413, 422)."""


class AuthError(ClientError):
    """No valid credentials (401), not allowed (403), or too many failed logins (429)."""


class NotFoundError(ClientError):
    """No such job, worker or route (404)."""


class ConflictError(ClientError):
    """The job's state forbids the request (409), e.g. starting a job that has already run."""


class ServerError(ClientError):
    """The server failed (500) or a dependency of it is away (503); trying later may work."""


def error_for(status, message):
    """The ``ClientError`` subclass for an HTTP status."""
    if status in (401, 403, 429):
        return AuthError(message, status)
    if status == 404:
        return NotFoundError(message, status)
    if status == 409:
        return ConflictError(message, status)
    if status >= 500:
        return ServerError(message, status)
    return BadRequestError(message, status)


def message_of(body, status, reason=""):
    """The server's ``message`` from an error envelope, or a description of the reply."""
    try:
        message = json.loads(body)["message"]
        if message:
            return message
    except (ValueError, TypeError, KeyError):
        pass
    return "HTTP %s %s" % (status, reason or "")


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing ``follow`` saw: ``kind`` is ``log`` or ``response`` (with ``seq``, ``message``,
    ``time``), ``status`` (with ``job`` and its ``status``) or ``end`` (with the final
    ``status``)."""

    kind: str
    seq: int | None = None
    message: str | None = None
    time: float | None = None
    status: str | None = None
    job: dict | None = None

    def __repr__(self):
        fields = self.to_dict()
        if self.job is not None:
            fields["job"] = self.job.get("id")  # the whole job would drown the rest
        return "Event(%s)" % ", ".join("%s=%r" % item for item in fields.items())

    def to_dict(self):
        """The fields that belong to this kind, for JSON output."""
        if self.kind in STREAMS:
            return {"kind": self.kind, "seq": self.seq, "message": self.message,
                    "time": self.time}
        if self.kind == "status":
            return {"kind": self.kind, "status": self.status, "job": self.job}
        return {"kind": self.kind, "status": self.status}


class Client:
    """One JobJoker server, seen from a script."""

    def __init__(self, url=None, username=None, password=None, timeout=30, token=None,
                 ca_cert=None):
        self.url = (url or os.environ.get("JOBJOKER_URL") or DEFAULT_URL).rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the server URL must look like http://HOST:PORT (got %r)"
                             % self.url)
        self.username = username or os.environ.get("JOBJOKER_USER") or DEFAULT_USER
        if password is None and token is None:
            password = os.environ.get("JOBJOKER_PASSWORD") or None
            token = os.environ.get("JOBJOKER_TOKEN") or None
        self.password = password
        self.token = token
        self.timeout = timeout
        self.ca_cert = ca_cert or os.environ.get(CA_BUNDLE_VARIABLE) or None
        self.tls_context = tls_context(self.ca_cert) if parts.scheme == "https" else None

    def __repr__(self):  # never the password or the token
        return "Client(%r, %s)" % (self.url, "token" if self.token else "user %r" % self.username)

    # --- HTTP -------------------------------------------------------------------------------

    def _headers(self):
        if self.token:
            return {"Authorization": "Bearer " + self.token}
        if self.password is None:
            return {}  # the server answers 401, which says what is missing
        credentials = "%s:%s" % (self.username, self.password)
        return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}

    def _send(self, method, path, body=None, content_type=None, **query):
        """Send one request; the reply's body (bytes) or a ``ClientError``."""
        return self._exchange(method, path, body, content_type, **query)[0]

    def _exchange(self, method, path, body=None, content_type=None, **query):
        """Send one request; the reply's body (bytes) and headers, or a ``ClientError``."""
        query = {k: v for k, v in query.items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = self._headers()
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self.tls_context) as reply:
                return reply.read(), reply.headers
        except urllib.error.HTTPError as e:
            raise error_for(e.code, message_of(e.read(), e.code, e.reason)) from None
        except (urllib.error.URLError, OSError) as e:  # refused, unknown host, timeout, reset
            raise self._unreachable(getattr(e, "reason", e)) from None

    def _unreachable(self, reason):
        """The ``ConnectionFailed`` for ``reason``; an untrusted certificate says what to do."""
        if isinstance(reason, ssl.SSLCertVerificationError) and \
                reason.verify_code == HOSTNAME_MISMATCH:  # a CA would not help
            return UntrustedCertificate(
                "the TLS certificate of the JobJoker server at %s is for another name (%s): "
                "use the host name it was made for in the URL" % (self.url, reason.verify_message))
        if isinstance(reason, ssl.SSLCertVerificationError):
            return UntrustedCertificate(
                "the TLS certificate of the JobJoker server at %s is not trusted (%s): give "
                "the CA certificate that signed it (for a self-signed server, its own "
                "certificate) with --ca-cert PATH or %s=PATH%s"
                % (self.url, reason.verify_message or reason, CA_BUNDLE_VARIABLE,
                   " (now: %s)" % self.ca_cert if self.ca_cert else ""))
        return ConnectionFailed("cannot reach the JobJoker server at %s: %s"
                                % (self.url, reason))

    def _data(self, method, path, body=None, content_type=None, **query):
        """The ``data`` list of the reply's envelope."""
        return json.loads(self._send(method, path, body, content_type, **query))["data"]

    def _item(self, method, path, body=None, content_type=None):
        return self._data(method, path, body, content_type)[0]

    # --- workers -----------------------------------------------------------------------------

    def workers(self):
        """Every worker: ``[{"name", "description", "size", "modified", "hash"}]``."""
        return self._data("GET", "/workers")

    def worker(self, name):
        """One worker's summary."""
        return self._item("GET", "/workers/" + quote(name))

    def worker_code(self, name):
        """A worker's source code, as text."""
        return self._send("GET", "/workers/%s/code" % quote(name)).decode("utf-8")

    def push_worker(self, name, code):
        """Create or replace a worker from its code (``str`` or UTF-8 ``bytes``); its summary.
        The server checks the code first (``BadRequestError`` 422 with the line when it does
        not parse or define the class)."""
        if isinstance(code, str):
            code = code.encode("utf-8")
        return self._item("PUT", "/workers/" + quote(name), code, "text/x-python; charset=UTF-8")

    def delete_worker(self, name):
        """Delete a worker (``ConflictError`` while one of its jobs is active); its summary."""
        return self._item("DELETE", "/workers/" + quote(name))

    # --- jobs --------------------------------------------------------------------------------

    def create_job(self, worker, parameters=None, start=False):
        """Create a job of ``worker`` with ``parameters`` (a dict): idle, or with ``start``
        started in the same request; the job."""
        job = {"worker": worker, "parameters": parameters}
        if start:
            job["start"] = True
        return self._item("POST", "/jobs", json.dumps(job).encode("utf-8"), "application/json")

    def create_jobs(self, jobs, start=False):
        """Create many jobs in one request, all or none (``BadRequestError`` naming each
        problem, ``jobs[3].worker: ...``, and nothing created); with ``start`` start them too.
        ``jobs`` holds ``(worker, parameters)`` pairs or ``{"worker", "parameters"}`` dicts,
        at most 1000; returns the jobs in the same order."""
        specs = [dict(job) if isinstance(job, dict) else
                 {"worker": job[0], "parameters": job[1] if len(job) > 1 else None}
                 for job in jobs]
        body = json.dumps({"jobs": specs, "start": bool(start)}).encode("utf-8")
        return self._data("POST", "/jobs/batch", body, "application/json")

    def job(self, job_id):
        """One job, as the API describes it (``status``, ``exit_code``, ``error``, ...)."""
        return self._item("GET", "/jobs/" + quote(job_id))

    def jobs(self, status=None, worker=None, offset=0, limit=50):
        """A page of jobs, newest first, optionally of one status and/or worker."""
        return self._data("GET", "/jobs", status=status, worker=worker, offset=offset,
                          limit=limit)

    def start(self, job_id):
        """Start an idle job; the job, now active."""
        return self._command(job_id, "start")

    def stop(self, job_id):
        """Ask a running job to stop (SIGTERM, SIGKILL after the grace period); the job,
        still active until its process is gone."""
        return self._command(job_id, "stop")

    def kill(self, job_id):
        """SIGKILL a running job's process group; the job, still active for a moment."""
        return self._command(job_id, "kill")

    def _command(self, job_id, command):
        return self._item("PUT", "/jobs/%s/status" % quote(job_id), command.encode(),
                          "text/plain")

    def delete_job(self, job_id):
        """Delete a job that is not active, with its log and response; the job as it was."""
        return self._item("DELETE", "/jobs/" + quote(job_id))

    def log(self, job_id, offset=0, limit=1000):
        """Entries ``{"message", "time"}`` of the job's log from ``offset`` (at most 100000)."""
        return self._entries(job_id, "log", offset, limit)

    def response(self, job_id, offset=0, limit=1000):
        """Entries of the job's response, like ``log``."""
        return self._entries(job_id, "response", offset, limit)

    def search(self, job_id, text, ignore_case=False, stream="log"):
        """Every entry ``{"message", "time", "seq"}`` of the job's log (or ``stream="response"``)
        whose message holds ``text`` (a plain substring; ``ignore_case`` in any case), oldest
        first, as a generator: the server answers each request within ``--search-seconds`` and
        says where to search on, which this follows to the end."""
        offset = 0
        while offset is not None:
            body, headers = self._exchange(
                "GET", "/jobs/%s/%s" % (quote(job_id), stream), search=text, offset=offset,
                ignore_case=1 if ignore_case else None)
            yield from json.loads(body)["data"]
            following = headers.get("X-Next-Offset")
            offset = None if following is None else int(following)

    def _entries(self, job_id, stream, offset, limit):
        return self._data("GET", "/jobs/%s/%s" % (quote(job_id), stream), offset=offset,
                          limit=limit)

    def append_log(self, job_id, text):
        """Append ``text`` to the job's log as one entry; ``{"seq", "message", "time"}``."""
        return self._append(job_id, "log", text)

    def append_response(self, job_id, text):
        """Append ``text`` to the job's response as one entry, like ``append_log``."""
        return self._append(job_id, "response", text)

    def _append(self, job_id, stream, text):
        return self._item("POST", "/jobs/%s/%s" % (quote(job_id), stream),
                          text.encode("utf-8"), "text/plain; charset=UTF-8")

    # --- users, tokens, audit ----------------------------------------------------------------

    def _json(self, method, path, body):
        return self._item(method, path, json.dumps(body).encode("utf-8"), "application/json")

    def whoami(self):
        """Who the credentials prove: ``{"username", "role", "scheme", "xsrf"}``."""
        return self._item("GET", "/session")

    def users(self):
        """Every user (admins only)."""
        return self._data("GET", "/users")

    def create_user(self, username, password, role="viewer"):
        """Create a user (admins only); the user."""
        return self._json("POST", "/users", {"username": username, "password": password,
                                             "role": role})

    def update_user(self, username, role=None, disabled=None):
        """Change a user's role and/or disabled flag (admins only); the user."""
        changes = {k: v for k, v in (("role", role), ("disabled", disabled)) if v is not None}
        return self._json("PATCH", "/users/" + quote(username), changes)

    def delete_user(self, username):
        """Delete a user with their tokens and sessions (admins only)."""
        return self._item("DELETE", "/users/" + quote(username))

    def set_password(self, username, password, current=None):
        """Set a password: your own (give ``current``), or anyone's as an admin."""
        body = {"password": password}
        if current is not None:
            body["current"] = current
        return self._json("PUT", "/users/%s/password" % quote(username), body)

    def tokens(self, user=None):
        """Your API tokens (an admin may name another ``user``, or ``"*"`` for all)."""
        return self._data("GET", "/tokens", user=user)

    def create_token(self, name, role=None, expires_in=None):
        """A new token for you; its secret is in ``token``, shown this once."""
        body = {"name": name}
        if role:
            body["role"] = role
        if expires_in:
            body["expires_in"] = expires_in
        return self._json("POST", "/tokens", body)

    def revoke_token(self, token_id):
        """Revoke a token (yours, or anyone's as an admin); the token."""
        return self._item("DELETE", "/tokens/" + quote(token_id))

    def audit(self, offset=0, limit=100, actor=None, action=None):
        """The audit trail, newest first (admins only)."""
        return self._data("GET", "/audit", offset=offset, limit=limit, actor=actor,
                          action=action)

    def run(self, worker, parameters=None, follow=True):
        """Create and start a job. With ``follow``, wait for its end and return the final job;
        else return the job just started."""
        job = self.create_job(worker, parameters, start=True)
        return self.wait(job["id"]) if follow else job

    def wait(self, job_id):
        """Block until the job is final and return it. This follows the job's stream (so there
        is no polling, and a dropped connection is resumed) from past the end of its entries,
        so that none of them is transferred."""
        for _ in self.follow(job_id, PAST_ANY_END, PAST_ANY_END):
            pass
        return self.job(job_id)

    # --- following ---------------------------------------------------------------------------

    def follow(self, job_id, log_from=0, response_from=0, max_retries=10):
        """Yield the job's ``Event``s live from these entry indexes until its end, resuming by
        itself after a dropped connection (see the module docstring)."""
        if in_event_loop():
            raise RuntimeError("Client.follow is synchronous: inside an asyncio program, call "
                               "it from a thread (loop.run_in_executor)")
        cursor = {"log": log_from, "response": response_from}  # the next seq to yield
        # asyncio's own run_until_complete, not Tornado's run_sync: after a Ctrl-C inside it,
        # run_sync leaves a callback that stops the loop again, and the clean-up would fail.
        loop = asyncio.new_event_loop()
        run = Interruptible(loop)
        connection = reading = last_error = last_status = None
        failures = 0
        try:
            while True:
                if connection is None:
                    if failures:
                        run(asyncio.sleep(back_off(job_id, failures, max_retries, last_error,
                                                   cursor)))
                    try:
                        connection = run(self._open_stream(job_id, cursor))
                    except UntrustedCertificate:
                        raise
                    except (ConnectionFailed, ServerError) as e:
                        failures, last_error = failures + 1, e
                        continue
                    first_message = True
                reading = loop.create_task(next_message(connection))
                raw = run(reading)
                if raw is None:
                    failures += 1
                    last_error = ConnectionFailed("the stream closed (code %s%s)" % (
                        connection.close_code,
                        ": %s" % connection.close_reason if connection.close_reason else ""))
                    connection.close()  # already closed; this releases Tornado's side of it
                    connection = None
                    continue
                message = json.loads(raw)
                kind = message.get("type")
                if kind in STREAMS:
                    dropped = message.get("dropped", 0)
                    if dropped and message["seq"] - dropped == cursor[kind]:
                        cursor[kind] = message["seq"]  # the log cap dropped these entries
                    if message["seq"] > cursor[kind]:  # the server skipped entries: ask again
                        failures += 1
                        last_error = ConnectionFailed("the server sent %s from %d, not %d" % (
                            kind, message["seq"], cursor[kind]))
                        run(hang_up(connection))
                        connection = None
                        continue
                    # Entries before the cursor were yielded already (an overlap on resume).
                    for entry in message["entries"][cursor[kind] - message["seq"]:]:
                        cursor[kind] += 1
                        failures = 0
                        yield Event(kind, cursor[kind] - 1, entry["message"], entry["time"])
                elif kind == "status":
                    job = message["job"]
                    # Each connection starts with the current status; after a reconnect it is
                    # news only if the status itself changed meanwhile.
                    if not first_message or job["status"] != last_status:
                        last_status = job["status"]
                        yield Event("status", status=job["status"], job=job)
                elif kind == "end":
                    yield Event("end", status=message["status"])
                    return
                first_message = False  # unknown types are ignored: newer servers may add some
        finally:
            if reading is not None:
                reading.cancel()  # interrupted mid-read (Ctrl-C): the hang-up reads instead
            run.close()
            close_loop(loop, connection)

    async def _open_stream(self, job_id, cursor):
        """A WebSocket on the job's stream from ``cursor``, or the ``ClientError`` why not."""
        base = "ws" + self.url[len("http"):]  # http -> ws, https -> wss
        url = "%s/jobs/%s/stream?%s" % (base, quote(job_id), urllib.parse.urlencode(
            {"log_from": cursor["log"], "response_from": cursor["response"]}))
        request = tornado.httpclient.HTTPRequest(url, headers=self._headers(),
                                                 connect_timeout=self.timeout,
                                                 request_timeout=self.timeout,
                                                 ssl_options=self.tls_context)
        try:
            return await tornado.websocket.websocket_connect(
                request, ping_interval=PING_INTERVAL, max_message_size=MAX_MESSAGE_SIZE)
        except tornado.httpclient.HTTPClientError as e:
            if e.code == 599:  # Tornado's code for "no HTTP reply": timeout, closed stream
                raise ConnectionFailed("cannot reach the JobJoker server at %s: %s"
                                       % (self.url, e)) from None
            body = e.response.body if e.response is not None else b""
            raise error_for(e.code, message_of(body, e.code, e.message)) from None
        except (OSError, tornado.iostream.StreamClosedError) as e:
            raise self._unreachable(e) from None


def tls_context(ca_cert):
    """The TLS settings for ``https://`` servers: the system's CA certificates, or only those in
    the PEM file ``ca_cert``; a file that cannot be read is a ``ValueError`` naming it."""
    if not ca_cert:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_cert)
    except (OSError, ssl.SSLError) as e:
        raise ValueError("cannot read the CA certificates in %s (--ca-cert or %s): %s"
                         % (ca_cert, CA_BUNDLE_VARIABLE, e)) from None


def in_event_loop():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Interruptible:
    """Runs awaitables to completion on a private loop so that Ctrl-C always ends them with a
    ``KeyboardInterrupt`` raised here.

    Python raises ``KeyboardInterrupt`` in whatever frame runs when SIGINT arrives; if that is a
    weakref callback or a ``__del__`` (asyncio drops finished tasks from a WeakSet), the exception
    is printed as "ignored" and lost, and a follower would go on following after Ctrl-C. So, in
    the main thread and while SIGINT has Python's default handler, the loop takes the signal: it
    cancels what runs and the interrupt is raised from ``__call__``, also for a signal that came
    between two calls. ``close()`` gives SIGINT back to Python's default handler.
    """

    def __init__(self, loop):
        self.loop = loop
        self.interrupted = False
        self.current = None
        self.installed = (threading.current_thread() is threading.main_thread() and
                          signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self.installed:
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt)

    def _on_interrupt(self):
        self.interrupted = True
        if self.current is not None:
            self.current.cancel()

    def __call__(self, awaitable):
        """The awaitable's result, or ``KeyboardInterrupt`` once Ctrl-C has been pressed."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.current = asyncio.ensure_future(awaitable, loop=self.loop)
        try:
            result = self.loop.run_until_complete(self.current)
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
        finally:
            self.current = None
        if self.interrupted:
            raise KeyboardInterrupt
        return result

    def close(self):
        if self.installed:
            self.installed = False
            self.loop.remove_signal_handler(signal.SIGINT)  # back to default_int_handler


def back_off(job_id, failures, max_retries, error, cursor):
    """The seconds to wait before the next attempt to follow a job, or raise ``error`` after
    too many attempts."""
    if failures > max_retries:
        raise type(error)("job %s: gave up following after %d failed attempts in a row: %s"
                          % (job_id, failures, error.message), error.status)
    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
    log.warning("job %s: %s; resuming at log %d, response %d in %.1f s", job_id, error.message,
                cursor["log"], cursor["response"], delay)
    return delay


async def next_message(connection):
    """The next message, or None once the connection has closed."""
    return await connection.read_message()


async def hang_up(connection):
    """Close the connection and wait (briefly) for the server's close, so that its socket is
    closed too."""
    connection.close()
    try:
        await asyncio.wait_for(drain(connection), HANG_UP_SECONDS)
    except TimeoutError:
        pass


async def drain(connection):
    while await connection.read_message() is not None:
        pass


def close_loop(loop, connection):
    """Hang up, then cancel what still runs on the private loop (an interrupted read, pings)
    and let it finish, as ``asyncio.run`` does, so that no task is destroyed while pending."""
    try:
        if connection is not None:
            loop.run_until_complete(hang_up(connection))
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()


def quote(segment):
    """A path segment, escaped so that a name can never reach another route."""
    return urllib.parse.quote(str(segment), safe="")
