"""``jobjoker.client`` against a real server process: every method, the mapping of refusals to
exceptions, and ``follow`` from the start, from an offset, of an ended job, across a server
restart and across a drop for slowness, each entry exactly once and in order.

The client is synchronous, so these tests are plain functions talking to ``run_server.py`` in its
own process (as users run it); one server serves the whole module, and the tests that restart or
reconfigure a server start their own. Only 5xx replies and a server that never answers come from a
stand-in HTTP server: the real one cannot be made to fail on demand.
"""
import asyncio
import logging
import threading
import time

import pytest

from jobjoker.client import AuthError, BadRequestError, Client, ConflictError, \
    ConnectionFailed, Event, NotFoundError, ServerError
from tests.support import FAILING_WORKER, HELLO_WORKER, LINES_WORKER, PASSWORD, \
    ServerProcess, free_port, until, wait_for_end, workers_folder


def start_server(tmp_path, *options):
    """``run_server.py`` in its own process on ``tmp_path``, with the sample workers and the
    test workers, ready to answer."""
    workers = workers_folder(tmp_path / "workers", {"Lines": LINES_WORKER,
                                                    "Failing": FAILING_WORKER})
    return ServerProcess(tmp_path, "--stop-grace", "2", *options,
                         workers_dir=workers).wait_ready()


@pytest.fixture
def client(server_process):
    return Client(server_process.url, "admin", PASSWORD)


def check_complete(events, count, status="done"):
    """``events`` of a Lines job followed from 0: status first, every entry once with
    contiguous seqs, the end last."""
    assert events[0].kind == "status"
    assert events[-1] == Event("end", status=status)
    for stream in ("log", "response"):
        entries = [e for e in events if e.kind == stream]
        assert [e.seq for e in entries] == list(range(len(entries))), stream
    log = [e.message.rstrip(".") for e in events if e.kind == "log"]
    assert log[0].startswith("STARTED") and log[-1].startswith("ENDED %s" % status)
    assert log[1:-1] == ["line %d " % i for i in range(count)]
    responses = [e.message for e in events if e.kind == "response"]
    assert responses == ["response %d" % i for i in range(0, count, 1000)]
    statuses = [e.status for e in events if e.kind == "status"]
    assert statuses[-1] == status


class Seen(logging.Handler):
    """Sets ``event`` once a record of ``logger`` contains ``text``."""

    def __init__(self, logger, text):
        super().__init__()
        self.text = text
        self.event = threading.Event()
        self.logger = logging.getLogger(logger)

    def emit(self, record):
        if self.text in record.getMessage():
            self.event.set()

    def __enter__(self):
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)


# --- configuration ------------------------------------------------------------------------

def test_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("JOBJOKER_URL", "http://jobs.example:9000/")
    monkeypatch.setenv("JOBJOKER_USER", "robot")
    monkeypatch.setenv("JOBJOKER_PASSWORD", "secret")
    monkeypatch.setenv("JOBJOKER_TOKEN", "jj_id_secret")
    client = Client()
    assert (client.url, client.username, client.password, client.token) == (
        "http://jobs.example:9000", "robot", "secret", "jj_id_secret")
    assert "secret" not in repr(client)
    assert client._headers() == {"Authorization": "Bearer jj_id_secret"}  # a token wins
    explicit = Client("https://other:1", "me", "pw")  # given credentials beat the environment
    assert (explicit.url, explicit.password, explicit.token) == ("https://other:1", "pw", None)
    assert explicit._headers() == {"Authorization": "Basic bWU6cHc="}
    for name in ("JOBJOKER_URL", "JOBJOKER_USER", "JOBJOKER_PASSWORD", "JOBJOKER_TOKEN"):
        monkeypatch.setenv(name, "")  # empty counts as unset
    client = Client()
    assert (client.url, client.username, client.password, client.token) == (
        "http://127.0.0.1:8080", "admin", None, None)
    assert client._headers() == {}
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        Client("127.0.0.1:8080")



def test_every_public_name_is_importable_from_jobjoker_client():
    """Transport, errors and following live in modules of their own; ``jobjoker.client`` stays
    the one import for scripts (docs/client.md) and hands out the same objects."""
    from jobjoker import client, client_follow, client_transport
    namespace = {}
    exec("from jobjoker.client import *", namespace)  # fails on a name of __all__ not there
    for name in client.__all__:
        home = client_follow if name == "Event" else client if name == "Client" \
            else client_transport
        assert namespace[name] is getattr(home, name), name
    assert {"Client", "Event", "ClientError", "ConnectionFailed", "UntrustedCertificate",
            "ConflictError", "NotFoundError", "CA_BUNDLE_VARIABLE"} <= set(client.__all__)


# --- workers ------------------------------------------------------------------------------

def test_workers_push_read_and_delete(client):
    names = {w["name"] for w in client.workers()}
    assert {"Foobar", "TestWorker", "Lines", "Failing"} <= names
    summary = client.push_worker("Hello", HELLO_WORKER)
    assert summary["name"] == "Hello" and summary["description"] == "Says hello."
    assert client.worker("Hello") == summary
    assert client.worker_code("Hello") == HELLO_WORKER
    replaced = client.push_worker("Hello", HELLO_WORKER.replace("Says hello.", "Greets.").encode())
    assert replaced["description"] == "Greets." and replaced["hash"] != summary["hash"]
    assert client.delete_worker("Hello")["name"] == "Hello"
    with pytest.raises(NotFoundError) as caught:
        client.worker("Hello")
    assert caught.value.status == 404 and caught.value.message == "no worker named 'Hello'"


def test_invalid_worker_code_and_names_are_refused_with_the_servers_message(client):
    with pytest.raises(BadRequestError) as caught:
        client.push_worker("Broken", "class Broken(:\n")
    assert caught.value.status == 422 and caught.value.message.startswith("line 1")
    with pytest.raises(BadRequestError) as caught:
        client.worker("../etc")  # escaped, so it reaches the name check, not another route
    assert caught.value.status == 400 and "invalid worker name '../etc'" in caught.value.message


# --- jobs ---------------------------------------------------------------------------------

def test_jobs_create_list_start_read_append_and_delete(client):
    job = client.create_job("TestWorker", {"count": 2, "sleep": 0.05})
    assert job["status"] == "idle" and job["parameters"] == {"count": 2, "sleep": 0.05}
    assert client.job(job["id"]) == dict(job, result=None)  # GET /jobs/ID adds the result
    idle = client.jobs(status="idle", worker="TestWorker", limit=1000)
    assert job["id"] in [j["id"] for j in idle]
    started = client.start(job["id"])
    assert started["status"] == "active" and started["pid"]
    final = wait_for_end(client, job["id"])
    assert final["status"] == "done"
    log = client.log(job["id"])
    assert [e["message"] for e in log[1:3]] == ["log 0", "log 1"]
    assert client.log(job["id"], offset=2, limit=1) == log[2:3]
    assert [e["message"] for e in client.response(job["id"])] == ["response 0", "response 1"]
    appended = client.append_log(job["id"], "a note\nfrom outside")
    assert appended["seq"] == len(log) and appended["message"] == "a note\nfrom outside"
    assert client.append_response(job["id"], "extra")["seq"] == 2
    assert client.log(job["id"], offset=len(log))[0]["message"] == "a note\nfrom outside"
    assert [j["id"] for j in client.jobs(worker="TestWorker", limit=1)] == [job["id"]]
    assert client.delete_job(job["id"])["id"] == job["id"]
    with pytest.raises(NotFoundError):
        client.job(job["id"])


def test_stop_and_kill(client):
    stopping = client.start(client.create_job("TestWorker", {"count": 100, "sleep": 5})["id"])
    killed = client.start(client.create_job("TestWorker", {"count": 100, "sleep": 5})["id"])
    # A signal sent before the job's process has made its own group can be lost (reported).
    for job in (stopping, killed):  # its first entry: its process then leads its own group
        until(lambda job=job: client.log(job["id"], limit=1), what="job %s to log" % job["id"])
    assert client.stop(stopping["id"])["stop_requested"] is not None
    assert client.kill(killed["id"])["stop_requested"] is not None
    assert wait_for_end(client, stopping["id"])["status"] == "stop"
    final = wait_for_end(client, killed["id"])
    assert final["status"] == "stop" and final["exit_signal"] == 9


def test_refusals_raise_the_matching_error_with_the_servers_message(client, server_process):
    job = client.run("Foobar", follow=False)
    wait_for_end(client, job["id"])
    with pytest.raises(ConflictError) as caught:
        client.start(job["id"])
    assert caught.value.status == 409 and "only an idle job can start" in caught.value.message
    with pytest.raises(ConflictError):
        client.stop(job["id"])
    with pytest.raises(NotFoundError, match="no worker named 'Nope'"):
        client.create_job("Nope")
    with pytest.raises(NotFoundError, match="no job with id 'nope'"):
        client.kill("nope")
    with pytest.raises(BadRequestError) as caught:
        client.jobs(status="running")
    assert caught.value.status == 400 and "unknown status 'running'" in caught.value.message
    with pytest.raises(BadRequestError) as caught:
        client.create_job("Foobar", [1, 2])
    assert caught.value.status == 422
    for password in ("wrong", None):
        with pytest.raises(AuthError) as caught:
            Client(server_process.url, "admin", password).workers()
        assert caught.value.status == 401
        assert caught.value.message.startswith("authentication required")


def test_an_unreachable_server_raises_connection_failed(caplog):
    url = "http://127.0.0.1:%d" % free_port()
    with pytest.raises(ConnectionFailed) as caught:
        Client(url, "admin", PASSWORD).jobs()
    assert caught.value.status is None and "cannot reach the JobJoker server at %s" % url \
        in caught.value.message
    with caplog.at_level(logging.WARNING, logger="jobjoker.client"), \
            pytest.raises(ConnectionFailed, match="gave up following after 3 failed attempts"):
        list(Client(url, "admin", PASSWORD).follow("some-job", max_retries=2))
    # It backed off 0.1 s, then 0.2 s (what it waits, not how long the machine took).
    waits = [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records
             if "resuming at" in r.getMessage()]
    assert waits == ["0.1 s", "0.2 s"], waits


def test_server_failures_raise_server_error_and_silence_raises_connection_failed(stand_in):
    client = Client("http://127.0.0.1:%d" % stand_in.server_address[1], "admin", "pw",
                    timeout=1)
    with pytest.raises(ServerError) as caught:
        client.start("a-job")
    assert caught.value.status == 503
    assert caught.value.message == "the database is unavailable; try again shortly"
    with pytest.raises(ServerError, match="gave up following after 2 failed attempts"):
        list(client.follow("a-job", max_retries=1))  # a 503 is worth retrying
    stand_in.status, stand_in.body, stand_in.content_type = 502, b"<html>", "text/html"
    with pytest.raises(ServerError) as caught:
        client.workers()
    assert caught.value.status == 502 and caught.value.message == "HTTP 502 Bad Gateway"
    stand_in.delay = 30  # silence: no answer within the client's timeout of 1 s
    with pytest.raises(ConnectionFailed, match="timed out"):
        client.workers()


# --- follow -------------------------------------------------------------------------------

def test_follow_from_the_start_yields_status_entries_live_then_end(client):
    job = client.create_job("TestWorker", {"count": 3, "sleep": 0.2})
    events = client.follow(job["id"])
    first = next(events)  # connected before the start: everything arrives live
    assert first.kind == "status" and first.status == "idle" and first.job["id"] == job["id"]
    client.start(job["id"])
    rest = list(events)
    log = [(e.seq, e.message) for e in rest if e.kind == "log"]
    assert log[0][1].startswith("STARTED") and log[-1][1].startswith("ENDED done")
    assert log[1:-1] == [(1, "log 0"), (2, "log 1"), (3, "log 2")]
    assert [(e.seq, e.message) for e in rest if e.kind == "response"] == [
        (i, "response %d" % i) for i in range(3)]
    assert all(isinstance(e.time, float) for e in rest if e.kind in ("log", "response"))
    statuses = [e.status for e in rest if e.kind == "status"]
    assert statuses[0] == "active" and statuses[-1] == "done"
    assert rest[-1] == Event("end", status="done")
    assert rest[-1].to_dict() == {"kind": "end", "status": "done"}


def test_follow_of_an_ended_job_gives_the_backlog_then_end_from_any_offset(client):
    job = client.run("Lines", {"count": 3000})
    assert job["status"] == "done" and job["log_count"] == 3002
    check_complete(list(client.follow(job["id"])), 3000)
    events = list(client.follow(job["id"], log_from=2500, response_from=2))
    assert [e.kind for e in events[:1]] == ["status"] and events[-1].kind == "end"
    log = [e for e in events if e.kind == "log"]
    assert [e.seq for e in log] == list(range(2500, 3002))
    assert log[0].message == "line 2499 " and log[-1].message.startswith("ENDED done")
    assert [e.message for e in events if e.kind == "response"] == ["response 2000"]
    beyond = list(client.follow(job["id"], log_from=10 ** 6, response_from=10 ** 6))
    assert [e.kind for e in beyond] == ["status", "end"]


def test_follow_gets_a_huge_entry_as_consecutive_pieces(client):
    job = client.run("Foobar")
    start = client.job(job["id"])["log_count"]
    big = ["%d" % i + "x" * 4_000_000 for i in range(3)]
    for message in big:
        client.append_log(job["id"], message)
    # Each is stored as entries of at most 64 KiB; a follower gets them in order.
    log = [e.message for e in client.follow(job["id"], log_from=start) if e.kind == "log"]
    assert len(log) > 3 * 4_000_000 // 65536 and max(map(len, log)) <= 65536
    assert "".join(log) == "".join(big)


def test_follow_of_a_job_deleted_meanwhile_raises_not_found(client):
    job = client.create_job("Foobar")
    events = client.follow(job["id"])
    assert next(events).status == "idle"
    client.delete_job(job["id"])
    with pytest.raises(NotFoundError, match="no job with id"):
        next(events)  # the server closed the stream; the reconnect finds no job


def test_inside_an_asyncio_program_follow_runs_in_a_thread(client):
    job = client.run("Foobar")

    async def main():
        with pytest.raises(RuntimeError, match="call it from a thread"):
            next(client.follow(job["id"]))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: list(client.follow(job["id"])))
    events = asyncio.run(main())
    assert [e.message for e in events if e.kind == "log"][1] == "foobar"
    assert events[-1] == Event("end", status="done")


def test_run_and_wait_return_the_final_job(client):
    done = client.run("TestWorker", {"count": 2, "sleep": 0.05})
    assert done["status"] == "done" and done["log_count"] == 4
    assert client.wait(done["id"]) == client.job(done["id"])  # an ended job: at once
    failed = client.run("Failing")
    assert failed["status"] == "error" and "ValueError: bad input" in failed["error"]
    started = client.run("TestWorker", {"count": 1, "sleep": 0.05}, follow=False)
    assert started["status"] == "active"


def test_follow_resumes_across_a_server_restart_without_loss_or_duplicate(tmp_path, caplog):
    server = start_server(tmp_path)
    try:
        client = Client(server.url, "admin", PASSWORD)
        gate = tmp_path / "gate"
        job = client.create_job("Lines", {"count": 20000, "pause_at": 10000,
                                          "gate": str(gate)})
        client.start(job["id"])
        following = client.follow(job["id"])
        events = []
        for event in following:
            events.append(event)
            if event.kind == "log" and event.seq == 5000:
                break
        assert server.stop() == 0  # SIGTERM: the job keeps running without its server
        gate.write_text("go")  # ... and logs the rest while no server is there

        def restart():  # once the follower has found nobody there and backs off
            if found_nobody.event.wait(120):
                server.start().wait_ready()
        restarting = threading.Thread(target=restart)
        with caplog.at_level(logging.WARNING, logger="jobjoker.client"), \
                Seen("jobjoker.client", "cannot reach") as found_nobody:
            restarting.start()
            events += list(following)
        restarting.join()
        check_complete(events, 20000)
        drops = [r.getMessage() for r in caplog.records if "resuming at" in r.getMessage()]
        assert any("cannot reach" in message for message in drops), drops  # it had to retry
    finally:
        server.discard()


def test_follow_resumes_after_the_server_drops_it_as_too_slow(tmp_path, caplog):
    server = start_server(tmp_path, "--stream-stall-timeout", "1",
                          "--stream-buffer-bytes", "65536")
    try:
        client = Client(server.url, "admin", PASSWORD)
        # ~16 MB of backlog: more than the socket buffers hold while the reader dawdles.
        job = client.start(client.create_job("Lines", {"count": 40000, "width": 400})["id"])
        assert wait_for_end(client, job["id"])["status"] == "done"
        events, pause = [], 1

        def drops_so_far():
            return [r.getMessage() for r in caplog.records if "resuming at" in r.getMessage()]
        with caplog.at_level(logging.WARNING, logger="jobjoker.client"):
            for event in client.follow(job["id"]):
                events.append(event)
                if len(events) % 2000 == 2 and not drops_so_far():
                    # The reader stops reading: the behaviour under test. The server drops it
                    # once a batch has waited over the stall timeout (1 s), at its next sweep
                    # (one a second), late on a busy machine; the close frame then waits behind
                    # what the socket buffers hold, and Tornado cuts a connection whose close
                    # goes unanswered for 5 s. So until the drop comes, each pause is a second
                    # longer than the last: the first one past the drop ends well inside that.
                    pause += 1
                    time.sleep(pause)
        check_complete(events, 40000)
        drops = drops_so_far()
        assert drops and all("code 1013: subscriber too slow" in message
                             for message in drops), drops
    finally:
        server.discard()
