"""The original PHP project's API test suite (``libs/JobjokerTest.php``), replayed against this
server.

One test per original test, in the original order, doing what the original did against the two
sample workers ``Foobar`` and ``TestWorker`` (params ``count`` and ``sleep``: for each i below
count while active, log "log i", respond "response i", run ``sleep``). Where the original relied
on fixed sleeps of seconds, these wait by polling with a deadline and use shorter sleeps: the
semantics matter, not the timing.

Three behaviours changed on purpose; those tests assert the new behaviour and say why:
``testJobPid`` (the pid is the server's: 405), ``testJobStatus`` (only start/stop/kill may be
sent: 400) and ``testJobrunAndStop`` (a stopped job ends as ``stop``, no longer ``done``).
"""
import asyncio

import pytest

MY_WORKER = '''
from jobjoker import Worker


class MyWorker(Worker):
    """Logs its own name."""

    def run(self):
        self.log("MyWorker")
'''


async def create_test_job(api, parameters=None):
    reply = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": parameters})
    assert reply.json["success"] is True, reply
    return reply.data[0]["id"]


async def status_of(api, job_id):
    reply = await api("GET", "/jobs/%s/status" % job_id)
    assert reply.code == 200, reply
    return reply.data[0]["status"]


async def messages(api, job_id, stream):
    reply = await api("GET", "/jobs/%s/%s" % (job_id, stream))
    assert reply.code == 200, reply
    return [entry["message"] for entry in reply.data]


async def wait_for_entry(api, job_id, stream, message, timeout=20.0):
    """Poll until ``message`` is among the job's entries of ``stream``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while message not in await messages(api, job_id, stream):
        if loop.time() > deadline:
            raise AssertionError("job %s: no %r in its %s after %.0f s"
                                 % (job_id, message, stream, timeout))
        await asyncio.sleep(0.05)


@pytest.mark.gen_test
async def test_worker_listings(api):
    """testWorkerListings."""
    listing = await api("GET", "/workers")
    assert listing.json["success"] is True, listing
    assert len(listing.data) >= 1
    one = await api("GET", "/workers/TestWorker")
    assert one.json["success"] is True, one
    assert one.data[0]["name"] == "TestWorker"


@pytest.mark.gen_test
async def test_create_get_and_delete_job(api):
    """testCreateGetAndDeleteJob."""
    created = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": None})
    assert created.json["success"] is True, created
    assert created.data[0]["worker"] == "TestWorker"
    job_id = created.data[0]["id"]
    fetched = await api("GET", "/jobs/%s" % job_id)
    assert fetched.json["success"] is True and fetched.data[0]["worker"] == "TestWorker"
    deleted = await api("DELETE", "/jobs/%s" % job_id)
    assert deleted.json["success"] is True, deleted
    assert (await api("GET", "/jobs/%s" % job_id)).code == 404


@pytest.mark.parametrize("stream", ["log", "response"])
@pytest.mark.gen_test
async def test_job_log_and_response(api, stream):
    """testJobLog and testJobResponse: two plain-text appends read back in order."""
    job_id = await create_test_job(api)
    for text in ("foo", "bar"):
        reply = await api("POST", "/jobs/%s/%s" % (job_id, stream), text,
                          headers={"Content-Type": "text/plain"})
        assert reply.json["success"] is True, reply
    reply = await api("GET", "/jobs/%s/%s" % (job_id, stream))
    assert reply.data[0]["message"] == "foo"
    assert reply.data[1]["message"] == "bar"


@pytest.mark.gen_test
async def test_job_pid(api):
    """testJobPid, CHANGED ON PURPOSE.

    The original PUT "123" to /jobs/ID/pid and read it back. A client-set pid could aim the
    server's stop at any process and misreport what runs; the server now sets the pid itself when
    it starts the job, so the PUT is refused with 405 and the pid stays null.
    """
    job_id = await create_test_job(api)
    reply = await api("PUT", "/jobs/%s/pid" % job_id, "123",
                      headers={"Content-Type": "text/plain"})
    assert reply.code == 405, reply
    assert reply.json["success"] is False
    assert (await api("GET", "/jobs/%s" % job_id)).data[0]["pid"] is None
    assert (await api("GET", "/jobs/%s/pid" % job_id)).data[0]["pid"] is None


@pytest.mark.gen_test
async def test_job_status(api):
    """testJobStatus, CHANGED ON PURPOSE.

    The original PUT "done" to /jobs/ID/status and read "done" back. Statuses are now the
    server's record of what the process did, moved only by the state machine; clients send the
    commands start, stop or kill. "done" is refused with 400 and the job stays idle.
    """
    job_id = await create_test_job(api)
    reply = await api("PUT", "/jobs/%s/status" % job_id, "done",
                      headers={"Content-Type": "text/plain"})
    assert reply.code == 400, reply
    assert reply.json["success"] is False
    assert await status_of(api, job_id) == "idle"


@pytest.mark.gen_test
async def test_jobrun(api, wait_for_status):
    """testJobrun: one round of TestWorker runs to done (1 s instead of 3 s of sleep)."""
    job_id = await create_test_job(api, {"count": 1, "sleep": 1})
    started = await api("PUT", "/jobs/%s/status" % job_id, "start")
    assert started.json["success"] is True, started
    assert await status_of(api, job_id) == "active"
    assert (await wait_for_status(job_id))["status"] == "done"
    log = await api("GET", "/jobs/%s/log" % job_id)
    assert log.data[1]["message"] == "log 0"
    response = await api("GET", "/jobs/%s/response" % job_id)
    assert response.data[0]["message"] == "response 0"


@pytest.mark.gen_test
async def test_jobrun_and_stop(api, wait_for_status):
    """testJobrunAndStop, CHANGED ON PURPOSE in its final status.

    The original read "done" after the stop: the worker's loop saw it was no longer active and
    returned normally. A job that ended because it was asked to stop now ends as "stop", so
    "done" always means the work was finished.
    """
    job_id = await create_test_job(api, {"count": 50, "sleep": 3})
    started = await api("PUT", "/jobs/%s/status" % job_id, "start")
    assert started.json["success"] is True, started
    assert await status_of(api, job_id) == "active"
    # The original slept 3 s here; wait instead until the first round has been done.
    await wait_for_entry(api, job_id, "response", "response 0")
    refused = await api("DELETE", "/jobs/%s" % job_id)
    assert refused.json["success"] is False, refused
    stopped = await api("PUT", "/jobs/%s/status" % job_id, "stop")
    assert stopped.json["success"] is True, stopped
    assert (await wait_for_status(job_id))["status"] == "stop"
    log = await api("GET", "/jobs/%s/log" % job_id)
    assert log.data[1]["message"] == "log 0"
    response = await api("GET", "/jobs/%s/response" % job_id)
    assert response.data[0]["message"] == "response 0"
    deleted = await api("DELETE", "/jobs/%s" % job_id)
    assert deleted.json["success"] is True, deleted


@pytest.mark.gen_test
async def test_jobrun_and_kill(api, wait_for_status):
    """testJobrunAndKill."""
    job_id = await create_test_job(api, {"count": 50, "sleep": 3})
    started = await api("PUT", "/jobs/%s/status" % job_id, "start")
    assert started.json["success"] is True, started
    killed = await api("PUT", "/jobs/%s/status" % job_id, "kill")
    assert killed.json["success"] is True, killed
    assert (await wait_for_status(job_id))["status"] == "stop"
    deleted = await api("DELETE", "/jobs/%s" % job_id)
    assert deleted.json["success"] is True, deleted


@pytest.mark.gen_test
async def test_worker_creation(api, wait_for_status):
    """testWorkerCreation: upload a worker, run it, delete it."""
    saved = await api("PUT", "/workers/MyWorker", MY_WORKER,
                      headers={"Content-Type": "text/plain"})
    assert saved.json["success"] is True, saved
    fetched = await api("GET", "/workers/MyWorker")
    assert fetched.data[0]["name"] == "MyWorker"
    created = await api("POST", "/jobs", {"worker": "MyWorker", "parameters": None})
    assert created.json["success"] is True, created
    job_id = created.data[0]["id"]
    started = await api("PUT", "/jobs/%s/status" % job_id, "start")
    assert started.json["success"] is True, started
    assert (await wait_for_status(job_id))["status"] == "done"
    assert "MyWorker" in await messages(api, job_id, "log")
    assert (await api("DELETE", "/jobs/%s" % job_id)).json["success"] is True
    deleted = await api("DELETE", "/workers/MyWorker")
    assert deleted.json["success"] is True, deleted
    gone = await api("GET", "/workers/MyWorker")
    assert gone.code == 404, gone
    assert len(gone.data) == 0
