"""What the test modules share that is not a fixture: one way to talk HTTP to a server (``call``
from synchronous code, ``fetch`` from a coroutine, both giving a ``Reply``), one way to run
``run_server.py`` in its own process (``ServerProcess``), one way to wait for an event (``until``
and ``poll``, with a deadline), the cleanup of processes a test started, and the test workers and
tables that several modules use.

Test modules import from here (and conftest.py builds its fixtures on it), never from each other.
"""
import asyncio
import base64
import inspect
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import peewee
import pytest
import tornado.httputil

from jobjoker import models, proc
from jobjoker.app import JobJokerServer

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "test-password"
ADMIN = ("admin", PASSWORD)
IN_CI = os.environ.get("CI", "").lower() == "true"
FINAL_STATUSES = ("done", "error", "stop")
SAMPLE_WORKERS = ("Foobar", "TestWorker")
AS_ADMIN = object()  # ServerProcess.call's default credentials: its own admin's


# --- what the machine may lack ------------------------------------------------------------------

def unavailable(reason):
    """The one rule for what a test needs besides Python (a MySQL or PostgreSQL server, Redis,
    Chromium, root for a tmpfs...): locally, skip the test with ``reason`` (``-ra`` prints it
    in the summary, on one line); with ``CI=true``, fail it, because CI must run every test."""
    reason = " ".join(reason.split())
    if IN_CI:
        pytest.fail("%s (CI=true: CI must run this test, so it fails instead of skipping)"
                    % reason, pytrace=False)
    pytest.skip(reason)


# --- database errors ---------------------------------------------------------------------------

def wrapped_as_peewee(error):
    """``error`` as Peewee re-raises a driver's error (the original first in its args)."""
    try:
        try:
            raise error
        except Exception as original:
            raise peewee.OperationalError(original, *original.args)
    except peewee.OperationalError as e:
        return e


# --- PostgreSQL ---------------------------------------------------------------------------------

POSTGRESQL_URL = os.environ.get("JOBJOKER_TEST_POSTGRESQL_URL",
                                "postgresql://postgres@127.0.0.1:5432/test")


def postgresql_admin(url, statement):
    """Run ``statement % database name of url`` on the server of ``url``, outside any database
    (``CREATE DATABASE "%s"``)."""
    import psycopg2
    parts = urllib.parse.urlsplit(url)
    connection = psycopg2.connect(host=parts.hostname, port=parts.port or 5432,
                                  user=parts.username or "postgres",
                                  password=parts.password or "", dbname="postgres",
                                  connect_timeout=3)
    connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement % parts.path.lstrip("/"))
    finally:
        connection.close()


# --- waiting for an event ---------------------------------------------------------------------

def until(check, timeout=60.0, what="condition", every=0.05):
    """Wait until ``check()`` returns something truthy and return it.

    Tests synchronise with servers and jobs this way, on the event itself with a deadline that
    only a failure reaches, never with a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError("still waiting after %.0f s for %s" % (timeout, what))
        time.sleep(every)
    return result


async def poll(check, timeout=60.0, what="condition", every=0.02):
    """The coroutine twin of ``until``: ``check`` may be a plain function or a coroutine
    function."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("still waiting after %.0f s for %s" % (timeout, what))
        await asyncio.sleep(every)


# --- HTTP -------------------------------------------------------------------------------------

class Reply:
    """An HTTP reply with its JSON body parsed (``json`` is None for non-JSON bodies)."""

    def __init__(self, code, headers, body):
        self.code = code
        self.headers = headers
        self.body = body or b""
        self.text = self.body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.body)
        except ValueError:
            self.json = None

    @property
    def data(self):
        return self.json["data"]

    def __repr__(self):
        return "<Reply %s %s>" % (self.code, self.text[:300])


def encode_body(body):
    """``body`` as bytes: bytes and text as they are, anything else as JSON."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return body.encode() if isinstance(body, str) else body


def call(base_url, method, path, body=None, auth=ADMIN, headers=None, timeout=60,
         context=None):
    """A blocking request to ``base_url + path``; ``auth`` is (user, password) or None."""
    data = encode_body(body)
    if data is None and method in ("POST", "PUT", "PATCH"):
        data = b""
    request = urllib.request.Request(base_url + path, method=method, data=data,
                                     headers=headers or {})
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            code, raw_headers, payload = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        code, raw_headers, payload = error.code, error.headers, error.read()
    headers = tornado.httputil.HTTPHeaders()
    for name, value in raw_headers.items():
        headers.add(name, value)
    return Reply(code, headers, payload)


async def fetch(client, base_url, method, path, body=None, auth=ADMIN, headers=None,
                timeout=60):
    """``call`` from a coroutine, through a Tornado ``AsyncHTTPClient``."""
    data = encode_body(body)
    if data is None and method in ("POST", "PUT", "PATCH"):
        data = b""
    credentials = {} if auth is None else {"auth_username": auth[0], "auth_password": auth[1]}
    response = await client.fetch(
        base_url + path, method=method, body=data, headers=headers or {}, raise_error=False,
        allow_nonstandard_methods=True, request_timeout=timeout, follow_redirects=False,
        **credentials)
    return Reply(response.code, response.headers, response.body)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def cookies_of(reply):
    """``{name: (value, whole Set-Cookie header)}`` of a reply."""
    jar = {}
    for header in reply.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        jar[name] = (rest.split(";")[0], header)
    return jar


async def read_until_closed(connection, timeout=60.0):
    """Every message (parsed) of a WebSocket until the server closes it."""
    messages = []
    while True:
        message = await asyncio.wait_for(connection.read_message(), timeout)
        if message is None:
            return messages
        messages.append(json.loads(message))


# --- processes --------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed_certificate(folder):
    """A self-signed certificate for 127.0.0.1 (only: not for localhost) made with
    ``openssl``, and its key: ``(cert, key)`` paths in ``folder``."""
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed (apt-get install openssl)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=jobjoker-test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def process_alive(pid):
    """True while ``pid`` exists and is not a zombie (a zombie has ended, only unreaped)."""
    return proc.state(pid) not in (None, "Z")


def processes_of(socket_path):
    """Pids of the processes started for this supervisor socket's data dir: its supervisors (of
    any code: their titles name the data dir and the socket) and their jobs (whose stdout is a
    spool in the data dir's jobs folder; their titles name only the job and worker)."""
    def read(pid, what):
        try:
            if what == "cmdline":
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    return f.read()
            return os.readlink("/proc/%d/%s" % (pid, what))
        except OSError:
            return None
    pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    found = {pid for pid in pids if socket_path.encode() in (read(pid, "cmdline") or b"")}
    data_dirs = {os.path.dirname(os.path.dirname(socket_path))} \
        if os.path.basename(os.path.dirname(socket_path)) == "run" else set()
    for pid in found:  # a supervisor's working folder is its run dir
        cwd = read(pid, "cwd")
        if cwd and os.path.basename(cwd) == "run":
            data_dirs.add(os.path.dirname(cwd))
    for data_dir in data_dirs:
        title = ("jobjoker supervisor %s on " % data_dir).encode()
        spools = os.path.join(data_dir, "jobs") + os.sep
        found.update(pid for pid in pids if (read(pid, "cmdline") or b"").startswith(title)
                     or (read(pid, "fd/1") or "").startswith(spools))
    return sorted(found)


def kill_leftovers(socket_path):
    """SIGKILL any process still running under this supervisor socket (it and its jobs)."""
    for pid in processes_of(socket_path):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def serve_in_process(io_loop, config, listen):
    """A generator for a fixture: a server on ``config`` started in this process (``listen``:
    on its own port; else pytest-tornado's http_server serves its app), then stopped with its
    jobs killed, whatever they left behind, and the database unbound."""
    instance = JobJokerServer(config, admin_password=PASSWORD)
    io_loop.run_sync(lambda: instance.start(listen=listen))
    yield instance
    io_loop.run_sync(lambda: instance.stop(kill_jobs=True))
    kill_leftovers(instance.processes.supervisor.socket_path)
    models.database.initialize(None)


class Bystander:
    """A live process that is nobody's job, and can tell whether it was signalled: it answers a
    real-time signal, which is delivered after any standard signal (SIGTERM, SIGKILL, SIGSTOP...)
    sent to it before, so an answer proves none of those came first."""

    SOURCE = """import signal
signal.signal(signal.SIGRTMIN, lambda *args: print("pong", flush=True))
print("ready", flush=True)
while True:
    signal.pause()
"""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", self.SOURCE],
                                        stdout=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        assert self.process.stdout.readline() == "ready\n"

    def unsignalled(self):
        """True if nothing signalled it so far (a killed or stopped one fails or hangs here)."""
        os.kill(self.pid, signal.SIGRTMIN)
        return self.process.stdout.readline() == "pong\n" and self.process.poll() is None

    def close(self):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def workers_folder(path, workers=None, samples=SAMPLE_WORKERS):
    """Make ``path`` a workers folder holding copies of the sample workers and ``workers``
    (``{name: source}``); returns it."""
    path.mkdir(parents=True, exist_ok=True)
    for name in samples:
        (path / ("%s.py" % name)).write_text((ROOT / "workers" / ("%s.py" % name)).read_text())
    for name, source in (workers or {}).items():
        (path / ("%s.py" % name)).write_text(source)
    return path


class ServerProcess:
    """``run_server.py`` in its own process, as users run it, on ``root/data``.

    ``args`` are more command-line options (a later one wins over an earlier one). ``password``
    is the first admin's (None: the server generates one and prints it). ``command`` starts
    another server than the checkout's ``run_server.py`` (an installed ``jobjoker serve``).
    ``start()`` again after ``stop()`` or ``kill()`` restarts it on the same port and data dir
    (by default a free port, and ``root/data``).
    """

    def __init__(self, root, *args, password=PASSWORD, env=None, workers_dir=None, tls=None,
                 command=None, port=None, data_dir=None):
        self.command = command or [sys.executable, str(ROOT / "run_server.py")]
        self.root = root
        self.port = port or free_port()
        self.data_dir = data_dir or root / "data"
        self.workers_dir = workers_dir or ROOT / "workers"
        self.password = password
        self.auth = ("admin", password)
        self.args = args
        self.tls = tls  # (certificate, key): serve HTTPS
        self.env = env or {}
        self.stderr_path = root / ("server-%d.err" % self.port)
        self.process = None
        self.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    @property
    def stderr(self):
        return self.stderr_path.read_text()

    @property
    def supervisor_socket(self):
        from jobjoker.supervisor_client import socket_path_for
        return socket_path_for(str(self.data_dir / "run"))

    def start(self):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
        if self.password is not None:
            environ["JOBJOKER_ADMIN_PASSWORD"] = self.password
        environ.update(self.env)
        tls = ("--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])) if self.tls else ()
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [*self.command, "--port", str(self.port),
                 "--data-dir", str(self.data_dir), "--workers-dir", str(self.workers_dir),
                 *tls, *self.args],
                stdout=subprocess.DEVNULL, stderr=stderr, env=environ)
        return self

    def wait_ready(self, timeout=60):
        """Wait until ``/health`` answers 200; returns the server."""
        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.tls[0]))
            context.check_hostname = False

        def ready():
            if self.process.poll() is not None:
                raise AssertionError("server exited %s: %s" % (self.process.returncode,
                                                                self.stderr))
            try:
                return self.call("GET", "/health", auth=None, context=context).code == 200
            except OSError:
                return False
        until(ready, timeout, "the server on port %d to be ready" % self.port)
        return self

    def stop(self, timeout=60):
        """SIGTERM, as an operator stops it (its jobs keep running); returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=timeout)
        return self.process.returncode

    def kill(self):
        """SIGKILL, as a crash: nothing of the server's own shutdown runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def discard(self):
        """Kill the server, its supervisor and its jobs."""
        self.kill()
        kill_leftovers(self.supervisor_socket)

    # --- the API, as the admin ---

    def call(self, method, path, body=None, auth=AS_ADMIN, headers=None, context=None):
        """``call`` on this server, as its admin unless ``auth`` says otherwise."""
        return call(self.url, method, path, body, self.auth if auth is AS_ADMIN else auth,
                    headers, context=context)

    def api(self, method, path, body=None):
        """The data of a successful call (anything else fails the test)."""
        reply = self.call(method, path, body)
        assert 200 <= reply.code < 300, (method, path, reply)
        return reply.data

    def job(self, job_id):
        return self.api("GET", "/jobs/%s" % job_id)[0]

    def create_job(self, worker, parameters=None, start=True):
        """Create a job, started in the same request unless ``start`` is False."""
        body = {"worker": worker, "parameters": parameters}
        if start:
            body["start"] = True
        reply = self.call("POST", "/jobs", body)
        assert reply.code == 201, reply
        return reply.data[0]

    def messages(self, job_id, stream="log"):
        return [e["message"] for e in self.api("GET", "/jobs/%s/%s?limit=100000"
                                               % (job_id, stream))]

    def wait_for_job(self, job_id, statuses=FINAL_STATUSES, timeout=60):
        """The job once its status is one of ``statuses``."""
        def reached():
            job = self.job(job_id)
            return job if job["status"] in statuses else None
        return until(reached, timeout, "job %s to be %s" % (job_id, "/".join(statuses)))


# --- what several modules share -------------------------------------------------------------

def wait_for_end(client, job_id):
    """The job, read through a ``jobjoker.client.Client``, once it has ended."""
    def ended():
        job = client.job(job_id)
        return job if job["status"] in FINAL_STATUSES else None  # paused has not ended
    return until(ended, what="job %s to end" % job_id)


LINES_WORKER = '''import os, time
from jobjoker import Worker

class Lines(Worker):
    """Logs `count` lines "line i", padded with dots to `width`, and a response every 1000;
    after the first `pause_at` lines, waits for the file `gate` to exist."""
    def run(self):
        for i in range(self.params["count"]):
            if i == self.params.get("pause_at"):
                while not os.path.exists(self.params["gate"]):
                    time.sleep(0.01)
            self.log(("line %d " % i).ljust(self.params.get("width", 0), "."))
            if i % 1000 == 0:
                self.response("response %d" % i)
'''

# The pause keeps the failure after the reply to its start: a job that fails while its start
# request is still being answered gets a 503 for the start (a server race, reported).
FAILING_WORKER = '''import time
from jobjoker import Worker

class Failing(Worker):
    """Logs one line, then raises."""
    def run(self):
        self.log("about to fail")
        time.sleep(0.2)
        raise ValueError("bad input")
'''

HELLO_WORKER = '''from jobjoker import Worker

class Hello(Worker):
    """Says hello."""
    def run(self):
        self.log("hello %s" % self.get_parameter("name", "world"))
'''


OPEN_WORKER = '''from jobjoker import Worker


class Open(Worker):
    """Declares no parameters, so it takes any, unchecked."""

    def run(self):
        self.log("parameters %s" % sorted(self.params))
'''


TICKER_WORKER = '''import os, time
from jobjoker import Worker


class Ticker(Worker):
    """Logs tick 0, tick 1, ... every `every` seconds, `count` times, while active; with
    `gate`, waits after `pause_at` ticks until that file exists."""

    def run(self):
        for i in range(self.params.get("count", 100)):
            if i == self.params.get("pause_at"):
                while not os.path.exists(self.params["gate"]) and self.is_active():
                    time.sleep(0.02)
            if not self.is_active():
                return
            self.log("tick %d" % i)
            time.sleep(self.params.get("every", 0.02))
        self.response("finished")
'''


# --- who may do what --------------------------------------------------------------------------

PUBLIC, SELF = "public", "self"
# The role matrix, written out from the issue, not derived from the code: test_security.py checks
# every route of the route table against it and test_openapi.py the document's roles.
# (path template, method) -> the least role that may call it
MATRIX = {
    ("/health", "GET"): PUBLIC,
    ("/health", "HEAD"): PUBLIC,
    ("/metrics", "GET"): "viewer",
    ("/", "GET"): "viewer",
    ("/login", "GET"): PUBLIC,
    ("/openapi.json", "GET"): "viewer",
    ("/workers", "GET"): "viewer",
    ("/workers/{name}", "GET"): "viewer",
    ("/workers/{name}", "PUT"): "admin",
    ("/workers/{name}", "DELETE"): "admin",
    ("/workers/{name}/code", "GET"): "viewer",
    ("/workers/{name}/versions", "GET"): "viewer",
    ("/workers/{name}/versions/{hash}", "GET"): "viewer",
    ("/jobs", "GET"): "viewer",
    ("/jobs", "POST"): "operator",
    ("/jobs/batch", "POST"): "operator",
    ("/jobs/{id}", "GET"): "viewer",
    ("/jobs/{id}", "DELETE"): "operator",
    ("/jobs/{id}/status", "GET"): "viewer",
    ("/jobs/{id}/status", "PUT"): "operator",
    ("/jobs/{id}/{stream}", "GET"): "viewer",
    ("/jobs/{id}/{stream}", "POST"): "operator",
    ("/jobs/{id}/{stream}/download", "GET"): "viewer",
    ("/jobs/{id}/pid", "GET"): "viewer",
    ("/jobs/{id}/result", "GET"): "viewer",
    ("/jobs/{id}/pid", "PUT"): "operator",
    ("/jobs/{id}/rerun", "POST"): "operator",
    ("/jobs/{id}/code", "GET"): "viewer",
    ("/jobs/{id}/code/diff", "GET"): "viewer",
    ("/jobs/{id}/attempts", "GET"): "viewer",
    ("/jobs/{id}/usage", "GET"): "viewer",
    ("/jobs/{id}/stream", "GET"): "viewer",
    ("/events", "GET"): "viewer",
    ("/streams/origin", "GET"): "viewer",
    ("/session", "GET"): SELF,
    ("/session", "POST"): PUBLIC,
    ("/session", "DELETE"): SELF,
    ("/users", "GET"): "admin",
    ("/users", "POST"): "admin",
    ("/users/{name}", "GET"): SELF,
    ("/users/{name}", "PATCH"): "admin",
    ("/users/{name}", "DELETE"): "admin",
    ("/users/{name}/password", "PUT"): SELF,
    ("/tokens", "GET"): SELF,
    ("/tokens", "POST"): SELF,
    ("/tokens/{id}", "DELETE"): SELF,
    ("/audit", "GET"): "admin",
    ("/schedules", "GET"): "viewer",
    ("/schedules", "POST"): "operator",
    ("/schedules/{id}", "GET"): "viewer",
    ("/schedules/{id}", "PATCH"): "operator",
    ("/schedules/{id}", "DELETE"): "operator",
    ("/schedules/{id}/pause", "POST"): "operator",
    ("/schedules/{id}/resume", "POST"): "operator",
    ("/schedules/{id}/run", "POST"): "operator",
    ("/webhooks", "GET"): "admin",
    ("/webhooks", "POST"): "admin",
    ("/webhooks/{name}", "GET"): "admin",
    ("/webhooks/{name}", "PATCH"): "admin",
    ("/webhooks/{name}", "DELETE"): "admin",
    ("/webhooks/{name}/secret", "POST"): "admin",
    ("/webhooks/{name}/test", "POST"): "admin",
    ("/webhooks/{name}/deliveries", "GET"): "admin",
}


# Workers that several test files run.

# Runs until stopped: logs and responds once, then idles while the job is active.
SLEEPER = '''
import time

from jobjoker import Worker


class Sleeper(Worker):
    """Responds "running", then waits until asked to stop."""

    def run(self):
        self.response("running")
        while self.is_active():
            time.sleep(0.02)
'''

# Ignores SIGTERM, so only the SIGKILL after the grace period ends it.
STUBBORN = '''
import signal
import time

from jobjoker import Worker


class Stubborn(Worker):
    """Ignores SIGTERM and runs until killed."""

    def run(self):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.response("ignoring SIGTERM")
        while True:
            time.sleep(0.02)
'''
