"""Scheduled and queued jobs through the Python client and the command line, against a real
server process: a start that queued is reported, ``wait()`` and ``run --follow`` wait through
``scheduled`` and ``queued`` for the real start and the end, ``run --at`` schedules, and the jobs
list shows a queued job's place and a scheduled job's start time."""
import concurrent.futures
import datetime
import subprocess
import sys
import time

import pytest

from jobjoker.client import Client
from tests.support import PASSWORD, ROOT, ServerProcess, until, workers_folder
from tests.test_cli import environment

HOLD = '''import time

from jobjoker import Worker


class Hold(Worker):
    """Runs until stopped; one at a time."""

    max_active = 1

    def run(self):
        while self.is_active():
            time.sleep(0.02)
'''

QUICK = '''from jobjoker import Worker


class Quick(Worker):
    """Logs a line and ends."""

    def run(self):
        self.log("quick ran")
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("queue-server")
    workers = workers_folder(root / "workers", {"Hold": HOLD, "Quick": QUICK})
    process = ServerProcess(root, "--stop-grace", "2", workers_dir=workers)
    try:
        yield process.wait_ready()
    finally:
        process.discard()


@pytest.fixture
def client(server):
    return Client(server.url, "admin", PASSWORD)


def jj(server, *args):
    return subprocess.run([sys.executable, "-m", "jobjoker.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=environment(server.url))


def test_the_client_reports_a_queued_start_and_waits_through_the_queue(client, server):
    first = client.create_job("Hold", start=True)
    assert first["status"] == "active"
    second = client.create_job("Hold", start=True)
    assert second["status"] == "queued" and second["queue_position"] == 1
    third = client.start(client.create_job("Hold")["id"])
    assert third["status"] == "queued" and third["queue_position"] == 2
    listed = jj(server, "jobs", "ls", "--status", "queued")
    assert "queued #1" in listed.stdout and "queued #2" in listed.stdout, listed
    assert client.stop(third["id"])["reason"] == "cancelled"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waited = pool.submit(client.wait, second["id"])
        client.stop(first["id"])
        until(lambda: client.job(second["id"])["status"] == "active", what="the hand-over")
        client.stop(second["id"])
        assert waited.result(60)["status"] == "stop"


def test_the_client_schedules_a_start(client):
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    job = client.create_job("Quick", start_at=at)
    assert job["status"] == "scheduled" and abs(job["start_at"] - at.timestamp()) < 0.001
    done = client.wait(job["id"])
    assert done["status"] == "done" and done["starttime"] >= at.timestamp()


def test_run_at_follows_through_the_wait(server):
    ran = jj(server, "run", "Quick", "--at", "+1", "--follow")
    assert ran.returncode == 0, ran
    assert "is scheduled to start at" in ran.stderr and "started" in ran.stderr, ran
    assert "quick ran" in ran.stdout


def test_run_says_when_it_queued_and_the_list_shows_start_times(client, server):
    first = client.create_job("Hold", start=True)
    ran = jj(server, "run", "Hold")
    assert ran.returncode == 0 and "is queued (place 1)" in ran.stderr, ran
    queued = ran.stdout.strip()
    later = client.create_job("Quick", start_at=time.time() + 3600)
    listed = jj(server, "jobs", "ls", "--status", "scheduled")
    assert "scheduled 2" in listed.stdout, listed  # the start time, in the STATUS column
    assert jj(server, "jobs", "stop", later["id"]).returncode == 0
    assert client.job(later["id"])["reason"] == "cancelled"
    client.stop(first["id"])
    until(lambda: client.job(queued)["status"] == "active", what="the hand-over")
    client.kill(queued)
    client.wait(queued)
