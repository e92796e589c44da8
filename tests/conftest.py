"""Shared fixtures: a fresh database per test, a real server with a real supervisor, an ``api``
helper for REST calls and a ``ws_connect`` helper for WebSockets, real server processes
(``servers``), and cleanup of every process a test started. What is not a fixture lives in
``tests/support.py``.

Databases: every server test runs on SQLite. The tests that exercise the database layer itself
(storage, transactions, locking, ingestion, migrations) run on MariaDB/MySQL too: the modules
named in ``BOTH_DATABASES_MODULES`` and the tests marked ``both_databases``. Their MySQL runs use
``JOBJOKER_TEST_MYSQL_URL`` (default ``mysql://root@127.0.0.1:3306/jobjoker_test``), with a
database of each test process's own; locally a missing MySQL skips them, with ``CI=true`` it fails
them, because CI must test MySQL.
"""
import asyncio
import http.server
import json
import os
import threading
import urllib.parse

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.process
import tornado.websocket

from pytest_tornado import plugin as pytest_tornado
from pytest_tornado.plugin import (  # noqa: F401 -- its fixtures, registered here (see below)
    _unused_port, base_url, http_client, http_port, http_server)

from jobjoker import auth, models
from jobjoker.config import load_config
from jobjoker.events import EventHub
from jobjoker.storage import Storage
from tests.support import (FAILING_WORKER, FINAL_STATUSES, LINES_WORKER, PASSWORD,
                           POSTGRESQL_URL, ServerProcess, fetch, poll, postgresql_admin,
                           serve_in_process, unavailable, workers_folder)

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


def pytest_collection_modifyitems(items):
    """schemathesis 4 on pytest 9 gives the test of every operation (test_fuzz.py) the node id of
    the function; each gets its own, as its name already is, so that a run in parallel (which
    tells tests apart by node id) runs every one of them, and reports say which one failed."""
    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and not item.nodeid.endswith("]"):
            item._id = item.parent.id.child(item.name)  # what pytest gives its own items


MYSQL_URL = os.environ.get("JOBJOKER_TEST_MYSQL_URL",
                           "mysql://root@127.0.0.1:3306/jobjoker_test")
BACKENDS = ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)]
# Whole modules whose every database test runs on both backends, and why.
BOTH_DATABASES_MODULES = {
    "test_logstore": "the log store's chunks, pages and counters",
    "test_migrations": "schema migrations",
    "test_nodes": "the node lease: locking rows another server holds",
    "test_restart": "adoption: what one server stored, the next one reads",
    "test_load": "ingestion and reads under load",
    "test_auth": "users and password hashes as stored",
    "test_storage": "the writer thread, readers, savepoints and the job store",
    "test_ingest": "spool files stored into the database",
}


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


# --- databases ----------------------------------------------------------------------------

def pytest_generate_tests(metafunc):
    """Every test that uses a database gets SQLite; those of the database layer MySQL too."""
    if "database_url" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    both = module in BOTH_DATABASES_MODULES or \
        metafunc.definition.get_closest_marker("both_databases") is not None
    metafunc.parametrize("database_url", BACKENDS if both else BACKENDS[:1], indirect=True)


def _mysql_admin(url, statement):
    import pymysql
    parts = urllib.parse.urlsplit(url)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root",
                                 password=parts.password or "", connect_timeout=3)
    with connection:
        with connection.cursor() as cursor:
            cursor.execute(statement % parts.path.lstrip("/"))


# How to make and drop a database on each networked server the suite uses.
_SCRATCH = {
    "mysql": (_mysql_admin, MYSQL_URL, "CREATE DATABASE `%s` CHARACTER SET utf8mb4",
              "DROP DATABASE IF EXISTS `%s`"),
    "postgresql": (postgresql_admin, POSTGRESQL_URL, 'CREATE DATABASE "%s"',
                   'DROP DATABASE IF EXISTS "%s" WITH (FORCE)'),
}


def scratch_database(request, kind, name):
    """The URL of a new, empty database ``name`` of ``kind`` ("mysql" or "postgresql") on the
    suite's server of that kind, dropped when the test ends; ``unavailable`` when there is
    none (no driver, no server, no right: any of them)."""
    admin, base, create, drop = _SCRATCH[kind]
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path="/" + name))
    try:
        admin(url, drop)
        admin(url, create)
    except Exception as e:
        unavailable("%s at %s is not available: %s: %s" % (kind, base, type(e).__name__, e))
    request.addfinalizer(lambda: admin(url, drop))
    return url


@pytest.fixture(scope="session")
def mysql_url():
    """A MySQL database of this test process's own (so parallel runs, and the workers of one
    parallel run, cannot collide), or the reason there is none."""
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


@pytest.fixture
def database_url(request, tmp_path):
    """A URL to an empty database of the backend the test is parametrised with."""
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "test.sqlite3")
    url, problem = request.getfixturevalue("mysql_url")
    if problem:
        unavailable("MySQL at %s is not available: %s" % (MYSQL_URL, problem))
    db = models.make_database(url)
    db.connect()
    models.drop_all(db)
    db.close()
    return url


# --- a server in the test process ---------------------------------------------------------

@pytest.fixture
def workers_dir(tmp_path):
    """A workers folder holding the sample workers."""
    return workers_folder(tmp_path / "workers")


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
def storage(database_url, io_loop):
    """The storage of a fresh database, as a server would have it."""
    db = models.open_database(database_url)
    db.close()
    storage = Storage(db, EventHub())
    yield storage
    io_loop.run_sync(storage.close)
    models.database.initialize(None)


@pytest.fixture
def make_user():
    """Create a user with a role directly in the database; returns (username, password)."""
    def make(name, role):
        password = "pw-%s-0123456789" % name
        models.User.create(username=name, password_hash=auth.hash_password(password), role=role)
        return name, password
    return make


@pytest.fixture
def server(io_loop, config):
    """A started server (not listening: pytest-tornado's http_server serves its app)."""
    yield from serve_in_process(io_loop, config, listen=False)


@pytest.fixture
def app(server):
    return server.app


@pytest.fixture
def api(app, http_client, base_url):
    """``await api(method, path, body=None, auth=(user, password), headers=None)``: a ``Reply``.

    ``body`` may be bytes, str, or anything JSON-serialisable; ``auth=None`` sends none.
    """
    async def call(method, path, body=None, auth=("admin", PASSWORD), headers=None):
        return await fetch(http_client, base_url, method, path, body, auth, headers)
    return call


@pytest.fixture
def wait_for_status(api):
    """``await wait_for_status(job_id, statuses=FINAL_STATUSES, timeout=60)``: the job once
    its status is one of ``statuses``."""
    async def wait(job_id, statuses=FINAL_STATUSES, timeout=60.0):
        async def reached():
            job = (await api("GET", "/jobs/%s" % job_id)).data[0]
            return job if job["status"] in statuses else None
        return await poll(reached, timeout, "job %s to be %s" % (job_id, "/".join(statuses)))
    return wait


@pytest.fixture
def run_job(api, wait_for_status):
    """Create and start (one request) a job of ``worker`` with ``parameters``; returns the
    started job, or with ``wait=True`` the ended one."""
    async def run(worker, parameters=None, wait=False, timeout=60.0):
        started = await api("POST", "/jobs", {"worker": worker, "parameters": parameters,
                                              "start": True})
        assert started.code == 201, started
        if wait:
            return await wait_for_status(started.data[0]["id"], timeout=timeout)
        return started.data[0]
    return run


@pytest.fixture
def ws_connect(app, http_server, http_port):
    """``await ws_connect(path, auth=(user, password), headers=None)``: an open WebSocket.

    Requests ``http_server`` (pytest-tornado starts nothing for WebSockets otherwise).
    """
    async def connect(path, auth=("admin", PASSWORD), headers=None):
        kwargs = {}
        if auth is not None:
            kwargs.update(auth_username=auth[0], auth_password=auth[1])
        request = tornado.httpclient.HTTPRequest(
            "ws://127.0.0.1:%d%s" % (http_port, path), headers=headers or {},
            request_timeout=60, **kwargs)
        return await tornado.websocket.websocket_connect(request)
    return connect


# --- servers in processes of their own ----------------------------------------------------

@pytest.fixture
def servers(tmp_path):
    """``servers(*args, root=tmp_path, **options)``: start ``run_server.py`` (a
    ``ServerProcess``, see its options) on ``root``; every one, with its supervisor and jobs,
    is killed after the test."""
    started = []

    def start(*args, root=None, **options):
        started.append(ServerProcess(root or tmp_path, *args, **options))
        return started[-1]
    yield start
    for server in started:
        server.discard()


@pytest.fixture(scope="module")
def server_process(tmp_path_factory):
    """One real server for a module of client or command-line tests, with the sample workers,
    ``Lines`` and ``Failing``."""
    root = tmp_path_factory.mktemp("client-server")
    workers = workers_folder(root / "workers", {"Lines": LINES_WORKER,
                                                "Failing": FAILING_WORKER})
    server = ServerProcess(root, "--stop-grace", "2", workers_dir=workers)
    try:
        yield server.wait_ready()
    finally:
        server.discard()


class StandIn(http.server.BaseHTTPRequestHandler):
    """Replies with the status and body its server holds, after its delay."""

    def do_GET(self):
        if self.server.delay:
            self.server.release.wait(self.server.delay)
        self.send_response(self.server.status)
        self.send_header("Content-Type", self.server.content_type)
        self.end_headers()
        self.wfile.write(self.server.body)

    do_PUT = do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    """A server that answers every request the same way (set ``status``, ``body``,
    ``content_type``), or with ``delay`` set only after that long: for the failures a real
    server cannot be made to give on demand (5xx, silence)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.status, server.delay = 503, 0
    server.release = threading.Event()  # set at the end, so no reply waits out its delay
    server.content_type = "application/json"
    server.body = json.dumps({"success": False, "message": "the database is unavailable; "
                              "try again shortly", "total": 0, "data": []}).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
