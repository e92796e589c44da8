"""Concurrency caps with a queue: the server's cap (``--max-active-jobs``, kept in the database)
and a worker's (``max_active``), through the API.

What is pinned down here:
- a cap of 3 holds under 100 concurrent starts, proven from what the jobs' processes themselves
  wrote (start and end times), not from a sampled count; every job still runs, once;
- a start beyond a cap answers 202 with the job ``queued`` and its ``queue_position``; POST with
  ``"start": true`` answers 201 with the job queued and a message that says so;
- a job waiting for its worker's cap holds back no job of another worker, and starts when its
  worker's slot frees (FIFO per cap);
- a queued job can be cancelled (stop: ``stop``, reason ``cancelled``; DELETE);
- the queue keeps its order across a restart, and the cap stored in the database holds for a
  server started without ``--max-active-jobs``;
- a negative ``--max-active-jobs`` is refused at start.
"""
import asyncio


import pytest

from jobjoker import models
from jobjoker.app import JobJokerServer
from jobjoker.config import load_config
from jobjoker.errors import StartupError
from tests.support import PASSWORD, kill_leftovers, poll

STAMP = '''import time

from jobjoker import Worker


class Stamp(Worker):
    """Appends its start and end times to a file, sleeping in between."""

    def run(self):
        with open(self.params["file"], "a") as f:
            f.write("%s start %.6f\\n" % (self.params.get("name", ""), time.time()))
        time.sleep(self.params.get("sleep", 0.05))
        with open(self.params["file"], "a") as f:
            f.write("%s end %.6f\\n" % (self.params.get("name", ""), time.time()))
'''

HOLD = '''import time

from jobjoker import Worker


class Hold(Worker):
    """Runs until stopped; one at a time."""

    max_active = 1

    def run(self):
        while self.is_active():
            time.sleep(0.02)
'''


def most_at_once(lines):
    """The largest number of processes that ran at once, from their start and end stamps."""
    marks = sorted((float(when), 1 if what == "start" else -1)
                   for _, what, when in (line.split() for line in lines))
    running = most = 0
    for _, step in sorted(marks, key=lambda mark: (mark[0], mark[1])):
        running += step
        most = max(most, running)
    return most


@pytest.fixture
def config_overrides():
    return {"max_active_jobs": 3}


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=180)
async def test_a_cap_of_3_holds_under_100_concurrent_starts(api, write_worker, tmp_path,
                                                           wait_for_status):
    write_worker("Stamp", STAMP)
    stamps = tmp_path / "stamps.txt"
    created = await api("POST", "/jobs/batch", {"jobs": [
        {"worker": "Stamp", "parameters": {"file": str(stamps), "name": "j%d" % i}}
        for i in range(100)]})
    assert created.code == 201, created
    ids = [job["id"] for job in created.data]
    replies = await asyncio.gather(*[api("PUT", "/jobs/%s/status" % job_id, "start")
                                     for job_id in ids])
    assert {reply.code for reply in replies} <= {200, 202}
    queued = [reply for reply in replies if reply.code == 202]
    assert queued, "100 starts under a cap of 3: some must wait"
    for reply in queued:
        assert reply.data[0]["status"] in ("queued", "active", "done")  # as it was answered
        assert "queued" in reply.json["message"]
    for job_id in ids:
        assert (await wait_for_status(job_id, timeout=120))["status"] == "done"
    lines = stamps.read_text().splitlines()
    assert len(lines) == 200  # every job ran, once
    assert most_at_once(lines) <= 3


@pytest.mark.gen_test(timeout=60)
async def test_a_start_beyond_a_cap_queues_and_the_queue_hands_over(api, write_worker,
                                                                    wait_for_status):
    write_worker("Hold", HOLD)
    first = await api("POST", "/jobs", {"worker": "Hold", "start": True})
    assert first.code == 201 and first.data[0]["status"] == "active"
    second = await api("POST", "/jobs", {"worker": "Hold", "start": True})
    assert second.code == 201, second
    job = second.data[0]
    assert job["status"] == "queued" and job["queue_position"] == 1
    assert job["queued"] is not None and "queued" in second.json["message"]
    third = await api("POST", "/jobs", {"worker": "Hold"})
    started = await api("PUT", "/jobs/%s/status" % third.data[0]["id"], "start")
    assert started.code == 202 and started.data[0]["status"] == "queued"
    assert started.data[0]["queue_position"] == 2
    listed = await api("GET", "/jobs?status=queued")
    assert [j["queue_position"] for j in listed.data] == [2, 1]  # newest first
    # another worker is not held back by Hold's cap
    other = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": {"count": 1},
                                        "start": True})
    assert other.data[0]["status"] == "active"
    await api("PUT", "/jobs/%s/status" % first.data[0]["id"], "stop")
    assert (await wait_for_status(job["id"], ("active",)))["queue_position"] is None
    assert (await api("GET", "/jobs/%s" % third.data[0]["id"])).data[0]["queue_position"] == 1
    paused = await api("PUT", "/jobs/%s/status" % third.data[0]["id"], "pause")
    assert paused.code == 409 and "has not started" in paused.json["message"], paused
    # cancel the queued one
    cancelled = await api("PUT", "/jobs/%s/status" % third.data[0]["id"], "stop")
    assert cancelled.code == 200, cancelled
    assert cancelled.data[0]["status"] == "stop" and cancelled.data[0]["reason"] == "cancelled"
    again = await api("PUT", "/jobs/%s/status" % third.data[0]["id"], "stop")
    assert again.code == 409
    await api("PUT", "/jobs/%s/status" % job["id"], "kill")
    await wait_for_status(job["id"])


@pytest.mark.gen_test(timeout=60)
async def test_a_queued_job_can_be_deleted(api, write_worker, wait_for_status):
    write_worker("Hold", HOLD)
    first = (await api("POST", "/jobs", {"worker": "Hold", "start": True})).data[0]
    queued = (await api("POST", "/jobs", {"worker": "Hold", "start": True})).data[0]
    assert queued["status"] == "queued"
    deleted = await api("DELETE", "/jobs/%s" % queued["id"])
    assert deleted.code == 200
    assert (await api("GET", "/jobs/%s" % queued["id"])).code == 404
    audit = await api("GET", "/audit?action=job.delete")
    assert {"job.delete"} <= {entry["action"] for entry in audit.data}
    await api("PUT", "/jobs/%s/status" % first["id"], "kill")
    await wait_for_status(first["id"])


async def started_server(config):
    server = JobJokerServer(config, admin_password=PASSWORD)
    await server.start(listen=False)
    return server


@pytest.fixture
def cleanup():
    servers = []
    yield servers
    for server in servers:
        kill_leftovers(server.processes.supervisor.socket_path)
    models.database.initialize(None)


def flags(tmp_path, workers_dir, database_url, **more):
    return load_config(dict({"data_dir": tmp_path / "data", "workers_dir": workers_dir,
                             "database": database_url, "port": 0, "stop_grace": 2.0,
                             "node": "test-node"}, **more), environ={})


@pytest.mark.gen_test(timeout=90)
async def test_the_queue_keeps_its_order_across_a_restart(tmp_path, workers_dir, write_worker,
                                                         database_url, cleanup):
    write_worker("Hold", HOLD.replace("max_active = 1", ""))
    write_worker("Stamp", STAMP)
    stamps = tmp_path / "stamps.txt"
    first = await started_server(flags(tmp_path, workers_dir, database_url, max_active_jobs=1))
    cleanup.append(first)
    jobs = first.app.settings["jobs"]
    holder, _ = await jobs.submit_job({"worker": "Hold", "start": True})
    assert holder["status"] == "active"
    waiting = []
    for name in "abcd":
        job, message = await jobs.submit_job({"worker": "Stamp", "start": True, "parameters": {
            "file": str(stamps), "name": name, "sleep": 0}})
        assert job["status"] == "queued", message
        waiting.append(job["id"])
    await first.stop()  # Hold keeps running; the queue is in the database
    # no --max-active-jobs this time: the stored cap of 1 holds
    second = await started_server(flags(tmp_path, workers_dir, database_url))
    cleanup.append(second)
    jobs = second.app.settings["jobs"]
    assert [(await jobs.get_job(job_id))["queue_position"] for job_id in waiting] == [1, 2, 3, 4]
    await jobs.command(holder["id"], "stop")

    async def all_done():
        return all([(await jobs.get_job(job_id))["status"] == "done" for job_id in waiting])
    await poll(all_done, 60, "the queued jobs to run")
    names = [line.split()[0] for line in stamps.read_text().splitlines()]
    assert names == ["a", "a", "b", "b", "c", "c", "d", "d"]  # in order, one at a time
    await second.stop(kill_jobs=True)


def test_a_negative_cap_is_refused_at_start(tmp_path):
    with pytest.raises(StartupError) as refused:
        load_config({"data_dir": tmp_path, "max_active_jobs": -1}, environ={})
    assert "max-active-jobs" in str(refused.value) or "max_active_jobs" in str(refused.value)

