"""The supervisor's side of job control (protocol 6), spoken to over its socket: a job's main
process stopped or continued by any signal is pushed as ``stopped`` / ``continued`` and told in
``status``; an exit record carries the process's CPU time and peak memory (``wait4``)."""
import json
import os
import signal

import pytest

from jobjoker import proc
from jobjoker.supervisor import PROTOCOL
from tests.support import until
from tests.test_supervisor import running_supervisor

# Holds 64 MiB and burns some CPU, then waits for its gate.
BUSY = '''import os, time
from jobjoker import Worker


class Busy(Worker):
    def run(self):
        ballast = bytearray(64 * 1024 * 1024)
        for i in range(0, len(ballast), 4096):
            ballast[i] = 1  # touched: resident
        total = 0
        for i in range(2_000_000):
            total += i
        while not os.path.exists(self.params["gate"]):
            time.sleep(0.02)
'''


@pytest.fixture
def supervisor(tmp_path):
    with running_supervisor(tmp_path / "supervisor.log", tmp_path / "sock") as (_, connection):
        yield connection


def event_of(connection, kind, job_id):
    while True:
        for event in connection.events:
            if event["event"] == kind and event["job_id"] == job_id:
                connection.events.remove(event)
                return event
        connection.read()


def test_stops_and_continuations_are_told_and_an_exit_carries_its_resource_use(supervisor,
                                                                               tmp_path):
    connection = supervisor
    assert connection.request("ping")["protocol"] == PROTOCOL == 6
    worker = tmp_path / "Busy.py"
    worker.write_text(BUSY)
    gate = tmp_path / "gate"
    job_dir = tmp_path / "jobs" / "j1"
    started = connection.request("start", spec={
        "job_id": "j1", "worker": "Busy", "worker_file": str(worker),
        "params": {"gate": str(gate)}, "job_dir": str(job_dir)})
    assert started["ok"], started
    pid = started["pid"]

    os.kill(pid, signal.SIGSTOP)  # from outside: its parent sees it all the same
    stopped = event_of(connection, "stopped", "j1")
    assert stopped == {"event": "stopped", "job_id": "j1", "pid": pid,
                       "signal": signal.SIGSTOP}
    assert proc.state(pid) == "T"
    [running] = connection.request("status")["running"]
    assert running["stopped"] == signal.SIGSTOP
    os.killpg(pid, signal.SIGCONT)
    assert event_of(connection, "continued", "j1") == {"event": "continued", "job_id": "j1",
                                                       "pid": pid}
    [running] = connection.request("status")["running"]
    assert running["stopped"] is None

    gate.touch()
    ended = event_of(connection, "exit", "j1")
    assert ended["returncode"] == 0, ended
    assert isinstance(ended["cpu_seconds"], float) and ended["cpu_seconds"] > 0
    assert isinstance(ended["max_rss_bytes"], int) and ended["max_rss_bytes"] >= 64 * 1024 * 1024
    until(lambda: (job_dir / "exit.json").exists(), what="the exit record")
    record = json.loads((job_dir / "exit.json").read_text())
    assert record["cpu_seconds"] == ended["cpu_seconds"]
    assert record["max_rss_bytes"] == ended["max_rss_bytes"]
