"""The code a job ran: recorded at its start, kept while a job refers to it, shown as it was.

Against a real server and supervisor: each job's ``code_hash`` is the SHA-256 of the worker
source it ran; ``GET /jobs/ID/code`` returns that source even after the file is edited or
deleted, and the job really ran it (the file changed between the server's read and the fork does
not reach the job); ``GET /workers/NAME/versions`` lists versions with who saved them; deleting
jobs prunes the versions no job refers to beyond each worker's newest ``KEEP_NEWEST``; the diff
against today's worker. The version rows run on MariaDB too (``both_databases``)."""
import hashlib

import pytest

from jobjoker import codestore, models

pytestmark = [pytest.mark.both_databases, pytest.mark.gen_test(timeout=120)]

SAYER = '''from jobjoker import Worker

VERSION = "%s"


class Sayer(Worker):
    """Logs the version written in its code."""

    def run(self):
        self.log("version " + VERSION)
'''


def sayer(version):
    return SAYER % version


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


async def log_lines(api, job_id):
    return [e["message"] for e in (await api("GET", "/jobs/%s/log" % job_id)).data]


async def test_a_job_records_and_shows_the_code_it_ran(api, run_job, write_worker):
    path = write_worker("Sayer", sayer("one"))
    job = await run_job("Sayer", wait=True)
    assert job["status"] == "done"
    assert job["code_hash"] == sha(sayer("one"))
    assert "version one" in await log_lines(api, job["id"])
    code = (await api("GET", "/jobs/%s/code" % job["id"])).data[0]
    assert code["source"] == sayer("one") and code["hash"] == job["code_hash"]
    assert code["worker"] == "Sayer" and code["saved_by"] is None and code["current"] is True

    path.write_text(sayer("two"))  # edited: the old job still shows what it ran
    code = (await api("GET", "/jobs/%s/code" % job["id"])).data[0]
    assert code["source"] == sayer("one") and code["current"] is False
    diff = (await api("GET", "/jobs/%s/code/diff" % job["id"])).data[0]
    assert '-VERSION = "one"\n' in diff["diff"] and '+VERSION = "two"\n' in diff["diff"]
    assert diff["current_hash"] == sha(sayer("two")) and diff["worker_deleted"] is False

    deleted = await api("DELETE", "/workers/Sayer")
    assert deleted.code == 200
    code = (await api("GET", "/jobs/%s/code" % job["id"])).data[0]
    assert code["source"] == sayer("one") and code["current"] is False
    reply = await api("GET", "/jobs/%s/code/diff" % job["id"])
    assert reply.data[0]["worker_deleted"] is True and reply.data[0]["diff"] == ""
    assert "deleted" in reply.json["message"]


async def test_the_job_runs_the_code_read_not_the_file_at_fork(api, run_job, write_worker,
                                                               monkeypatch):
    """The file changes between the server's read and the fork: the job runs what was read
    and recorded, not the file as the fork finds it."""
    path = write_worker("Sayer", sayer("read"))
    read_worker = codestore.read_worker

    def read_then_edit(worker, file):
        source = read_worker(worker, file)
        path.write_text(sayer("edited"))
        return source
    monkeypatch.setattr(codestore, "read_worker", read_then_edit)
    job = await run_job("Sayer", wait=True)
    assert job["code_hash"] == sha(sayer("read"))
    lines = await log_lines(api, job["id"])
    assert "version read" in lines and "version edited" not in lines


async def test_a_start_of_an_idle_job_records_the_code_then(api, write_worker, wait_for_status):
    path = write_worker("Sayer", sayer("at creation"))
    job = (await api("POST", "/jobs", {"worker": "Sayer"})).data[0]
    assert job["code_hash"] is None
    reply = await api("GET", "/jobs/%s/code" % job["id"])
    assert reply.code == 404 and "has not started" in reply.json["message"]
    path.write_text(sayer("at start"))
    started = await api("PUT", "/jobs/%s/status" % job["id"], "start")
    assert started.code == 200 and started.data[0]["code_hash"] == sha(sayer("at start"))
    await wait_for_status(job["id"])
    assert "version at start" in await log_lines(api, job["id"])


async def test_a_batch_records_each_workers_code_once(api, write_worker, wait_for_status):
    write_worker("Sayer", sayer("batch"))
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Sayer"}] * 3,
                                              "start": True})
    assert reply.code == 201
    assert {job["code_hash"] for job in reply.data} == {sha(sayer("batch"))}
    for job in reply.data:
        await wait_for_status(job["id"])
    assert models.WorkerVersion.select().where(models.WorkerVersion.worker == "Sayer").count() == 1


async def test_a_job_started_before_versions_were_kept_says_so(api, run_job, write_worker):
    write_worker("Sayer", sayer("old"))
    job = await run_job("Sayer", wait=True)
    models.Job.update(code_hash=None).where(models.Job.id == job["id"]).execute()
    reply = await api("GET", "/jobs/%s/code" % job["id"])
    assert reply.code == 404 and "before JobJoker kept the code" in reply.json["message"]
    assert (await api("GET", "/jobs/nosuchjob0/code")).code == 404


async def test_versions_list_who_saved_them_newest_first(api, run_job, write_worker):
    write_worker("Sayer", sayer("from disk"))
    ran = await run_job("Sayer", wait=True)
    saved = await api("PUT", "/workers/Sayer", sayer("saved"))
    assert saved.code == 200
    reply = await api("GET", "/workers/Sayer/versions")
    assert reply.code == 200 and reply.headers["X-Total-Count"] == "2"
    newest, oldest = reply.data
    assert newest["hash"] == sha(sayer("saved")) and newest["saved_by"] == "admin"
    assert newest["jobs"] == 0 and "source" not in newest
    assert oldest["hash"] == ran["code_hash"] and oldest["saved_by"] is None
    assert oldest["jobs"] == 1
    one = await api("GET", "/workers/Sayer/versions/%s" % newest["hash"])
    assert one.data[0]["source"] == sayer("saved")
    assert (await api("GET", "/workers/Sayer/versions/%s" % ("0" * 64))).code == 404
    assert (await api("GET", "/workers/Sayer/versions/nothex")).code == 400
    page = await api("GET", "/workers/Sayer/versions?limit=1&offset=1")
    assert [v["hash"] for v in page.data] == [oldest["hash"]]
    assert (await api("GET", "/workers/Sayer/versions?limit=-1")).code == 400
    # A job run after the save runs the saved code: the version is not stored twice.
    job = await run_job("Sayer", wait=True)
    assert job["code_hash"] == newest["hash"]
    assert (await api("GET", "/workers/Sayer/versions")).headers["X-Total-Count"] == "2"


async def test_deleting_jobs_prunes_what_no_job_refers_to(api, run_job, write_worker,
                                                          monkeypatch):
    monkeypatch.setattr(codestore, "KEEP_NEWEST", 1)
    write_worker("Sayer", sayer("first"))
    first = await run_job("Sayer", wait=True)
    twin = await run_job("Sayer", wait=True)  # the same code as first
    write_worker("Sayer", sayer("second"))
    second = await run_job("Sayer", wait=True)

    def kept():
        return {v.hash for v in models.WorkerVersion.select()}
    assert kept() == {first["code_hash"], second["code_hash"]}
    await api("DELETE", "/jobs/%s" % first["id"])
    assert kept() == {first["code_hash"], second["code_hash"]}  # twin still ran it
    code = (await api("GET", "/jobs/%s/code" % twin["id"])).data[0]
    assert code["source"] == sayer("first")
    await api("DELETE", "/jobs/%s" % twin["id"])
    assert kept() == {second["code_hash"]}  # no job refers to it, and it is not the newest
    await api("DELETE", "/jobs/%s" % second["id"])
    assert kept() == {second["code_hash"]}  # the newest is kept without jobs


async def test_a_version_stored_meanwhile_by_another_server_is_no_error(storage):
    """Check-then-insert loses a race to another server's insert: taken as it is."""
    def race(tx):
        models.WorkerVersion.insert(worker="W", hash="a" * 64, source="x", saved=1.0).execute()
        real_exists = models.WorkerVersion.select

        class Stale:  # our check ran before the other server's insert
            def where(self, *args):
                return self

            def exists(self):
                return False
        models.WorkerVersion.select = lambda *a: Stale()
        try:
            return codestore.record(tx, "W", "a" * 64, "x", 2.0)
        finally:
            models.WorkerVersion.select = real_exists
    assert await storage.transaction(race) is False
    assert models.WorkerVersion.get().saved == 1.0


async def test_viewers_may_read_code(api, run_job, write_worker, make_user):
    write_worker("Sayer", sayer("viewer"))
    job = await run_job("Sayer", wait=True)
    viewer = make_user("watcher", "viewer")
    assert (await api("GET", "/jobs/%s/code" % job["id"], auth=viewer)).code == 200
    assert (await api("GET", "/jobs/%s/code/diff" % job["id"], auth=viewer)).code == 200
    assert (await api("GET", "/workers/Sayer/versions", auth=viewer)).code == 200


async def test_a_big_batchs_start_requests_are_bounded_by_their_source():
    specs = [{"job_id": str(i), "worker_source": "x" * 40} for i in range(5)] + [{"job_id": "5"}]
    parts = list(codestore.bounded_by_source(specs, limit=100))
    assert [[spec["job_id"] for spec in part] for part in parts] == [["0", "1"], ["2", "3"],
                                                                      ["4", "5"]]
    huge = [{"job_id": "a", "worker_source": "x" * 500}]
    assert list(codestore.bounded_by_source(huge, limit=100)) == [huge]


@pytest.mark.parametrize("config_overrides", [{"max_batch": 1000}])
async def test_a_batch_split_in_several_start_requests_starts_every_job(
        api, write_worker, wait_for_status, monkeypatch, config_overrides):
    monkeypatch.setattr(codestore.bounded_by_source, "__defaults__", (1,))  # a request a job
    write_worker("Sayer", sayer("parts"))
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Sayer"}] * 4, "start": True})
    assert reply.code == 201 and all(job["pid"] for job in reply.data)
    for job in reply.data:
        assert (await wait_for_status(job["id"]))["status"] == "done"
        assert "version parts" in await log_lines(api, job["id"])
