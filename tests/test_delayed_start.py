"""Delayed starts: ``start_at`` on ``POST /jobs`` and the batch, through the API.

What is pinned down here:
- a job with a ``start_at`` to come is created ``scheduled`` (201, its ``start_at`` stored) and
  starts at that time, not before; one whose time has passed starts at once;
- ``start_at`` is RFC 3339 with its offset or epoch seconds; anything else is 400 naming
  ``start_at`` (``jobs[N].start_at`` in a batch) and creates nothing; ``"start": false`` beside a
  ``start_at`` is 400 naming it;
- the batch's ``start_at`` applies to every job without its own;
- ``PUT .../status start`` on a scheduled job starts it now; stop and DELETE cancel it
  (``stop``, reason ``cancelled``);
- a job whose time passed while no server ran starts once the next server is up, once.
"""
import datetime
import time

import pytest

from jobjoker import models
from jobjoker.app import JobJokerServer
from jobjoker.config import load_config
from tests.support import PASSWORD, kill_leftovers, poll


def rfc3339(when):
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).isoformat()


async def job_count(api):
    return int((await api("GET", "/jobs")).headers["X-Total-Count"])


@pytest.mark.gen_test(timeout=60)
async def test_a_delayed_job_waits_scheduled_and_starts_at_its_time(api, wait_for_status):
    at = time.time() + 1.5
    created = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": {"count": 1},
                                          "start_at": rfc3339(at)})
    assert created.code == 201, created
    job = created.data[0]
    assert job["status"] == "scheduled" and abs(job["start_at"] - at) < 0.001
    assert "scheduled" in created.json["message"]
    done = await wait_for_status(job["id"])
    assert done["status"] == "done" and done["starttime"] >= at


@pytest.mark.gen_test(timeout=60)
async def test_a_time_already_past_starts_at_once(api, wait_for_status):
    created = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": {"count": 1},
                                          "start_at": time.time() - 60})
    assert created.code == 201 and created.data[0]["status"] == "active", created
    assert (await wait_for_status(created.data[0]["id"]))["status"] == "done"


@pytest.mark.gen_test(timeout=60)
async def test_bad_start_at_is_400_naming_it_and_creates_nothing(api):
    before = await job_count(api)
    for value in ("tomorrow", "2026-12-24T18:00:00", True, -5, 1e300, {"at": 1}, ""):
        reply = await api("POST", "/jobs", {"worker": "TestWorker", "start_at": value})
        assert reply.code == 400, (value, reply)
        assert "start_at" in reply.json["message"], reply
    reply = await api("POST", "/jobs", {"worker": "TestWorker", "start": False,
                                        "start_at": time.time() + 60})
    assert reply.code == 400 and "start_at" in reply.json["message"]
    reply = await api("POST", "/jobs/batch", {"jobs": [
        {"worker": "TestWorker"}, {"worker": "TestWorker", "start_at": "soon"}], "start": True})
    assert reply.code == 400 and "jobs[1].start_at" in reply.json["message"], reply
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "TestWorker"}],
                                              "start_at": "later"})
    assert reply.code == 400 and "start_at" in reply.json["message"], reply
    assert await job_count(api) == before


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_start_at_applies_to_jobs_without_their_own(api):
    at = time.time() + 3600
    reply = await api("POST", "/jobs/batch", {"jobs": [
        {"worker": "TestWorker"}, {"worker": "TestWorker", "start_at": at + 60}],
        "start_at": at})
    assert reply.code == 201, reply
    assert [job["status"] for job in reply.data] == ["scheduled", "scheduled"]
    assert [job["start_at"] for job in reply.data] == [at, at + 60]
    for job in reply.data:
        await api("DELETE", "/jobs/%s" % job["id"])


@pytest.mark.gen_test(timeout=60)
async def test_start_now_and_cancel_of_scheduled_jobs(api, wait_for_status):
    later = time.time() + 3600
    ids = [(await api("POST", "/jobs", {"worker": "TestWorker", "parameters": {"count": 1},
                                        "start_at": later})).data[0]["id"] for _ in range(3)]
    started = await api("PUT", "/jobs/%s/status" % ids[0], "start")
    assert started.code == 200 and started.data[0]["status"] == "active", started
    assert (await wait_for_status(ids[0]))["status"] == "done"
    stopped = await api("PUT", "/jobs/%s/status" % ids[1], "kill")
    assert stopped.code == 200, stopped
    assert stopped.data[0]["status"] == "stop" and stopped.data[0]["reason"] == "cancelled"
    assert stopped.data[0]["starttime"] is None
    assert (await api("DELETE", "/jobs/%s" % ids[2])).code == 200
    assert (await api("GET", "/jobs/%s" % ids[2])).code == 404
    audit = await api("GET", "/audit?action=job.kill")
    assert any(entry.get("target") == ids[1] for entry in audit.data), audit


@pytest.mark.gen_test(timeout=90)
async def test_a_time_passed_while_the_server_was_down_starts_once(tmp_path, workers_dir,
                                                                  database_url):
    config = load_config({"data_dir": tmp_path / "data", "workers_dir": workers_dir,
                          "database": database_url, "port": 0, "node": "test-node"}, environ={})
    servers = []
    try:
        first = JobJokerServer(config, admin_password=PASSWORD)
        servers.append(await first.start(listen=False))
        at = time.time() + 1.0
        job, _ = await first.app.settings["jobs"].submit_job(
            {"worker": "TestWorker", "parameters": {"count": 1}, "start_at": at})
        assert job["status"] == "scheduled"
        await first.stop()
        await poll(lambda: time.time() > at + 0.5, 30, "its time to pass")
        second = JobJokerServer(config, admin_password=PASSWORD)
        servers.append(await second.start(listen=False))
        jobs = second.app.settings["jobs"]

        async def done():
            return (await jobs.get_job(job["id"]))["status"] == "done"
        await poll(done, 60, "the job to run")
        await second.stop()
        third = JobJokerServer(config, admin_password=PASSWORD)  # it does not start again
        servers.append(await third.start(listen=False))
        entries = await third.storage.read(lambda: list(models.AuditEntry.select().where(
            models.AuditEntry.target == job["id"], models.AuditEntry.action == "job.start")))
        assert len(entries) == 1
        assert (await third.app.settings["jobs"].get_job(job["id"]))["status"] == "done"
        await third.stop()
    finally:
        for server in servers:
            kill_leftovers(server.processes.supervisor.socket_path)
        models.database.initialize(None)
