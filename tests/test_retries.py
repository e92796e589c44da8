"""Retries: a job that ends ``error`` is run again by a new job, after a delay, up to its
``retries``; the chain is linked (``retry_of``, ``attempt``) and shown by ``/jobs/ID/attempts``.

Through real jobs: the policy stored at creation (its own, the batch's, its worker's), bad
overrides refused naming the field with nothing stored, the retry row made in the end's
transaction (scheduled, start_at = end + delay * backoff ** (attempt - 1), secrets sealed anew,
audited by the server), a time limit not retried unless ``retry_on_timeout``, a stop or kill
through JobJoker never retried, an outside SIGKILL retried with reason ``signal``, a chain of
three attempts run to its end by the clock that starts scheduled jobs, and a retry still
started after a server restart.
"""
import os
import signal

import pytest

from jobjoker import jobstore, retries
from jobjoker.states import JobStatus
from jobjoker.worker_settings import MAX_RETRIES
from tests.support import SLEEPER, STUBBORN, poll, until
from tests.test_cli import client, jj  # noqa: F401  (fixtures)
from tests.test_restart import cleanup, services, started_server  # noqa: F401,F811

# Fails until it has run ``succeed_at`` times (counted in a file), then succeeds.
FLAKY = '''import os
from jobjoker import Worker


class Flaky(Worker):
    """Fails until its attempt number ``succeed_at`` (0: always)."""
    parameters = {"counter": {"type": "string"}, "succeed_at": {"type": "integer", "default": 0},
                  "token": {"type": "string", "secret": True, "required": False}}

    def run(self):
        with open(self.params["counter"], "a") as counter:
            counter.write("x")
        runs = os.path.getsize(self.params["counter"])
        self.log("run %d with token %s" % (runs, self.params.get("token")))
        if runs != self.params["succeed_at"]:
            raise RuntimeError("run %d failed" % runs)
'''

DECLARES = '''from jobjoker import Worker


class Declares(Worker):
    """Declares its retry policy."""
    retries = 3
    retry_delay = 10
    retry_backoff = 2
    retry_on_timeout = True

    def run(self):
        raise RuntimeError("no")
'''

SLOW = 3600  # a delay no test waits for: the retry stays scheduled


@pytest.fixture
def workers(write_worker):
    write_worker("Flaky", FLAKY)
    write_worker("Declares", DECLARES)
    write_worker("Sleeper", SLEEPER)
    write_worker("Stubborn", STUBBORN)


@pytest.fixture
def counter(tmp_path):
    return str(tmp_path / "runs")


async def create(api, body, code=201):
    reply = await api("POST", "/jobs", body)
    assert reply.code == code, reply
    return reply.data[0] if code == 201 else reply


async def attempts_of(api, job_id):
    reply = await api("GET", "/jobs/%s/attempts" % job_id)
    assert reply.code == 200, reply
    return reply.data


async def retry_of(api, job_id):
    """The job that retries ``job_id`` (once its end made it)."""
    async def found():
        chain = await attempts_of(api, job_id)
        following = [job for job in chain if job["retry_of"] == job_id]
        return following[0] if following else None
    return await poll(found, what="the retry of job %s" % job_id)


async def running(api, job_id):
    async def responded():
        job = (await api("GET", "/jobs/%s" % job_id)).data[0]
        return job if job["response_count"] >= 1 else None
    return await poll(responded, what="job %s to respond" % job_id)


# --- the policy at creation ----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_the_policy_is_the_jobs_else_the_workers_else_none(api, workers, counter):
    plain = await create(api, {"worker": "Sleeper"})
    assert (plain["attempt"], plain["retries"], plain["retry_delay"], plain["retry_backoff"],
            plain["retry_on_timeout"], plain["retry_of"]) == (1, 0, 10, 1, False, None)
    declared = await create(api, {"worker": "Declares"})
    assert (declared["retries"], declared["retry_delay"], declared["retry_backoff"],
            declared["retry_on_timeout"]) == (3, 10, 2, True)
    own = await create(api, {"worker": "Declares", "retries": 1, "retry_delay": 0.5,
                             "retry_backoff": 1.5, "retry_on_timeout": False})
    assert (own["retries"], own["retry_delay"], own["retry_backoff"],
            own["retry_on_timeout"]) == (1, 0.5, 1.5, False)
    batch = await api("POST", "/jobs/batch", {"retries": 5, "retry_delay": 1, "jobs": [
        {"worker": "Sleeper"}, {"worker": "Declares", "retries": 2}]})
    assert batch.code == 201, batch
    assert [(job["retries"], job["retry_delay"]) for job in batch.data] == [(5, 1), (2, 1)]
    rerun = await api("POST", "/jobs/%s/rerun" % own["id"], {"start": False, "retries": 4})
    assert rerun.code == 201, rerun
    assert (rerun.data[0]["retries"], rerun.data[0]["retry_delay"],
            rerun.data[0]["attempt"]) == (4, 0.5, 1)  # the old job's delay, a chain of its own


@pytest.mark.gen_test(timeout=60)
async def test_bad_overrides_are_refused_naming_the_field_and_nothing_is_stored(api, workers):
    bad = [("retries", MAX_RETRIES + 1), ("retries", -1), ("retries", 1.5), ("retries", True),
           ("retries", "3"), ("retry_delay", -1), ("retry_delay", "10"),
           ("retry_delay", float("inf")), ("retry_backoff", 0.5), ("retry_backoff", 1000),
           ("retry_on_timeout", "yes"), ("retry_on_timeout", 1)]
    for field, value in bad:
        if value == float("inf"):
            continue  # not JSON; the JSON parser refuses it first
        reply = await create(api, {"worker": "Sleeper", field: value, "start": True}, 400)
        assert '"%s"' % field in reply.json["message"], reply
        batch = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Sleeper"},
                                                           {"worker": "Sleeper", field: value}]})
        assert batch.code == 400 and "jobs[1].%s" % field in batch.json["message"], batch
        whole = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Sleeper"}],
                                                  field: value})
        assert whole.code == 400 and '"%s"' % field in whole.json["message"], whole
    assert "from 0 to %d" % MAX_RETRIES in (await create(api, {
        "worker": "Sleeper", "retries": MAX_RETRIES + 1}, 400)).json["message"]
    assert (await api("GET", "/jobs")).data == []
    job = await create(api, {"worker": "Sleeper"})
    refused = await api("POST", "/jobs/%s/rerun" % job["id"], {"retries": -2})
    assert refused.code == 400 and '"retries"' in refused.json["message"], refused
    assert len((await api("GET", "/jobs")).data) == 1


# --- the retry row -------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=90)
async def test_a_failed_job_is_retried_by_a_scheduled_job_like_it(api, app, workers, counter,
                                                                  wait_for_status):
    first = await create(api, {"worker": "Flaky", "parameters": {
        "counter": counter, "token": "s3cret"}, "retries": 2, "retry_delay": SLOW,
        "timeout": 600, "start": True})
    ended = await wait_for_status(first["id"])
    assert (ended["status"], ended["reason"]) == ("error", "exception"), ended
    retry = await retry_of(api, first["id"])
    assert retry["status"] == "scheduled" and retry["attempt"] == 2
    assert retry["start_at"] == pytest.approx(ended["stoptime"] + SLOW)
    assert (retry["worker"], retry["parameters"], retry["timeout"], retry["retries"],
            retry["retry_delay"], retry["created_by"]) == (
        "Flaky", ended["parameters"], 600, 2, SLOW, "admin")
    storage = app.settings["storage"]
    old, new = [await storage.read(jobstore.get, job_id) for job_id in (first["id"],
                                                                       retry["id"])]
    box = app.settings["jobs"].secrets
    assert box.open(new.secret_parameters, new.id) == {"token": "s3cret"}
    assert new.secret_parameters != old.secret_parameters  # sealed anew, its own
    audit = (await api("GET", "/audit?action=job.retry")).data
    assert [(entry["actor"], entry["target"]) for entry in audit] == [(None, retry["id"])]
    chain = await attempts_of(api, retry["id"])
    assert [job["id"] for job in chain] == [first["id"], retry["id"]]
    reply = await api("GET", "/jobs/%s/attempts" % first["id"])
    assert reply.json["message"] == "attempt 1 of 3"


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_each_retrys_delay_grows_by_the_backoff(storage):
    """Attempt 3 of a chain with delay 10 and backoff 2 starts 40 s after its end."""
    class Audit:
        def record(self, tx, actor, action, target, detail):
            self.entry = (actor, action, target)
    storage.end_hooks.append(retries.RetryHook(None, Audit()))

    def third_attempt_fails(tx):
        jobstore.insert(tx, [{"id": "c", "worker": "W", "status": "idle", "parameters": "{}",
                              "created": 1.0, "attempt": 3, "retries": 5, "retry_delay": 10.0,
                              "retry_backoff": 2.0, "retry_on_timeout": False}])
        jobstore.transition(tx, "c", JobStatus.ACTIVE)
        jobstore.transition(tx, "c", JobStatus.ERROR, stoptime=1000.0, reason="exit")
        return jobstore.next_attempt("c")
    retry = await storage.transaction(third_attempt_fails)
    assert (retry.status, retry.attempt, retry.retry_of, retry.start_at) == (
        "scheduled", 4, "c", 1000.0 + 10 * 2 ** 2)

    def last_attempt_fails(tx):
        jobstore.insert(tx, [{"id": "d", "worker": "W", "status": "idle", "parameters": "{}",
                              "created": 1.0, "attempt": 6, "retries": 5, "retry_delay": 1.0,
                              "retry_backoff": 1.0, "retry_on_timeout": False}])
        jobstore.transition(tx, "d", JobStatus.ACTIVE)
        jobstore.transition(tx, "d", JobStatus.ERROR, stoptime=1000.0, reason="exit")
        return jobstore.next_attempt("d")
    assert await storage.transaction(last_attempt_fails) is None  # 1 + 5 attempts: done


@pytest.mark.gen_test(timeout=90)
async def test_a_time_limit_is_retried_only_with_retry_on_timeout(api, workers,
                                                                 wait_for_status):
    plain = await create(api, {"worker": "Sleeper", "timeout": 1, "retries": 2,
                               "retry_delay": SLOW, "start": True})
    allowed = await create(api, {"worker": "Sleeper", "timeout": 1, "retries": 2,
                                 "retry_delay": SLOW, "retry_on_timeout": True, "start": True})
    for job in (plain, allowed):
        ended = await wait_for_status(job["id"])
        assert (ended["status"], ended["reason"]) == ("error", "timeout"), ended
    retry = await retry_of(api, allowed["id"])
    assert retry["status"] == "scheduled"
    assert [job["id"] for job in await attempts_of(api, plain["id"])] == [plain["id"]]


@pytest.mark.gen_test(timeout=90)
async def test_a_stop_or_kill_through_jobjoker_is_never_retried(api, workers, wait_for_status):
    stopped = await create(api, {"worker": "Sleeper", "retries": 3, "retry_delay": 0,
                                 "start": True})
    killed = await create(api, {"worker": "Stubborn", "retries": 3, "retry_delay": 0,
                                "start": True})
    for job, command in ((stopped, "stop"), (killed, "kill")):
        await running(api, job["id"])
        assert (await api("PUT", "/jobs/%s/status" % job["id"], command)).code == 202
        ended = await wait_for_status(job["id"])
        assert (ended["status"], ended["reason"]) == ("stop", "stopped"), ended
        assert [j["id"] for j in await attempts_of(api, job["id"])] == [job["id"]]
    assert len((await api("GET", "/jobs")).data) == 2


@pytest.mark.gen_test(timeout=90)
async def test_a_sigkill_from_outside_is_retried(api, workers, wait_for_status):
    job = await create(api, {"worker": "Sleeper", "retries": 1, "retry_delay": SLOW,
                             "start": True})
    await running(api, job["id"])
    os.kill(job["pid"], signal.SIGKILL)  # as the OOM killer does
    ended = await wait_for_status(job["id"])
    assert (ended["status"], ended["reason"]) == ("error", "signal"), ended
    retry = await retry_of(api, job["id"])
    assert (retry["status"], retry["attempt"]) == ("scheduled", 2)


# --- chains run by the clock that starts scheduled jobs -----------------------------------------

async def chain_ended(api, job_id, length):
    """The chain of ``job_id`` once it holds ``length`` attempts, all ended."""
    async def ended():
        chain = await attempts_of(api, job_id)
        done = len(chain) == length and all(
            job["status"] in ("done", "error", "stop") for job in chain)
        return chain if done else None
    return await poll(ended, what="a chain of %d ended attempts" % length)


@pytest.mark.gen_test(timeout=120)
async def test_a_chain_of_three_attempts(api, workers, counter, tmp_path):
    """Fails twice, then succeeds: three attempts, linked, the last done; and one that always
    fails stops after 1 + retries attempts."""
    first = await create(api, {"worker": "Flaky", "parameters": {
        "counter": counter, "succeed_at": 3, "token": "t0ken"}, "retries": 5,
        "retry_delay": 0.2, "retry_backoff": 1.5, "start": True})
    chain = await chain_ended(api, first["id"], 3)
    assert [(job["attempt"], job["status"], job["reason"]) for job in chain] == [
        (1, "error", "exception"), (2, "error", "exception"), (3, "done", "completed")]
    assert [job["retry_of"] for job in chain] == [None, chain[0]["id"], chain[1]["id"]]
    for before, after, attempt in ((chain[0], chain[1], 1), (chain[1], chain[2], 2)):
        assert after["start_at"] == pytest.approx(before["stoptime"] + 0.2 * 1.5 ** (attempt - 1))
        assert after["starttime"] >= after["start_at"] - 0.01
    log = (await api("GET", "/jobs/%s/log" % chain[2]["id"])).data
    assert any("run 3 with token" in entry["message"] for entry in log)  # its secret reached it

    always = await create(api, {"worker": "Flaky", "parameters": {
        "counter": str(tmp_path / "always")}, "retries": 2, "retry_delay": 0, "start": True})
    chain = await chain_ended(api, always["id"], 3)
    assert [job["status"] for job in chain] == ["error"] * 3
    assert (await api("GET", "/jobs/%s/attempts" % chain[2]["id"])).json["message"] == \
        "attempt 3 of 3"


@pytest.mark.gen_test(timeout=180)
async def test_a_scheduled_retry_still_starts_after_a_restart(config, cleanup, workers,
                                                              counter):
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job, _ = await jobs.submit_job({"worker": "Flaky", "parameters": {
        "counter": counter, "succeed_at": 2}, "retries": 1, "retry_delay": 3, "start": True})
    storage = first.storage

    async def retried():
        following = await storage.read(jobstore.next_attempt, job["id"])
        return following
    retry = await poll(retried, what="the retry row")
    assert retry.status == "scheduled"
    await first.stop()

    second = await started_server(config)
    cleanup.append(second)
    jobs = services(second)

    async def done():
        found = await jobs.get_job(retry.id)
        return found if found["status"] in ("done", "error", "stop") else None
    final = await poll(done, what="the retry to run after the restart")
    assert (final["status"], final["attempt"], final["retry_of"]) == ("done", 2, job["id"])
    await second.stop(kill_jobs=True)


# --- the command line and the client -------------------------------------------------------------

def test_the_command_line_sets_retries_and_shows_the_chain(jj, client):  # noqa: F811
    started = jj("run", "Failing", "--retries", "2", "--retry-delay", str(SLOW),
                 "--retry-backoff", "2")
    assert started.returncode == 0, started.stderr
    job_id = started.stdout.strip()
    assert client.wait(job_id)["reason"] == "exception"
    chain = until(lambda: len(client.attempts(job_id)) == 2 and client.attempts(job_id),
                  60, "the retry of job %s" % job_id)
    assert [(job["attempt"], job["retries"], job["retry_backoff"]) for job in chain] == [
        (1, 2, 2), (2, 2, 2)]
    shown = jj("attempts", job_id)
    assert "attempt 1 of 3" in shown.stdout and "attempt 2 of 3" in shown.stdout, shown.stdout
    assert "exception" in shown.stdout and "scheduled" in shown.stdout
    assert "attempt 2 of 3" in jj("jobs", "show", chain[1]["id"]).stdout
    refused = jj("run", "Failing", "--retries", str(MAX_RETRIES + 1))
    assert refused.returncode == 1 and '"retries"' in refused.stderr, refused.stderr
    again = client.rerun(job_id, start=False, retry={"retries": 0})
    assert (again["retries"], again["retry_delay"], again["attempt"]) == (0, SLOW, 1)


@pytest.mark.gen_test(timeout=90)
async def test_cancelling_a_scheduled_retry_ends_the_chain(api, workers, counter,
                                                           wait_for_status):
    first = await create(api, {"worker": "Flaky", "parameters": {"counter": counter},
                               "retries": 3, "retry_delay": SLOW, "start": True})
    await wait_for_status(first["id"])
    retry = await retry_of(api, first["id"])
    cancelled = await api("PUT", "/jobs/%s/status" % retry["id"], "stop")
    assert cancelled.code == 200, cancelled
    assert (cancelled.data[0]["status"], cancelled.data[0]["reason"]) == ("stop", "cancelled")
    assert [job["id"] for job in await attempts_of(api, first["id"])] == [first["id"],
                                                                          retry["id"]]
