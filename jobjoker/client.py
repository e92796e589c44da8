"""A small synchronous Python client for JobJoker, for scripts: REST calls, and following jobs live.

Contract: ``Client(url, username, password, timeout, token, ca_cert)`` talks to one server;
anything left out comes from the environment (``JOBJOKER_URL``, ``JOBJOKER_USER``,
``JOBJOKER_PASSWORD`` or ``JOBJOKER_TOKEN``, ``JOBJOKER_CA_BUNDLE``), and an ``https://``
server's certificate is checked against ``ca_cert`` or the system's CA certificates, as
``jobjoker.client_transport`` states in full. Every method makes one request and returns the
parsed ``data`` of the reply (a dict for one item, a list for a collection); a refusal raises a
``ClientError`` subclass carrying the HTTP ``status`` and the server's ``message``, a server
that cannot be reached raises ``ConnectionFailed`` (``UntrustedCertificate``, saying how to
trust it, for a certificate that is not trusted). REST goes through the standard library;
nothing is retried, since a repeated ``POST`` could create twice.

``follow(job_id)`` yields ``Event`` objects while the job runs: ``status`` (first, and on every
change), one ``log`` or ``response`` event per entry with its ``seq`` (its index in the stream),
and ``end`` once the job is final and every entry has been yielded; it resumes by itself after a
dropped connection, with no entry lost or repeated, as ``jobjoker.client_follow`` states in full.
Call it from plain synchronous code (or from a thread, inside an asyncio program). ``wait(job_id)``
blocks until a job is final the same way, with none of its entries transferred, and ``run``
creates, starts and (by default) waits for a job. ``follow(job_id, progress=True)`` also yields
its ``progress`` events; ``result(job_id)`` is its structured result, which ``job(job_id)``
carries too (with ``progress``, ``progress_message`` and ``result_size``, as every copy).

This module is the client's public face: every name in ``__all__`` can be imported from here.

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
import json

from jobjoker import client_follow
from jobjoker.client_follow import PAST_ANY_END, Event
from jobjoker.client_transport import CA_BUNDLE_VARIABLE, DEFAULT_URL, DEFAULT_USER, \
    AuthError, BadRequestError, ClientError, ConflictError, ConnectionFailed, NotFoundError, \
    ServerError, Transport, UntrustedCertificate, quote
from jobjoker.client_webhooks import WebhooksClient

__all__ = ["Client", "Event", "ClientError", "ConnectionFailed", "UntrustedCertificate",
           "BadRequestError", "AuthError", "NotFoundError", "ConflictError", "ServerError",
           "CA_BUNDLE_VARIABLE", "DEFAULT_URL", "DEFAULT_USER"]


class Client(WebhooksClient, Transport):
    """One JobJoker server, seen from a script."""

    def _send(self, method, path, body=None, content_type=None, **query):
        """Send one request; the reply's body (bytes) or a ``ClientError``."""
        return self.exchange(method, path, body, content_type, **query)[0]

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

    def create_job(self, worker, parameters=None, start=False, timeout=None, start_at=None,
                   retry=None):
        """Create a job of ``worker`` with ``parameters`` (a dict): idle, or with ``start``
        started in the same request (``queued`` when a concurrency cap is full); with
        ``timeout`` (seconds) it is stopped at that limit and ends ``error`` (else its worker's
        or the server's limit applies); with ``start_at`` (an aware ``datetime``, an RFC 3339
        string or epoch seconds) it waits ``scheduled`` until then; ``retry``: its own retry
        settings (``{"retries": 3, "retry_delay": 10, "retry_backoff": 2,
        "retry_on_timeout": False}``, any of them; else its worker's); the job."""
        job = {"worker": worker, "parameters": parameters, **(retry or {})}
        if start:
            job["start"] = True
        if timeout is not None:
            job["timeout"] = timeout
        if start_at is not None:
            job["start_at"] = _start_at(start_at)
        return self._item("POST", "/jobs", json.dumps(job).encode("utf-8"), "application/json")

    def create_jobs(self, jobs, start=False, timeout=None, start_at=None, retry=None):
        """Create many jobs in one request, all or none (``BadRequestError`` naming each
        problem, ``jobs[3].worker: ...``, and nothing created); with ``start`` start them too.
        ``jobs`` holds ``(worker, parameters)`` pairs or ``{"worker", "parameters",
        "timeout"}`` dicts (retry settings too), at most 1000; ``timeout`` is the time limit
        of each job that sets none, ``start_at`` the start time of each that gives none (it
        implies ``start``), ``retry`` the retry settings of each that sets none; returns the
        jobs in the same order."""
        specs = [dict(job) if isinstance(job, dict) else
                 {"worker": job[0], "parameters": job[1] if len(job) > 1 else None}
                 for job in jobs]
        batch = {"jobs": specs, "start": bool(start or start_at is not None), **(retry or {})}
        if timeout is not None:
            batch["timeout"] = timeout
        if start_at is not None:
            batch["start_at"] = _start_at(start_at)
        body = json.dumps(batch).encode("utf-8")
        return self._data("POST", "/jobs/batch", body, "application/json")

    def rerun(self, job_id, parameters=None, start=True, timeout=None, with_message=False,
              retry=None):
        """Run a job again: a new job of its worker (``rerun_of`` = ``job_id``) with the old
        parameters and ``parameters`` merged over them, started unless ``start`` is false, with
        the old time limit unless ``timeout`` is given. Secret parameters are not copied: give
        them again in ``parameters`` (the reply's message names them). Returns the new job, or
        with ``with_message`` ``(job, message)``; ``NotFoundError`` when the worker was
        deleted. ``retry``: retry settings to change (else the old job's)."""
        body = {"start": bool(start), **(retry or {})}
        if parameters:
            body["parameters"] = parameters
        if timeout is not None:
            body["timeout"] = timeout
        reply = json.loads(self._send("POST", "/jobs/%s/rerun" % quote(job_id),
                                      json.dumps(body).encode("utf-8"), "application/json"))
        return (reply["data"][0], reply["message"]) if with_message else reply["data"][0]

    def attempts(self, job_id):
        """Every attempt of the retry chain of ``job_id``, first first (``attempt`` 1, 2, ...;
        each links to the one it retries by ``retry_of``)."""
        return self._data("GET", "/jobs/%s/attempts" % quote(job_id))

    def job_code(self, job_id, diff=False):
        """The code a job ran: ``{"worker", "hash", "source", "saved", "saved_by", "current"}``
        (``current``: today's worker file is the same). With ``diff``, what changed since:
        ``{"diff", "current", "worker_deleted", ...}`` (a unified diff to today's file)."""
        return self._item("GET", "/jobs/%s/code%s" % (quote(job_id), "/diff" if diff else ""))

    def worker_versions(self, name, offset=0, limit=50):
        """A page of a worker's kept versions, newest first: ``[{"hash", "saved", "saved_by",
        "jobs"}]`` (``saved_by`` None: found on disk when a job started)."""
        return self._data("GET", "/workers/%s/versions" % quote(name), offset=offset,
                          limit=limit)

    def worker_version(self, name, code_hash):
        """One kept version of a worker, with its ``source``."""
        return self._item("GET", "/workers/%s/versions/%s" % (quote(name), quote(code_hash)))

    def job(self, job_id):
        """One job, as the API describes it (``status``, ``exit_code``, ``error``, ...)."""
        return self._item("GET", "/jobs/" + quote(job_id))

    def usage(self, job_id):
        """The job's CPU time and memory: ``cpu_seconds``, ``rss_bytes``, ``max_rss_bytes``,
        ``sampling``, ``step`` and ``points`` (``[t, cpu_seconds, rss_bytes]``, oldest first)."""
        return self._item("GET", "/jobs/%s/usage" % quote(job_id))

    def jobs(self, status=None, worker=None, offset=0, limit=50):
        """A page of jobs, newest first, optionally of one status and/or worker."""
        return self._data("GET", "/jobs", status=status, worker=worker, offset=offset,
                          limit=limit)

    def start(self, job_id):
        """Start an idle job, or a scheduled one now; the job, now ``active``, or ``queued``
        (with its ``queue_position``) when a concurrency cap is full: it starts when a slot
        frees (``wait`` waits through that)."""
        return self._command(job_id, "start")

    def stop(self, job_id):
        """Ask a running job to stop (SIGTERM, SIGKILL after the grace period); the job,
        still active until its process is gone. A scheduled or queued job is cancelled: the
        job, ``stop`` (reason ``cancelled``)."""
        return self._command(job_id, "stop")

    def kill(self, job_id):
        """SIGKILL a running job's process group; the job, still active for a moment."""
        return self._command(job_id, "kill")

    def pause(self, job_id):
        """Pause an active job (SIGSTOP to its process group); the job, still ``active``
        until its process has stopped, then ``paused`` (its time limit runs on)."""
        return self._command(job_id, "pause")

    def resume(self, job_id):
        """Resume a paused job (SIGCONT); the job, ``active`` again once it continued."""
        return self._command(job_id, "resume")

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
            body, headers = self.exchange(
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

    # --- schedules -----------------------------------------------------------------------------

    def schedules(self, offset=0, limit=50):
        """Schedules oldest first, each with ``next_runs`` (its next five times) and ``runs``
        (its last runs: ``outcome``, ``job``, ``job_status``, ``detail``)."""
        return self._data("GET", "/schedules", offset=offset, limit=limit)

    def schedule(self, schedule_id):
        """One schedule."""
        return self._item("GET", "/schedules/" + quote(schedule_id))

    def create_schedule(self, worker, cron, timezone="UTC", parameters=None, **fields):
        """Create a schedule of ``worker`` at the times of ``cron`` (five fields, an
        ``@daily``-style name, or six with seconds last) in the IANA ``timezone``; ``fields``:
        ``name``, ``timeout``, ``missed`` (``skip``/``run_once``), ``overlap``
        (``skip``/``queue``/``allow``). ``BadRequestError`` naming the field when refused."""
        body = dict(fields, worker=worker, cron=cron, timezone=timezone,
                    parameters=parameters)
        return self._item("POST", "/schedules", json.dumps(body).encode("utf-8"),
                          "application/json")

    def update_schedule(self, schedule_id, **fields):
        """Change the fields given (``cron``, ``timezone``, ``parameters``, ...); the schedule."""
        return self._item("PATCH", "/schedules/" + quote(schedule_id),
                          json.dumps(fields).encode("utf-8"), "application/json")

    def delete_schedule(self, schedule_id):
        """Delete a schedule (its jobs stay); the schedule as it was."""
        return self._item("DELETE", "/schedules/" + quote(schedule_id))

    def pause_schedule(self, schedule_id):
        return self._item("POST", "/schedules/%s/pause" % quote(schedule_id))

    def resume_schedule(self, schedule_id):
        return self._item("POST", "/schedules/%s/resume" % quote(schedule_id))

    def run_schedule(self, schedule_id):
        """Fire a schedule once now; the schedule, its newest run (``runs[0]``) this one."""
        return self._item("POST", "/schedules/%s/run" % quote(schedule_id))

    def run(self, worker, parameters=None, follow=True, timeout=None, start_at=None,
            retry=None):
        """Create and start a job (``timeout``: its time limit in seconds; ``start_at``: when,
        see ``create_job``; ``retry``: its retry settings, as ``create_job`` takes them). With
        ``follow``, wait for its end (through ``scheduled`` and ``queued``) and return the
        final job (one attempt: a retry is a job of its own, ``attempts``); else return the
        job just started, scheduled or queued."""
        job = self.create_job(worker, parameters, start=True, timeout=timeout,
                              start_at=start_at, retry=retry)
        return self.wait(job["id"]) if follow else job

    def wait(self, job_id):
        """Block until the job is final (``stop``, ``error`` or ``done``: a ``paused`` job has
        not ended, and is waited for through its resume; a ``scheduled`` or ``queued`` one
        through its start) and return it. This follows the job's stream (so there
        is no polling, and a dropped connection is resumed) from past the end of its entries,
        so that none of them is transferred."""
        for _ in self.follow(job_id, PAST_ANY_END, PAST_ANY_END):
            pass
        return self.job(job_id)

    def follow(self, job_id, log_from=0, response_from=0, max_retries=10, progress=False):
        """Yield the job's ``Event``s live from these entry indexes until its end, resuming by
        itself after a dropped connection (``jobjoker.client_follow``); with ``progress``, its
        ``progress`` events too."""
        return client_follow.follow(self, job_id, log_from, response_from, max_retries,
                                    progress)

    def result(self, job_id):
        """The job's structured result (the value its worker gave ``self.result()`` last);
        ``NotFoundError`` when it has none. ``job(job_id)["result"]`` holds it too."""
        return self._data("GET", "/jobs/%s/result" % quote(job_id))[0]


def _start_at(value):
    """A ``start_at`` as the API takes it: an aware ``datetime`` as RFC 3339; a string or a
    number as given (the server checks it)."""
    return value.isoformat() if hasattr(value, "isoformat") else value
