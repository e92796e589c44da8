"""One server per node name and database (``jobjoker.nodes``): real server processes sharing a
database, and the lease's rules for a holder that is dead, alive, local or on another host."""
import logging
import os
import socket
import subprocess
import time

import pytest

from jobjoker import models
from jobjoker.errors import StartupError
from jobjoker.config import Config
from jobjoker.nodes import NodeLease
from jobjoker.proc import boot_id
from jobjoker.proc import start_time as process_start_time
from tests.support import TICKER_WORKER, Bystander, process_alive, processes_of, until, \
    workers_folder

LEASE_TTL = Config.node_lease_ttl

# --- real servers sharing one database ------------------------------------------------------

@pytest.fixture
def start_server(servers, tmp_path, database_url):
    """``start_server(name, node)``: a real server with its own data dir (``<tmp>/<name>``) on
    this test's database; every one, with its supervisor and jobs, is killed afterwards."""
    workers = workers_folder(tmp_path / "workers", {"Ticker": TICKER_WORKER}, samples=())

    def start(name, node="shared", ready=True):
        root = tmp_path / name
        root.mkdir(exist_ok=True)
        server = servers("--database", database_url, "--node", node, root=root,
                         workers_dir=workers)
        return server.wait_ready() if ready else server
    return start


@pytest.fixture
def rows(database_url):
    """``rows(model)``: every row of a table, read over a connection of the test's own."""
    db = models.make_database(database_url)

    def read(model, **where):
        with db.bind_ctx([model]):
            query = model.select()
            for name, value in where.items():
                query = query.where(getattr(model, name) == value)
            return [row.__data__ for row in query]
    yield read
    db.close()


def start_ticker(server, every=0.02):
    return server.create_job("Ticker", {"count": 100000, "every": every})


def supervisors_of(server):
    """Pids of processes started for this server's run dir (its supervisor and jobs)."""
    return processes_of(server.supervisor_socket)


def test_a_second_server_on_the_same_database_and_node_is_refused_and_touches_nothing(
        start_server, rows):
    first = start_server("first")
    job = start_ticker(first)
    until(lambda: first.job(job["id"])["log_count"] > 3, what="the job to log")
    lease = rows(models.Node)
    assert [(n["name"], n["pid"]) for n in lease] == [("shared", first.process.pid)]
    jobs_before = rows(models.Job)
    users_before = rows(models.User)

    second = start_server("second", ready=False)  # its own data dir, the same database
    assert second.process.wait(timeout=60) == 1
    message = second.stderr
    assert "node 'shared' of this database is held by another JobJoker server" in message
    assert "host %s, pid %d, since %s" % (socket.gethostname(), first.process.pid,
                                          time.strftime("%Y-%m-%d %H:%M", time.localtime(
                                              lease[0]["started"]))) in message
    assert "data dir %s" % first.data_dir in message
    assert "give this one another --node" in message and "Traceback" not in message
    assert not supervisors_of(second)  # it started no supervisor, adopted nothing

    # The first server and its job carry on; nothing in the database changed but the job's
    # own progress.
    assert first.call("GET", "/health").code == 200
    after = {row["id"]: row for row in rows(models.Job)}
    for row in jobs_before:
        assert after[row["id"]]["status"] == "active" and after[row["id"]]["node"] == "shared"
        assert after[row["id"]]["pid"] == row["pid"] and after[row["id"]]["error"] is None
    assert rows(models.User) == users_before
    assert [(n["holder"], n["started"]) for n in rows(models.Node)] == \
        [(lease[0]["holder"], lease[0]["started"])]
    count = first.job(job["id"])["log_count"]
    until(lambda: first.job(job["id"])["log_count"] > count + 3, what="more log")
    assert first.call("PUT", "/jobs/%s/status" % job["id"], "stop").code == 202
    final = first.wait_for_job(job["id"])
    assert final["status"] == "stop"

    assert first.stop() == 0
    assert rows(models.Node) == []  # a clean stop gives the lease back


def test_another_node_name_on_the_same_database_is_allowed(start_server, rows):
    east = start_server("east", node="east")
    west = start_server("west", node="west")
    assert east.call("GET", "/health").data[0]["node"] == "east"
    assert west.call("GET", "/health").data[0]["node"] == "west"
    assert sorted((n["name"], n["pid"]) for n in rows(models.Node)) == [
        ("east", east.process.pid), ("west", west.process.pid)]
    on_east, on_west = start_ticker(east), start_ticker(west)
    assert (west.job(on_east["id"])["node"], east.job(on_west["id"])["node"]) == \
        ("east", "west")
    # Each server controls the jobs of its own node only.
    assert east.call("PUT", "/jobs/%s/status" % on_west["id"], "kill").code == 409
    for server, job in ((east, on_east), (west, on_west)):
        assert server.call("PUT", "/jobs/%s/status" % job["id"], "kill").code == 202
        final = server.wait_for_job(job["id"])
        assert final["status"] == "stop" and not process_alive(job["pid"])
    assert east.stop() == 0 and west.stop() == 0
    assert rows(models.Node) == []


def test_a_server_killed_with_kill_9_is_replaced_at_once_even_from_another_data_dir(
        start_server, rows):
    first = start_server("first")
    first.kill()
    started = time.monotonic()
    second = start_server("second")
    # No waiting for a lease to expire: on this host, a dead pid proves the holder dead.
    assert time.monotonic() - started < LEASE_TTL
    assert [(n["pid"], n["data_dir"]) for n in rows(models.Node)] == [
        (second.process.pid, str(second.data_dir))]
    assert "took over the lease of %s:%d:" % (socket.gethostname(), first.process.pid) \
        in second.stderr
    assert "its pid %d is gone" % first.process.pid in second.stderr
    assert second.stop() == 0


# --- the lease's rules, on a bound database -------------------------------------------------

@pytest.fixture
def bound(database_url):
    db = models.open_database(database_url)
    yield db
    db.close()
    models.database.initialize(None)


@pytest.fixture
def sleeper():
    """A live process that is not a JobJoker server (and tells whether it was signalled)."""
    bystander = Bystander()
    yield bystander
    bystander.close()


def lease_row(**fields):
    now = time.time()
    row = {"name": "n1", "holder": "elsewhere:1:1", "host": socket.gethostname(),
           "boot_id": boot_id(), "pid": 1, "pid_start_time": 1, "started": now - 3600,
           "heartbeat": now, "data_dir": "/srv/old"}
    row.update(fields)
    models.Node.insert(row).execute()
    return row


def holder():
    return models.Node.get(models.Node.name == "n1")


def test_a_free_node_is_taken_and_released(bound, tmp_path):
    lease = NodeLease("n1", tmp_path)
    lease.acquire()
    row = holder()
    assert (row.pid, row.host, row.boot_id, row.data_dir) == (
        os.getpid(), socket.gethostname(), boot_id(), str(tmp_path))
    assert row.pid_start_time == process_start_time(os.getpid())
    lease.release()
    assert models.Node.select().count() == 0


def test_a_live_holder_on_this_host_refuses_with_who_and_where(bound, tmp_path, sleeper):
    before = lease_row(holder="h:%d" % sleeper.pid, pid=sleeper.pid,
                       pid_start_time=process_start_time(sleeper.pid))
    with pytest.raises(StartupError) as refused:
        NodeLease("n1", tmp_path).acquire()
    assert ("node 'n1' of this database is held by another JobJoker server: host %s, pid %d, "
            "since %s, data dir /srv/old; its process is alive"
            % (socket.gethostname(), sleeper.pid, time.strftime(
                "%Y-%m-%d %H:%M:%S %z", time.localtime(before["started"])))
            ) in refused.value.message
    assert holder().__data__ == before


def test_a_dead_holder_on_this_host_is_taken_over(bound, tmp_path, caplog):
    dead = subprocess.Popen(["true"])
    start_time = process_start_time(dead.pid)
    dead.wait()
    lease_row(holder="h:%d" % dead.pid, pid=dead.pid, pid_start_time=start_time)
    with caplog.at_level(logging.WARNING, "jobjoker.nodes"):
        NodeLease("n1", tmp_path).acquire()
    assert holder().pid == os.getpid() and holder().data_dir == str(tmp_path)
    assert "its pid %d is gone" % dead.pid in caplog.text


def test_a_holder_whose_pid_now_belongs_to_another_process_is_taken_over(bound, tmp_path,
                                                                        sleeper, caplog):
    # The recorded start time is not the live process's: the pid was reused.
    lease_row(pid=sleeper.pid, pid_start_time=process_start_time(sleeper.pid) - 100)
    with caplog.at_level(logging.WARNING, "jobjoker.nodes"):
        NodeLease("n1", tmp_path).acquire()
    assert holder().pid == os.getpid()
    assert "now belongs to another process" in caplog.text
    assert sleeper.unsignalled()  # and nobody signalled it


def test_a_holder_from_before_a_reboot_is_taken_over(bound, tmp_path, sleeper):
    lease_row(pid=sleeper.pid, pid_start_time=process_start_time(sleeper.pid),
              boot_id="another-boot")
    NodeLease("n1", tmp_path).acquire()
    assert holder().pid == os.getpid()


def test_a_holder_on_another_host_with_a_fresh_heartbeat_refuses(bound, tmp_path):
    before = lease_row(host="other-host", boot_id="x", pid=4242, heartbeat=time.time() - 5)
    with pytest.raises(StartupError) as refused:
        NodeLease("n1", tmp_path).acquire()
    assert "host other-host, pid 4242" in refused.value.message
    assert "its last heartbeat was 5 s ago" in refused.value.message
    assert holder().__data__ == before


def test_the_lease_ttl_is_the_servers_own(bound, tmp_path):
    lease_row(host="other-host", boot_id="x", pid=4242, heartbeat=time.time() - 8)
    with pytest.raises(StartupError, match="a lease expires after 10 s without one"):
        NodeLease("n1", tmp_path, heartbeat=2, ttl=10).acquire()
    NodeLease("n1", tmp_path, heartbeat=2, ttl=5).acquire()  # 8 s old: dead for this one
    assert holder().pid == os.getpid()


def test_a_holder_on_another_host_with_an_old_heartbeat_is_taken_over(bound, tmp_path, caplog):
    lease_row(host="other-host", boot_id="x", pid=4242, heartbeat=time.time() - LEASE_TTL - 5)
    with caplog.at_level(logging.WARNING, "jobjoker.nodes"):
        NodeLease("n1", tmp_path).acquire()
    assert holder().pid == os.getpid() and holder().host == socket.gethostname()
    assert "its last heartbeat from host other-host was" in caplog.text


def test_the_heartbeat_refreshes_and_a_lost_lease_is_reported_not_stolen_back(bound, tmp_path,
                                                                              caplog):
    lease = NodeLease("n1", tmp_path)
    lease.acquire()
    models.Node.update(heartbeat=0).execute()
    assert lease.beat() is True
    assert time.time() - holder().heartbeat < 5
    # Another server took the node over (say this one was frozen past the TTL).
    models.Node.update(holder="other-host:7:7", host="other-host").execute()
    with caplog.at_level(logging.ERROR, "jobjoker.nodes"):
        assert lease.beat() is False
    assert "lost its lease to other-host:7:7" in caplog.text
    assert holder().holder == "other-host:7:7"
    lease.release()  # deletes only a row it still holds
    assert holder().holder == "other-host:7:7"


def test_a_failed_heartbeat_is_logged_not_raised(bound, tmp_path, caplog):
    lease = NodeLease("n1", tmp_path)
    lease.acquire()
    bound.close()
    models.database.initialize(models.make_database("sqlite:////nonexistent/dir/db.sqlite3"))
    with caplog.at_level(logging.WARNING, "jobjoker.nodes"):
        assert lease.beat() is None
    assert "heartbeat failed" in caplog.text
