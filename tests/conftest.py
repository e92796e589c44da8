"""Shared fixtures: a fresh database per test (SQLite, and MariaDB/MySQL), a real server with a
real supervisor, an ``api`` helper for REST calls, and cleanup of every process a test started.

Every server-backed test runs once per backend: ``sqlite`` always, ``mysql`` against
``JOBJOKER_TEST_MYSQL_URL`` (default ``mysql://root@127.0.0.1:3306/jobjoker_test``). Locally a
missing MySQL skips those runs; with ``CI=true`` it fails them, because CI must test MySQL.
"""
import asyncio
import json
import os
import pathlib
import shutil
import signal
import urllib.parse

import pytest
import tornado.httpclient  # noqa: F401 -- ws_connect builds its HTTPRequest from it
import tornado.ioloop
import tornado.process
from pytest_tornado import plugin as pytest_tornado
from pytest_tornado.plugin import (  # noqa: F401 -- its fixtures, registered here (see below)
    _unused_port, base_url, http_client, http_port, http_server)

from jobjoker import auth, models
from jobjoker.app import JobJokerServer
from jobjoker.config import load_config

# --- pytest-tornado -------------------------------------------------------------------------
# The project's test plugin. Version 0.8.1 works with current Tornado and pytest, but declares
# two hooks with marks that pytest deprecates, and its io_loop fixture calls IOLoop methods that
# Tornado deprecates. So pytest.ini turns its entry point off (-p no:tornado) and it is
# registered from here: its hooks declared the current way, its fixtures as they are, and
# io_loop replaced below. Nothing of it is silenced.
pytest_addoption = pytest_tornado.pytest_addoption  # --async-test-timeout, --app-fixture
pytest_configure = pytest_tornado.pytest_configure  # the gen_test marker
pytest_runtest_setup = pytest_tornado.pytest_runtest_setup  # io_loop for every gen_test


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    return pytest_tornado.pytest_pycollect_makeitem(collector, name, obj)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Runs a ``gen_test`` coroutine on the test's IOLoop."""
    return pytest_tornado.pytest_pyfunc_call(pyfuncitem)


ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "test-password"
MYSQL_URL = os.environ.get("JOBJOKER_TEST_MYSQL_URL",
                           "mysql://root@127.0.0.1:3306/jobjoker_test")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    # Real scrypt costs ~0.3 s a hash; tests that are not about hashing use a cheap cost.
    # test_auth.py checks the real cost separately.
    monkeypatch.setattr(auth, "SCRYPT_N", 2 ** 8)
    monkeypatch.setattr(auth, "SCRYPT_P", 1)


@pytest.fixture
def io_loop():
    """pytest-tornado's IOLoop per test, made current as Tornado's own ``AsyncTestCase`` does it
    (the plugin's fixture calls ``make_current()`` and ``clear_current()``, deprecated since
    Tornado 6.2)."""
    loop = tornado.ioloop.IOLoop(make_current=False)
    asyncio.set_event_loop(loop.asyncio_loop)
    yield loop
    # What a test left running is cancelled, not destroyed pending with the loop.
    left = [task for task in asyncio.all_tasks(loop.asyncio_loop) if not task.done()]
    for task in left:
        task.cancel()
    if left:
        loop.run_sync(lambda: asyncio.wait(left))
    tornado.process.Subprocess.uninitialize()
    asyncio.set_event_loop(None)
    loop.close(all_fds=True)


def _mysql_admin(url, statement):
    import pymysql
    parts = urllib.parse.urlsplit(url)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root",
                                 password=parts.password or "", connect_timeout=3)
    with connection:
        with connection.cursor() as cursor:
            cursor.execute(statement % parts.path.lstrip("/"))


@pytest.fixture(scope="session")
def mysql_url():
    """A MySQL database of this test session's own (so parallel runs cannot collide), or the
    reason there is none."""
    import pymysql
    parts = urllib.parse.urlsplit(MYSQL_URL)
    url = urllib.parse.urlunsplit(parts._replace(path="%s_%d" % (parts.path, os.getpid())))
    try:
        _mysql_admin(url, "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4")
    except pymysql.err.MySQLError as e:
        yield None, str(e)
        return
    yield url, None
    _mysql_admin(url, "DROP DATABASE IF EXISTS `%s`")


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database_url(request, tmp_path):
    """A URL to an empty database of each backend."""
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "test.sqlite3")
    url, problem = request.getfixturevalue("mysql_url")
    if problem:
        message = "MySQL at %s is not available: %s" % (MYSQL_URL, problem)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    db = models.make_database(url)
    db.connect()
    models.drop_all(db)
    db.close()
    return url


@pytest.fixture
def workers_dir(tmp_path):
    """A workers folder holding the sample workers."""
    path = tmp_path / "workers"
    path.mkdir()
    for name in ("Foobar.py", "TestWorker.py"):
        shutil.copy(ROOT / "workers" / name, path / name)
    return path


@pytest.fixture
def write_worker(workers_dir):
    """Write ``workers/<name>.py`` with the given source; returns its path."""
    def write(name, source):
        path = workers_dir / ("%s.py" % name)
        path.write_text(source)
        return path
    return write


@pytest.fixture
def config_overrides():
    """Override in a test module to change the server's config (e.g. ``stop_grace``)."""
    return {}


@pytest.fixture
def config(tmp_path, workers_dir, database_url, config_overrides):
    flags = {"data_dir": tmp_path / "data", "workers_dir": workers_dir,
             "database": database_url, "port": 0, "stop_grace": 2.0, "node": "test-node",
             # tests send wrong passwords on purpose; test_security.py checks the throttle
             "login_failures": 10000, "login_failures_per_address": 10000}
    flags.update(config_overrides)
    return load_config(flags, environ={})


@pytest.fixture
def server(io_loop, config):
    """A started server (not listening: pytest-tornado's http_server serves its app)."""
    instance = JobJokerServer(config, admin_password=PASSWORD)
    io_loop.run_sync(lambda: instance.start(listen=False))
    yield instance
    io_loop.run_sync(lambda: instance.stop(kill_jobs=True))
    kill_leftovers(instance.processes.supervisor.socket_path)
    models.database.initialize(None)


@pytest.fixture
def app(server):
    return server.app


def processes_of(socket_path):
    """Pids of the processes started for this supervisor socket (the supervisor and its jobs,
    which inherit its command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if socket_path.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_leftovers(socket_path):
    """SIGKILL any process still running under this test's supervisor (it and its jobs)."""
    for pid in processes_of(socket_path):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Reply:
    """An HTTP reply with its JSON body parsed (``json`` is None for non-JSON bodies)."""

    def __init__(self, response):
        self.code = response.code
        self.headers = response.headers
        self.body = response.body or b""
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


@pytest.fixture
def api(app, http_client, base_url):
    """``await api(method, path, body=None, auth=(user, password), headers=None)``.

    ``body`` may be bytes, str, or anything JSON-serialisable; ``auth=None`` sends none.
    """
    async def call(method, path, body=None, auth=("admin", PASSWORD), headers=None):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        kwargs = {}
        if auth is not None:
            kwargs.update(auth_username=auth[0], auth_password=auth[1])
        response = await http_client.fetch(
            base_url + path, method=method, body=body, headers=headers or {},
            raise_error=False, allow_nonstandard_methods=True, request_timeout=60,
            follow_redirects=False, **kwargs)
        return Reply(response)
    return call


@pytest.fixture
def wait_for_status(api):
    """``await wait_for_status(job_id, {"done", ...}, timeout)``: poll until the job is final."""
    import asyncio

    async def wait(job_id, statuses=("done", "error", "stop"), timeout=20.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            reply = await api("GET", "/jobs/%s" % job_id)
            job = reply.data[0]
            if job["status"] in statuses:
                return job
            if loop.time() > deadline:
                raise AssertionError("job %s still %s after %.0f s" % (job_id, job["status"],
                                                                      timeout))
            await asyncio.sleep(0.05)
    return wait


@pytest.fixture
def run_job(api, wait_for_status):
    """Create and start a job of ``worker`` with ``parameters``; returns the started job."""
    async def run(worker, parameters=None, wait=False, timeout=20.0):
        created = await api("POST", "/jobs", {"worker": worker, "parameters": parameters})
        assert created.code == 201, created
        job_id = created.data[0]["id"]
        started = await api("PUT", "/jobs/%s/status" % job_id, "start")
        assert started.code == 200, started
        if wait:
            return await wait_for_status(job_id, timeout=timeout)
        return started.data[0]
    return run


@pytest.fixture
def ws_connect(app, http_server, http_port):
    """``await ws_connect(path, auth=(user, password), headers=None)``: an open WebSocket.

    Requests ``http_server`` (pytest-tornado starts nothing for WebSockets otherwise).
    """
    import tornado.websocket

    async def connect(path, auth=("admin", PASSWORD), headers=None):
        kwargs = {}
        if auth is not None:
            kwargs.update(auth_username=auth[0], auth_password=auth[1])
        request = tornado.httpclient.HTTPRequest(
            "ws://127.0.0.1:%d%s" % (http_port, path), headers=headers or {},
            request_timeout=30, **kwargs)
        return await tornado.websocket.websocket_connect(request)
    return connect


async def read_until_closed(connection, timeout=60.0):
    """Every message (parsed) until the server closes the socket."""
    import asyncio
    messages = []
    while True:
        message = await asyncio.wait_for(connection.read_message(), timeout)
        if message is None:
            return messages
        messages.append(json.loads(message))


async def poll(check, timeout=10.0, what="condition"):
    """Wait until ``check()`` (a function, sync or async) returns something truthy; return it.

    Tests synchronise with the server this way, with a deadline, never with fixed sleeps.
    """
    import asyncio
    import inspect
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
        await asyncio.sleep(0.02)


@pytest.fixture
def servers(tmp_path):
    """``servers(env=None, args=())``: start a real ``run_server.py`` process on this test's
    data dir (a ``ServerProcess``); every one, and its supervisor and jobs, is killed after."""
    from tests.test_server_process import ServerProcess
    started = []
    yield lambda **kw: started.append(ServerProcess(tmp_path, **kw)) or started[-1]
    discard(*started)


def discard(*servers):
    """Kill real server processes (``ServerProcess``) and whatever their supervisors run."""
    from jobjoker.supervisor_client import socket_path_for
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        kill_leftovers(socket_path_for(str(server.data_dir / "run")))


def process_alive(pid):
    """True while ``pid`` exists and is not a zombie (a zombie has ended, only unreaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
