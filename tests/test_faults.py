"""Faults against real server processes: the server SIGKILLed with jobs running, a stop in
progress when it dies, and a pid reused by a stranger while it was away."""
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from jobjoker.supervisor_client import socket_path_for
from tests.conftest import kill_leftovers, process_alive
from tests.test_server_process import ServerProcess, request

AUTH = ("admin", "fault-test-password")
TICKER = '''import time
from jobjoker import Worker


class Ticker(Worker):
    """Logs tick 0, tick 1, ... every `every` seconds, `count` times, while active."""

    def run(self):
        for i in range(self.params.get("count", 100)):
            if not self.is_active():
                return
            self.log("tick %d" % i)
            time.sleep(self.params.get("every", 0.02))
        self.response("finished")
'''
STUBBORN = '''import signal, time
from jobjoker import Worker


class Stubborn(Worker):
    def run(self):
        signal.signal(signal.SIGTERM, lambda *a: self.log("ignoring SIGTERM"))
        self.log("ready")
        while True:
            time.sleep(0.05)
'''


@pytest.fixture
def fleet(tmp_path):
    """Start servers on one data dir and workers dir; everything is killed afterwards."""
    workers = tmp_path / "workers"
    workers.mkdir()
    (workers / "Ticker.py").write_text(TICKER)
    (workers / "Stubborn.py").write_text(STUBBORN)
    started = []

    def start(*args):
        server = ServerProcess(tmp_path, env={"JOBJOKER_ADMIN_PASSWORD": AUTH[1]},
                               args=("--workers-dir", str(workers), *args))
        started.append(server)
        return server.wait_ready()
    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    kill_leftovers(socket_path_for(str(tmp_path / "data" / "run")))


def call(server, method, path, body=None):
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
    return request(server.port, path, method, body, AUTH)


def start_job(server, worker, parameters):
    status, body = call(server, "POST", "/jobs", {"worker": worker, "parameters": parameters})
    assert status == 201, body
    job_id = body["data"][0]["id"]
    status, body = call(server, "PUT", "/jobs/%s/status" % job_id, "start")
    assert status == 200, body
    return body["data"][0]


def job(server, job_id):
    return call(server, "GET", "/jobs/%s" % job_id)[1]["data"][0]


def log(server, job_id):
    return [e["message"] for e in call(server, "GET", "/jobs/%s/log?limit=100000"
                                       % job_id)[1]["data"]]


def wait(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(0.05)


def test_kill_9_of_the_server_with_twenty_jobs_running_then_restart(fleet):
    first = fleet()
    jobs = [start_job(first, "Ticker", {"count": 150, "every": 0.02}) for _ in range(20)]
    wait(lambda: all(len(log(first, j["id"])) > 5 for j in jobs), what="every job to tick")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    assert all(process_alive(j["pid"]) for j in jobs)  # the jobs did not notice

    second = fleet()
    stopped = jobs[:10]
    for j in stopped:  # stops work on re-adopted jobs
        status, body = call(second, "PUT", "/jobs/%s/status" % j["id"], "stop")
        assert status == 202, body
    for j in jobs:
        final = wait(lambda: job(second, j["id"])["status"] != "active" and job(
            second, j["id"]), timeout=60, what="job %s to end" % j["id"])
        entries = log(second, j["id"])
        ticks = [m for m in entries if m.startswith("tick ")]
        # Every entry once and in order, across the crash: nothing lost, nothing doubled.
        assert ticks == ["tick %d" % i for i in range(len(ticks))], j["id"]
        assert entries[0].startswith("STARTED") and entries[-1].startswith("ENDED")
        if j in stopped:
            assert final["status"] == "stop", final
        else:
            assert final["status"] == "done" and len(ticks) == 150, (final, len(ticks))
        assert not process_alive(j["pid"])


def test_a_stop_interrupted_by_a_server_crash_still_escalates_on_time(fleet):
    first = fleet("--stop-grace", "3")
    started = start_job(first, "Stubborn", {})
    wait(lambda: "ready" in log(first, started["id"]), what="the job to be ready")
    assert call(first, "PUT", "/jobs/%s/status" % started["id"], "stop")[0] == 202
    wait(lambda: "ignoring SIGTERM" in log(first, started["id"]), what="the SIGTERM")
    first.process.send_signal(signal.SIGKILL)  # mid-grace: the timer dies with the server
    first.process.wait()

    second = fleet("--stop-grace", "3")
    up = time.time()
    final = wait(lambda: job(second, started["id"])["status"] != "active" and job(
        second, started["id"]), timeout=30, what="the escalation")
    assert final["status"] == "stop" and final["exit_signal"] == signal.SIGKILL, final
    deadline = final["stop_requested"] + 3
    # Never before the deadline; and soon after it (or after the new server came up, if it
    # came up later): the deadline was kept across the crash, not forgotten or restarted.
    assert deadline - 0.1 <= final["stoptime"] <= max(deadline, up) + 2.0, (final, up)
    assert not process_alive(started["pid"])


def test_a_pid_reused_by_a_stranger_is_never_signalled(fleet, tmp_path):
    first = fleet()
    started = start_job(first, "Ticker", {"count": 100000, "every": 0.05})
    supervisor = socket_path_for(str(tmp_path / "data" / "run"))
    assert first.stop() == 0  # the server goes; the job stays
    # Then the supervisor and the job die while no server watches: nothing records the end.
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if supervisor.encode() in f.read() and pid != started["pid"]:
                    os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass
    os.killpg(started["pid"], signal.SIGKILL)
    wait(lambda: not process_alive(started["pid"]), what="the job to die")
    # A stranger now holds the job's pid (simulated: the row is pointed at a decoy process,
    # as the kernel would do by reusing the number; its start time differs, as it would).
    decoy = subprocess.Popen(["sleep", "60"])
    try:
        database = sqlite3.connect(str(tmp_path / "data" / "jobjoker.sqlite3"))
        with database:
            database.execute("UPDATE job SET pid = ? WHERE id = ?", (decoy.pid, started["id"]))
        database.close()

        second = fleet()
        final = job(second, started["id"])
        assert final["status"] == "error" and "lost while the server was away" in final["error"]
        assert call(second, "PUT", "/jobs/%s/status" % started["id"], "kill")[0] == 409
        time.sleep(0.5)
        assert decoy.poll() is None and process_alive(decoy.pid)  # the stranger lives on
    finally:
        decoy.kill()
        decoy.wait()
