"""The supervisor on its own, spoken to over its socket: no I/O error stops it. A full disk (where
its log is too) refuses a job's exit record; it goes on serving, tells the exit in its event and
in ``status``, and writes the record once there is room."""
import contextlib
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.support import ROOT, kill_leftovers, unavailable, until

WAITS = '''import os, time
from jobjoker import Worker


class Waits(Worker):
    def run(self):
        while not os.path.exists(self.params["gate"]):
            time.sleep(0.02)
        os._exit(0)  # at once: the room the runner keeps for its last words stays taken
'''


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs of its own (root only; CI runs as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                              str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        unavailable("a full disk is tested on a tmpfs, which needs root to mount: %s"
                    % mounted.stderr.strip())
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(path):
    """Fill the file system of ``path`` to the last byte; returns the ballast file."""
    ballast = path / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast


class Connection:
    """Newline-delimited JSON over the supervisor's socket; events are kept apart."""

    def __init__(self, path):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        until(lambda: self.socket.connect_ex(str(path)) == 0, what="the supervisor's socket")
        self.socket.settimeout(30)
        self.reader = self.socket.makefile("rb")
        self.events = []
        self.next_id = 0

    def request(self, op, **fields):
        self.next_id += 1
        self.socket.sendall(json.dumps(dict(fields, id=self.next_id, op=op)).encode() + b"\n")
        while True:
            message = self.read()
            if message.get("id") == self.next_id:
                return message

    def read(self):
        line = self.reader.readline()
        assert line, "the supervisor closed the connection (did it die?)"
        message = json.loads(line)
        if "event" in message:
            self.events.append(message)
        return message

    def exit_of(self, job_id):
        while True:
            for event in self.events:
                if event["job_id"] == job_id:
                    return event
            self.read()


@contextlib.contextmanager
def running_supervisor(log_path, socket_path):
    """A supervisor on ``socket_path`` whose stdout and stderr append to ``log_path``:
    ``(process, connection)``; shut down, with its jobs, however the test ended."""
    log = open(log_path, "ab")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "jobjoker.supervisor", "--socket",
                                str(socket_path)], stdout=log, stderr=log, env=env)
    log.close()
    connection = Connection(socket_path)
    try:
        yield process, connection
    finally:
        try:
            connection.request("shutdown", kill_jobs=True)
        except (OSError, AssertionError):
            pass
        process.kill()
        process.wait()
        kill_leftovers(str(socket_path))  # its jobs too


@pytest.fixture
def supervisor(tiny_disk, tmp_path):
    """A supervisor whose log (stdout and stderr) is on the tiny disk; its connection."""
    with running_supervisor(tiny_disk / "supervisor.log", tmp_path / "sock") as running:
        yield running


def test_a_full_disk_does_not_stop_the_supervisor_and_no_exit_is_lost(supervisor, tiny_disk,
                                                                        tmp_path):
    process, connection = supervisor
    worker = tmp_path / "Waits.py"
    worker.write_text(WAITS)
    gates = {job_id: tmp_path / ("gate-" + job_id) for job_id in ("j1", "j2")}
    for job_id, gate in gates.items():
        started = connection.request("start", spec={
            "job_id": job_id, "worker": "Waits", "worker_file": str(worker),
            "params": {"gate": str(gate)}, "job_dir": str(tiny_disk / "jobs" / job_id)})
        assert started["ok"], started
    ballast = fill(tiny_disk)

    gates["j1"].touch()  # j1 ends normally while the disk (and the supervisor's log) is full
    exit_event = connection.exit_of("j1")
    assert exit_event["returncode"] == 0, exit_event
    assert connection.request("ping")["ok"] and process.poll() is None
    status = connection.request("status")
    assert [job["job_id"] for job in status["running"]] == ["j2"]
    (kept,) = status["exited"]  # a server that was away learns the exit from here
    assert kept["job_id"] == "j1" and kept["returncode"] == 0
    assert not (tiny_disk / "jobs" / "j1" / "exit.json").exists()

    ballast.unlink()  # room again: the record is written, the other job ends as usual
    until(lambda: (tiny_disk / "jobs" / "j1" / "exit.json").exists(), what="the exit record")
    assert json.loads((tiny_disk / "jobs" / "j1" / "exit.json").read_text())["returncode"] == 0
    assert connection.request("status")["exited"] == []
    gates["j2"].touch()
    assert connection.exit_of("j2")["returncode"] == 0
    assert process.poll() is None
