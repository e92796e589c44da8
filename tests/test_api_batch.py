"""Creating and starting jobs in one request: ``POST /jobs`` with ``"start": true``, and
``POST /jobs/batch`` for many jobs at once.

What is pinned down here:

- ``"start": true`` creates and starts in one request (201, the job active with its pid, which
  then ends as any started job does); a ``start`` that is not a boolean is 400 and creates nothing;
- a batch creates its jobs in order, idle or started, with the audit trail and the events of as
  many single requests, and it is all or none: every problem of every spec is found first and
  named by its place (``jobs[3].worker: ...``), and nothing is created;
- the batch's limits (its size, an empty or malformed list, unknown keys: 400) and who may
  send one (operators and admins, not viewers);
- a job created but not started (the supervisor refused) stays, ended ``error``, and the reply
  says so: 503 when nothing started, 201 with each job's state when some did;
- jobs started in a batch can be stopped at once (their process groups exist by the time a signal
  is sent), and a supervisor that predates ``start_many`` still starts a batch;
- the Python client's ``create_job(..., start=True)`` and ``create_jobs`` against a real server
  process.

Every test runs on SQLite; those of the database's transactions and races on MariaDB too (marked
``both_databases``, see ``conftest.py``). The supervisor's refusals are the one thing faked (on
the server's side of the socket): a real supervisor refuses only when the machine runs out of
processes.
"""
import json

import pytest

from jobjoker import auth, models
from jobjoker.client import BadRequestError, Client
from jobjoker.config import Config
from jobjoker.errors import Unavailable
from tests.support import poll

SECRET_WORKER = '''from jobjoker import Worker


class Secretive(Worker):
    """Declares its parameters, one of them secret."""

    parameters = {
        "count": {"type": "integer", "minimum": 1, "required": True},
        "token": {"type": "string", "secret": True, "default": "s3cr3t-default"},
    }

    def run(self):
        self.log("count %d" % self.params["count"])
'''

SLEEPER = '''import time

from jobjoker import Worker


class Sleeper(Worker):
    """Sleeps until stopped."""

    def run(self):
        while self.is_active():
            time.sleep(0.02)
'''


def job_count():
    return models.Job.select().count()


def assert_refused(reply, code, *words):
    assert reply.code == code, reply
    assert reply.json["success"] is False, reply
    for word in words:
        assert word in reply.json["message"], "%r lacks %r" % (reply.json["message"], word)


async def final(api, job_id, timeout=20.0):
    """The job once it has ended."""
    async def check():
        job = (await api("GET", "/jobs/%s" % job_id)).data[0]
        return job if job["status"] in ("done", "error", "stop") else None
    return await poll(check, timeout, "job %s to end" % job_id)


async def messages(api, job_id):
    return [entry["message"] for entry in (await api("GET", "/jobs/%s/log" % job_id)).data]


def user(role):
    """A user of ``role`` made in the database; returns (username, password)."""
    name, password = "a-" + role, "pw-%s-0123456789" % role
    models.User.create(username=name, password_hash=auth.hash_password(password), role=role)
    return name, password


@pytest.fixture
def refusing_supervisor(server, monkeypatch):
    """The supervisor refuses every start, or, with ``choose`` set (a function of the specs), the
    jobs of the ids it returns, forking the others for real; ``refused`` lists those refused."""
    client = server.processes.supervisor
    real_start_many = client.start_many

    class Refusal:
        refused = []
        choose = None

    async def start_many(specs):
        chosen = Refusal.choose(specs) if Refusal.choose else {spec["job_id"] for spec in specs}
        refuse = [spec["job_id"] in chosen for spec in specs]
        Refusal.refused.extend(spec["job_id"] for spec, no in zip(specs, refuse) if no)
        if all(refuse):
            raise Unavailable("the supervisor refused start_many: OSError: [Errno 11] "
                              "Resource temporarily unavailable")
        started = iter(await real_start_many([s for s, no in zip(specs, refuse) if not no]))
        return [{"error": "the supervisor refused start: OSError: out of processes"} if no
                else next(started) for no in refuse]
    monkeypatch.setattr(client, "start_many", start_many)
    return Refusal


# --- POST /jobs with "start": true ----------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_create_and_start_in_one_request(api):
    reply = await api("POST", "/jobs", {"worker": "Foobar", "start": True})
    assert reply.code == 201, reply
    job = reply.data[0]
    assert reply.headers["Location"] == "/jobs/%s" % job["id"]
    assert reply.json["message"] == "job %s created and started" % job["id"]
    assert job["status"] in ("active", "done") and isinstance(job["pid"], int), job
    assert job["starttime"] is not None
    ended = await final(api, job["id"])
    assert ended["status"] == "done", ended
    log = await messages(api, job["id"])
    assert log[0] == "STARTED job %s: worker Foobar, pid %d" % (job["id"], job["pid"])
    assert "foobar" in log and log[-1].startswith("ENDED done")


@pytest.mark.gen_test(timeout=60)
async def test_start_false_or_absent_creates_an_idle_job(api):
    for body in ({"worker": "Foobar", "start": False}, {"worker": "Foobar"}):
        reply = await api("POST", "/jobs", body)
        assert reply.code == 201, reply
        assert reply.data[0]["status"] == "idle" and reply.data[0]["pid"] is None
        assert reply.json["message"] == "job %s created" % reply.data[0]["id"]


@pytest.mark.gen_test(timeout=60)
async def test_start_must_be_a_boolean(api):
    before = job_count()
    for start in ("yes", 1, None, ["true"]):
        reply = await api("POST", "/jobs", {"worker": "Foobar", "start": start})
        assert_refused(reply, 400, '"start" must be true or false')
    assert job_count() == before


@pytest.mark.gen_test(timeout=60)
async def test_start_true_checks_the_job_first(api):
    before = job_count()
    assert_refused(await api("POST", "/jobs", {"worker": "Nope", "start": True}), 404,
                   "no worker named 'Nope'")
    assert job_count() == before


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_job_created_but_not_started_stays_and_the_reply_says_so(
        api, refusing_supervisor):
    reply = await api("POST", "/jobs", {"worker": "Foobar", "start": True})
    [job_id] = refusing_supervisor.refused
    assert_refused(reply, 503, "job %s was created but could not start" % job_id,
                   "Resource temporarily unavailable", "it is now error")
    job = (await api("GET", "/jobs/%s" % job_id)).data[0]
    assert job["status"] == "error" and job["pid"] is None, job
    assert job["error"].startswith("could not start: ")
    assert (await messages(api, job_id))[0].startswith("FAILED to start: ")


# --- POST /jobs/batch -----------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_batch_creates_idle_jobs_in_order(api):
    specs = [{"worker": "Foobar"}, {"worker": "TestWorker", "parameters": {"count": 2}},
             {"worker": "Foobar", "parameters": None}]
    reply = await api("POST", "/jobs/batch", {"jobs": specs})
    assert reply.code == 201, reply
    assert reply.json["message"] == "3 jobs created"
    created = reply.data
    assert [job["worker"] for job in created] == ["Foobar", "TestWorker", "Foobar"]
    assert [job["parameters"] for job in created] == [{}, {"count": 2, "sleep": 1}, {}]
    assert {job["status"] for job in created} == {"idle"}
    assert all(job["created_by"] == "admin" and job["pid"] is None for job in created)
    listed = (await api("GET", "/jobs?limit=3")).data  # newest first: the batch's order, reversed
    assert [job["id"] for job in listed] == [job["id"] for job in reversed(created)]
    trail = (await api("GET", "/audit?action=job.create&limit=10")).data
    assert sorted(entry["target"] for entry in trail) == sorted(job["id"] for job in created)


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_batch_creates_and_starts_jobs(api):
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 5,
                                               "start": True})
    assert reply.code == 201, reply
    assert reply.json["message"] == "5 jobs created and started"
    started = reply.data
    assert len({job["id"] for job in started}) == 5
    assert len({job["pid"] for job in started}) == 5
    assert all(isinstance(job["pid"], int) and job["status"] in ("active", "done")
               for job in started), started
    for job in started:
        assert (await final(api, job["id"]))["status"] == "done"
        log = await messages(api, job["id"])
        assert log[0] == "STARTED job %s: worker Foobar, pid %d" % (job["id"], job["pid"])
        assert log[1:] == ["foobar", log[-1]] and log[-1].startswith("ENDED done")
    trail = (await api("GET", "/audit?action=job.start&limit=10")).data
    assert sorted((e["target"], e["detail"]) for e in trail) == sorted(
        (job["id"], "pid %d" % job["pid"]) for job in started)


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_announces_each_job_as_single_requests_would(api, ws_connect):
    events = await ws_connect("/events")
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 2,
                                               "start": True})
    ids = [job["id"] for job in reply.data]
    pids = {job["id"]: job["pid"] for job in reply.data}
    seen = {job_id: [] for job_id in ids}
    revisions = {job_id: [] for job_id in ids}
    while any(not actions or actions[-1][0] != "done" for actions in seen.values()):
        event = json.loads(await events.read_message())
        if event.get("type") == "job" and event["job"]["id"] in seen:
            job = event["job"]
            seen[job["id"]].append(event["action"] if event["action"] != "status"
                                   else (job["status"], job["pid"]))
            revisions[job["id"]].append(job["revision"])
    events.close()
    for job_id in ids:
        # One event per change: the start already carries the pid; each copy newer than the
        # one before it.
        assert seen[job_id] == ["created", ("active", pids[job_id]),
                                ("done", pids[job_id])], seen
        assert revisions[job_id] == sorted(set(revisions[job_id])), revisions


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_batch_is_all_or_none_and_names_each_problem(api, write_worker):
    write_worker("Secretive", SECRET_WORKER)
    before = job_count()
    specs = [{"worker": "Foobar"}, {"worker": "Secretive", "parameters": {"count": 0}},
             {"worker": "Foobar"}, {"worker": "X"}, "Foobar", {"parameters": {}},
             {"worker": "Foobar", "parameters": [1]}, {"worker": "Foobar", "start": True},
             {"worker": "Secretive"}, {"worker": 7}]
    reply = await api("POST", "/jobs/batch", {"jobs": specs, "start": True})
    assert_refused(reply, 400, "nothing was created: ",
                   "jobs[1].parameters: invalid parameters: count must be at least 1",
                   "jobs[3].worker: no worker named 'X'",
                   "jobs[4]: each job must be a JSON object",
                   'jobs[5].worker: "worker" is missing',
                   'jobs[6].parameters: "parameters" must be a JSON object or null, not list',
                   "jobs[7]: unknown key 'start'", "start goes beside jobs",
                   "jobs[8].parameters: invalid parameters: count is required",
                   'jobs[9].worker: "worker" must be a string')
    assert "jobs[0]" not in reply.json["message"] and "jobs[2]" not in reply.json["message"]
    assert job_count() == before


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_shows_its_first_problems_only(api):
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "X"}] * 25})
    assert_refused(reply, 400, "jobs[9].worker", "(and 15 more)")
    assert "jobs[10]" not in reply.json["message"]


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_checks_declared_parameters_and_keeps_secrets(api, write_worker):
    write_worker("Secretive", SECRET_WORKER)
    reply = await api("POST", "/jobs/batch", {"jobs": [
        {"worker": "Secretive", "parameters": {"count": 1, "token": "a-real-secret"}},
        {"worker": "Secretive", "parameters": {"count": 2}}], "start": True})
    assert reply.code == 201, reply
    assert [job["parameters"] for job in reply.data] == [
        {"count": 1, "token": "********"}, {"count": 2, "token": "********"}]
    assert "a-real-secret" not in reply.text
    for job, count in zip(reply.data, (1, 2)):
        assert (await final(api, job["id"]))["status"] == "done"
        assert "count %d" % count in await messages(api, job["id"])


@pytest.mark.gen_test(timeout=60)
async def test_the_shape_of_a_batch_is_checked(api):
    before = job_count()
    for body, words in [
            (["Foobar"], ["the body must be a JSON object like"]),
            ({}, ['"jobs" is missing']),
            ({"jobs": {"worker": "Foobar"}}, ['"jobs" must be a list']),
            ({"jobs": []}, ['"jobs" is empty']),
            ({"jobs": [{"worker": "Foobar"}], "start": "yes"}, ['"start" must be true or false']),
            ({"jobs": [{"worker": "Foobar"}], "jobz": 1}, ["unknown key 'jobz'",
                                                          "the body takes jobs, start, timeout"])]:
        assert_refused(await api("POST", "/jobs/batch", body), 400, *words)
    assert_refused(await api("POST", "/jobs/batch", "not json"), 400, "not valid JSON")
    assert job_count() == before


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"max_batch": 4}])
async def test_a_batch_has_a_size_limit(api):
    before = job_count()
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 5})
    assert_refused(reply, 400, "the batch holds 5 jobs; at most 4 go in one request")
    assert job_count() == before
    assert (await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 4})).code == 201


def test_the_size_limit_is_a_sane_default():
    assert Config.max_batch == 1000


@pytest.mark.gen_test(timeout=60)
async def test_who_may_send_a_batch(api):
    viewer, operator = user("viewer"), user("operator")
    before = job_count()
    refused = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}]}, auth=viewer)
    assert_refused(refused, 403, "your role (viewer) may not POST /jobs/batch")
    refused = await api("POST", "/jobs", {"worker": "Foobar", "start": True}, auth=viewer)
    assert refused.code == 403, refused
    assert job_count() == before
    allowed = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}], "start": True},
                        auth=operator)
    assert allowed.code == 201 and allowed.data[0]["created_by"] == "a-operator", allowed
    assert (await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}]},
                      auth=None)).code == 401


@pytest.mark.gen_test(timeout=60)
async def test_other_methods_on_the_batch_are_refused(api):
    for method in ("GET", "PUT", "DELETE"):
        reply = await api(method, "/jobs/batch", "{}" if method == "PUT" else None)
        assert_refused(reply, 405, "%s is not allowed on /jobs/batch" % method)
        assert reply.headers["Allow"] == "POST"


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_none_of_which_could_start_is_503(api, refusing_supervisor):
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 3,
                                               "start": True})
    ids = refusing_supervisor.refused
    assert_refused(reply, 503, "3 jobs were created (%s ... %s) but none could start"
                   % (ids[0], ids[-1]), "they are now error")
    for job_id in ids:
        job = (await api("GET", "/jobs/%s" % job_id)).data[0]
        assert job["status"] == "error" and job["error"].startswith("could not start"), job


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_batch_some_of_which_could_not_start(api, refusing_supervisor):
    refusing_supervisor.choose = lambda specs: {specs[1]["job_id"]}  # the second job only
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 3,
                                               "start": True})
    assert reply.code == 201, reply
    assert reply.json["message"] == ("3 jobs created; 2 started, 1 could not start and are now "
                                     "error: the supervisor refused start: OSError: out of "
                                     "processes")
    first, refused, last = reply.data
    assert refused["status"] == "error" and refused["pid"] is None, refused
    assert "could not start" in refused["error"]
    for job in (first, last):
        assert isinstance(job["pid"], int)
        assert (await final(api, job["id"]))["status"] == "done"


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_jobs_of_a_batch_can_be_stopped_at_once(api, write_worker):
    write_worker("Sleeper", SLEEPER)
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Sleeper"}] * 4,
                                               "start": True})
    assert reply.code == 201, reply
    for job in reply.data:  # no pause: the stop may reach a leader just forked
        stopped = await api("PUT", "/jobs/%s/status" % job["id"], "stop")
        assert stopped.code == 202, stopped
    for job in reply.data:
        ended = await final(api, job["id"])
        assert ended["status"] == "stop", ended


@pytest.mark.gen_test(timeout=60)
async def test_a_supervisor_without_start_many_still_starts_a_batch(api, server):
    client = server.processes.supervisor
    assert "start_many" in client.supervisor_ops
    client.supervisor_ops = tuple(op for op in client.supervisor_ops if op != "start_many")
    reply = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 3,
                                               "start": True})
    assert reply.code == 201, reply
    for job in reply.data:
        assert isinstance(job["pid"], int)
        assert (await final(api, job["id"]))["status"] == "done"


# --- the Python client ---------------------------------------------------------------------------

def test_the_client_creates_and_starts_one_job_or_a_batch(servers):
    server = servers().wait_ready()
    client = Client(server.url, *server.auth)
    one = client.create_job("Foobar", start=True)
    assert one["status"] in ("active", "done") and isinstance(one["pid"], int), one
    assert client.create_job("Foobar")["status"] == "idle"
    idle = client.create_jobs([("Foobar",), ("TestWorker", {"count": 1}),
                               {"worker": "Foobar", "parameters": None}])
    assert [(job["worker"], job["status"]) for job in idle] == [
        ("Foobar", "idle"), ("TestWorker", "idle"), ("Foobar", "idle")]
    started = client.create_jobs([("Foobar", {})] * 3, start=True)
    assert all(isinstance(job["pid"], int) for job in started), started
    for job in [one, *started]:
        assert client.wait(job["id"])["status"] == "done"
    before = len(client.jobs(limit=1000))
    with pytest.raises(BadRequestError) as refused:
        client.create_jobs([("Foobar",), ("Nope",)], start=True)
    assert refused.value.status == 400
    assert "jobs[1].worker: no worker named 'Nope'" in refused.value.message
    assert len(client.jobs(limit=1000)) == before
    assert client.run("Foobar")["status"] == "done"
