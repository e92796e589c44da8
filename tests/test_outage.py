"""Database outages against a real server process on MariaDB and PostgreSQL: a TCP proxy the test
starts (``tests/linkcut.py``) stands between them, and the test cuts the link (every connection
closed, new ones refused) and restores it, or makes it silent (every byte dropped, nothing
closed) and lets new connections through again. Connections that died while idle are replaced
without a failed request, as are those the database closed for being idle (its idle timeout, set
to a second); during an outage requests get a clear 503, the log gets a few lines (not one per
request or attempt, and no traceback); once the link is back, every line a job logged meanwhile
is stored, and a job that ended during the outage keeps its real end time. A job's end whose
commit went through while its answer was lost is recorded once (in this process)."""
import asyncio
import concurrent.futures
import os
import re
import socket
import threading
import time
import urllib.parse

import peewee
import pytest

from jobjoker import dblink, models
from jobjoker.events import EventHub
from jobjoker.outage import Outage
from jobjoker.storage import READERS, Storage
from tests.conftest import MYSQL_URL, scratch_database
from tests.linkcut import LinkProxy
from tests.support import (TICKER_WORKER, poll, process_alive, unavailable, until,
                           workers_folder, wrapped_as_peewee)

OUTAGE_SECONDS = 3.0  # how long the main test holds the link cut (its bounds do not depend on it)
TICKS = 1000  # the chatty job's lines: it logs all through the outage
# At WARNING or above, neither the access log nor the loop-lag watchdog (a busy machine's): the
# outage (2: began, back), the heartbeat (2: failed, beats again), and room for more; one line
# per request or per attempt would be dozens.
MOST_LOG_RECORDS = 6
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) ([\w.]+): ", re.M)


@pytest.fixture(params=[pytest.param("mysql", marks=pytest.mark.mysql), "postgresql"])
def database(request):
    """(URL, host, port) of an empty database of each networked backend."""
    if request.param == "mysql":
        url, problem = request.getfixturevalue("mysql_url")
        if problem:
            unavailable("MySQL at %s is not available: %s" % (MYSQL_URL, problem))
        db = models.make_database(url)
        with db:
            models.drop_all(db)
    else:
        url = scratch_database(request, "postgresql", "jobjoker_outage_%d" % os.getpid())
    parts = urllib.parse.urlsplit(url)
    return url, parts.hostname, parts.port or (3306 if request.param == "mysql" else 5432)


@pytest.fixture
def proxied_server(database, servers, tmp_path):
    """``(server, proxy)``: a server process with the Ticker worker, on ``database`` through a
    link the test can cut."""
    url, host, port = database
    proxy = LinkProxy(host, port)
    workers = workers_folder(tmp_path / "workers", {"Ticker": TICKER_WORKER}, samples=())
    server = servers("--database", proxy.url_for(url), workers_dir=workers).wait_ready()
    yield server, proxy
    server.discard()  # before the proxy: no dead link to log about meanwhile
    proxy.close()


def answered(server, method, path, body=None):
    """The reply, once one is not a 503 (the link may just have come back)."""
    def attempt():
        reply = server.call(method, path, body)
        return reply if reply.code != 503 else None
    return until(attempt, 60, "%s %s to answer" % (method, path))


def ended(server, job_id):
    return until(lambda: (lambda job: job if job["status"] in ("done", "error", "stop")
                          else None)(answered(server, "GET", "/jobs/%s" % job_id).data[0]),
                 120, "job %s to end" % job_id)


def log_of(server, job_id):
    """Every entry of a job's log, page by page."""
    entries = []
    while True:
        page = server.api("GET", "/jobs/%s/log?offset=%d&limit=1000" % (job_id, len(entries)))
        if not page:
            return entries
        entries += page


def records(text):
    """(level, logger) of each log record in ``text``, the server's stderr."""
    return RECORD.findall(text)


@pytest.mark.gen_test(timeout=60)
async def test_idle_connections_the_database_closed_are_replaced_without_an_error(database,
                                                                                   io_loop):
    # What a database's idle timeout does overnight (MariaDB's wait_timeout, PostgreSQL's
    # idle_session_timeout): each thread's connection closed while it had nothing to do.
    url, _, _ = database
    db = models.open_database(url)
    db.close()
    storage = Storage(db, EventHub())
    timeout = "SET SESSION wait_timeout = 1" if url.startswith("mysql") else \
        "SET idle_session_timeout = 1000"
    everyone = threading.Barrier(READERS)

    def set_timeout(barrier=None):
        db.execute_sql(timeout)
        if barrier is not None:
            barrier.wait(30)  # so that each reader thread takes one
    try:
        await asyncio.gather(*(storage.read(set_timeout, everyone) for _ in range(READERS)))
        await storage.call(set_timeout)
        await asyncio.sleep(3)  # the database closes them after 1 s
        for _ in range(2 * READERS):
            assert await storage.read(lambda: db.execute_sql("SELECT 1").fetchone()) == (1,)
        assert await storage.transaction(lambda tx: models.Job.select().count()) == 0
    finally:
        await storage.close()
        models.database.initialize(None)


def test_a_silent_connection_is_logged_at_most_once_a_minute(caplog):
    outage = Outage()
    for _ in range(5):
        outage.silent(30.0, peewee.OperationalError("(2013, 'Lost connection (timed out)')"))
    silences = [r for r in caplog.records if "the link went silent" in r.getMessage()]
    assert len(silences) == 1 and silences[0].levelname == "WARNING", caplog.text
    assert "sent nothing for 30 s" in silences[0].getMessage()
    assert outage.since is None  # a silence alone is no outage: a new connection may work


def test_connections_carry_the_kernels_keepalives(database):
    # An idle connection to a host gone silent is found out by the kernel in about 25 s.
    url, _, _ = database
    db = models.make_database(url)
    with db:
        connection = db.connection()
        if isinstance(db, peewee.MySQLDatabase):
            sock = connection._sock
            found = [sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, option))
                     for option in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT",
                                    "TCP_USER_TIMEOUT")]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        else:
            given = connection.get_dsn_parameters()
            found = [int(given[name]) for name in ("keepalives_idle", "keepalives_interval",
                                                   "keepalives_count", "tcp_user_timeout")]
            assert given["keepalives"] == "1"
    assert found == [dblink.KEEPALIVE_IDLE, dblink.KEEPALIVE_INTERVAL,
                     dblink.KEEPALIVE_COUNT, dblink.TCP_USER_TIMEOUT_MS]


@pytest.mark.mysql
def test_mysql_8s_idle_disconnection_counts_as_a_lost_connection(mysql_url):
    # MySQL 8 tells an idle client it was disconnected (4031) on a socket PyMySQL still thinks
    # open: that is a lost connection too (MariaDB just closes it, as the tests above show).
    import pymysql
    url, problem = mysql_url
    if problem:
        unavailable("MySQL at %s is not available: %s" % (MYSQL_URL, problem))
    db = models.make_database(url)
    with db:
        assert models.connection_gone(db, wrapped_as_peewee(pymysql.err.OperationalError(
            4031, "The client was disconnected by the server because of inactivity.")))
        assert not models.connection_gone(db, wrapped_as_peewee(pymysql.err.OperationalError(
            1205, "Lock wait timeout exceeded; try restarting transaction")))
        assert not models.connection_gone(db, peewee.IntegrityError("Duplicate entry"))


def test_connections_that_died_while_idle_are_replaced_without_a_failed_request(
        proxied_server):
    # Issue 14: after PostgreSQL's connection dropped and came back, requests failed with
    # "connection already closed". Each thread's connection dies while it waits for work (as
    # when the database restarts at night): the first work of each must not fail for it.
    server, proxy = proxied_server
    assert server.call("POST", "/jobs", {"worker": "Ticker"}).code == 201  # the writer's
    with concurrent.futures.ThreadPoolExecutor(6) as pool:  # every reader's
        assert {r.code for r in pool.map(lambda _: server.call("GET", "/jobs"),
                                         range(24))} == {200}
    proxy.cut()
    proxy.restore()
    created = server.call("POST", "/jobs", {"worker": "Ticker"})
    assert created.code == 201, created
    replies = [server.call("GET", "/jobs") for _ in range(12)]
    assert [r.code for r in replies] == [200] * 12, replies


def test_an_outage_answers_503_logs_a_few_lines_and_loses_nothing(proxied_server, tmp_path):
    server, proxy = proxied_server
    gate = tmp_path / "gate"
    chatty = server.create_job("Ticker", {"count": TICKS, "every": 0.01})
    # It ticks 3 times, then waits for the gate, opened during the outage, and ends there.
    short = server.create_job("Ticker", {"count": 5, "every": 0.01, "pause_at": 3,
                                         "gate": str(gate)})
    until(lambda: len(server.messages(short["id"])) >= 3 and
          len(server.messages(chatty["id"])) >= 3, what="both jobs to log")
    logged_before = len(server.stderr)

    proxy.cut()
    cut_at = time.time()
    gate.touch()
    until(lambda: not process_alive(short["pid"]), what="the short job to end in the outage")
    ended_by = time.time()  # its process was reaped (its exit recorded) by now
    for _ in range(10):
        reply = server.call("GET", "/jobs")
        assert reply.code == 503, reply
        assert reply.data == [] and reply.body.startswith(b'{"success": false')
        assert reply.json["message"].startswith("the database is unavailable"), reply
        assert reply.headers.get("Retry-After") == "1"
    health = server.call("GET", "/health")  # signed in, but the database cannot check it
    assert health.code == 503, health
    assert "its database does not answer" in health.json["message"], health
    time.sleep(max(0.0, cut_at + OUTAGE_SECONDS - time.time()))  # the outage, held
    proxy.restore()
    restored_at = time.time()

    assert server.call("GET", "/jobs").code == 200  # at once: no restart, no failed first try
    again = server.create_job("Ticker", {"count": 3, "every": 0.01})
    assert ended(server, again["id"])["status"] == "done"
    assert ended(server, chatty["id"])["status"] == "done"
    entries = log_of(server, chatty["id"])
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    ticks = [e["message"] for e in entries if e["message"].startswith("tick ")]
    assert ticks == ["tick %d" % i for i in range(TICKS)]  # nothing lost, nothing twice

    # Its end was stored after the outage, with the time the process ended.
    job = ended(server, short["id"])
    assert job["status"] == "done"
    assert job["starttime"] < job["stoptime"] <= ended_by < restored_at, job
    closing = server.messages(short["id"])[-1]
    assert closing.startswith("ENDED done") and \
        float(closing.split(" after ")[1].split(" s")[0]) <= ended_by - job["starttime"] + 0.001

    # A few lines about it, none a traceback; the first says what happened, one says it ended.
    log = server.stderr[logged_before:]
    assert "Traceback" not in log
    lines = [(level, name) for level, name in records(log)
             if level in ("WARNING", "ERROR", "CRITICAL") and
             name not in ("tornado.access", "jobjoker.looplag")]
    assert len(lines) <= MOST_LOG_RECORDS, log
    assert "ERROR jobjoker.storage: the database is unavailable" in log
    assert re.search(r"the database is back after [\d.]+ s", log), log


# A link gone silent is given up on after jobjoker.dblink.REPLY_SECONDS (30 s), then work is
# retried with a back-off of at most 16 s: a bound many times that, which only a thread that
# never gives up (the code before: until the kernel's TCP timeout, here never) can reach.
SILENT_LINK_SECONDS = 240


@pytest.mark.timeout(SILENT_LINK_SECONDS + 120)
def test_a_link_gone_silent_is_given_up_on_and_nothing_is_lost(proxied_server):
    # Issue 14: a link that goes silent without closing (a partition, a firewall that lost its
    # state) held a storage thread in a socket read until the kernel's TCP timeout: writes and
    # ingestion stopped. The proxy drops every byte of the open connections and of those made
    # meanwhile, closing nothing; once restored, new connections work and the old stay silent.
    server, proxy = proxied_server
    chatty = server.create_job("Ticker", {"count": TICKS, "every": 0.01})
    until(lambda: len(server.messages(chatty["id"])) >= 3, what="the job to log")
    logged_before = len(server.stderr)

    proxy.blackhole()
    # Requests wait ANSWER_SECONDS for a thread stuck on the silent link, then get their 503.
    until(lambda: server.call("GET", "/jobs").code == 503, what="a 503 in the blackhole")
    proxy.restore()

    def stored():
        reply = server.call("GET", "/jobs/%s" % chatty["id"])
        return reply.code == 200 and reply.data[0]["status"] == "done"
    until(stored, SILENT_LINK_SECONDS, "the job's end stored after the link came back")
    entries = log_of(server, chatty["id"])
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    ticks = [e["message"] for e in entries if e["message"].startswith("tick ")]
    assert ticks == ["tick %d" % i for i in range(TICKS)]  # nothing lost, nothing twice
    again = server.create_job("Ticker", {"count": 3, "every": 0.01})
    assert ended(server, again["id"])["status"] == "done"
    log = server.stderr[logged_before:]
    assert "Traceback" not in log, log
    assert "WARNING jobjoker.storage: a database connection sent nothing for" in log, log


@pytest.mark.gen_test(timeout=60)
async def test_a_job_end_whose_commit_went_through_unanswered_is_recorded_once(
        server, run_job, api, monkeypatch, caplog):
    # The link cut as a job's end was committed: the retry must not add a second ENDED entry
    # (nor log a traceback for a transition the first attempt made).
    database, record_end = server.database, server.processes._record_end
    commit, ending, lost = database.commit, [], []

    def record_the_end(*args):
        ending.append(True)
        return record_end(*args)

    def commit_and_lose_the_answer():
        commit()
        if ending and not lost:
            lost.append(True)
            raise peewee.OperationalError("lost the connection to the database")
    monkeypatch.setattr(server.processes, "_record_end", record_the_end)
    monkeypatch.setattr(database, "commit", commit_and_lose_the_answer)
    job = await run_job("Foobar", wait=True)
    await poll(lambda: len(ending) >= 2, what="the end recorded again")
    log = [e["message"] for e in (await api("GET", "/jobs/%s/log" % job["id"])).data]
    assert lost and [m for m in log if m.startswith("ENDED")] == [log[-1]], log
    assert "could not record its end" not in caplog.text
