"""Time limits: a job's own ``timeout``, its worker's declared one, the server's
``--default-timeout``; the stop at the limit (SIGTERM, then SIGKILL for a job that ignores it),
ending ``error`` with ``timed out after N s``; a job that ends first is untouched; bad input
refused (400 naming the field, nothing created); the limit enforced across a server restart.

Limits are short (1-2 s) so the tests are quick, but only outcomes are asserted, never how
long anything took.
"""
import os
import signal
import time

import pytest

from jobjoker import jobspec, outcome, workers
from jobjoker.errors import BadRequest, ValidationError
from tests.support import SLEEPER, STUBBORN, poll
from tests.test_restart import cleanup, services, started_server  # noqa: F401,F811


LIMITED = '''
import time

from jobjoker import Worker


class Limited(Worker):
    """Declares a time limit of its own."""

    timeout = 0.5 * 2

    def run(self):
        while self.is_active():
            time.sleep(0.02)
'''

QUICK = '''
from jobjoker import Worker


class Quick(Worker):
    """Ends at once."""

    timeout = 3600

    def run(self):
        self.log("quick")
'''


@pytest.fixture
def sleepers(write_worker):
    write_worker("Sleeper", SLEEPER)
    write_worker("Stubborn", STUBBORN)
    write_worker("Limited", LIMITED)
    write_worker("Quick", QUICK)


async def log_of(api, job_id):
    return [entry["message"] for entry in
            (await api("GET", "/jobs/%s/log?limit=1000" % job_id)).data]


# --- the pure parts ------------------------------------------------------------------------------

def test_the_message_says_the_timeout_as_given():
    assert outcome.timed_out_message(3600.0) == "timed out after 3600 s"
    assert outcome.timed_out_message(1.5) == "timed out after 1.5 s"
    assert outcome.timed_out_message(1e6) == "timed out after 1000000 s"


def test_a_timeout_must_be_a_positive_number():
    assert jobspec.check_timeout(None) is None
    assert jobspec.check_timeout(2) == 2
    for bad in (0, -1, True, "10", float("nan"), float("inf"), [], {}, 1e12):
        with pytest.raises(BadRequest, match='"timeout"'):
            jobspec.check_timeout(bad)


def test_a_worker_declares_its_timeout_statically():
    code = "from jobjoker import Worker\nclass W(Worker):\n    timeout = %s\n    def run(self): pass\n"
    assert workers.inspect_worker("W", code % "3600")[2] == {"timeout": 3600}
    assert workers.inspect_worker("W", code % "2 * 60 * 60")[2] == {"timeout": 7200}
    assert workers.inspect_worker("W", code % "None")[2] == {}
    for bad in ("0", "-5", "'long'", "LIMIT", "int('5')", "True", "1 / 0"):
        with pytest.raises(ValidationError, match="line 3: timeout must be a positive number"):
            workers.inspect_worker("W", code % bad)


# --- through the API -----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=90)
async def test_a_job_over_its_limit_is_stopped_and_ends_error(api, sleepers, wait_for_status):
    created = await api("POST", "/jobs", {"worker": "Sleeper", "timeout": 1, "start": True})
    assert created.code == 201, created
    job = created.data[0]
    assert job["timeout"] == 1 and job["deadline"] == pytest.approx(job["starttime"] + 1)
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "error", ended
    assert ended["error"] == "timed out after 1 s"
    assert ended["stop_reason"] == "timeout" and ended["stop_requested"] is not None
    assert ended["exit_signal"] is None  # it honoured the SIGTERM
    log = await log_of(api, job["id"])
    assert log[-1].startswith("ENDED error"), log
    audit = (await api("GET", "/audit?action=job.timeout")).data
    assert [(e["actor"], e["target"]) for e in audit] == [(None, job["id"])]


@pytest.mark.gen_test(timeout=90)
async def test_a_job_that_ignores_sigterm_is_killed_at_its_limit(api, sleepers,
                                                                 wait_for_status):
    job = (await api("POST", "/jobs", {"worker": "Stubborn", "timeout": 1.5,
                                       "start": True})).data[0]
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "error" and ended["error"] == "timed out after 1.5 s", ended
    assert ended["exit_signal"] == signal.SIGKILL


@pytest.mark.gen_test(timeout=90)
async def test_the_workers_declared_timeout_applies(api, sleepers, wait_for_status):
    job = (await api("POST", "/jobs", {"worker": "Limited", "start": True})).data[0]
    assert job["timeout"] == 1
    ended = await wait_for_status(job["id"])
    assert (ended["status"], ended["error"]) == ("error", "timed out after 1 s")
    assert (await api("GET", "/workers/Limited")).data[0]["timeout"] == 1
    assert (await api("GET", "/workers/Sleeper")).data[0]["timeout"] is None
    # The job's own wins over its worker's.
    own = (await api("POST", "/jobs", {"worker": "Limited", "timeout": 7200})).data[0]
    assert own["timeout"] == 7200 and own["deadline"] is None  # not started: no deadline yet


@pytest.mark.gen_test(timeout=90)
async def test_a_job_that_ends_before_its_limit_is_untouched(api, sleepers, wait_for_status):
    job = (await api("POST", "/jobs", {"worker": "Quick", "start": True})).data[0]
    assert job["timeout"] == 3600
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "done" and ended["error"] is None, ended
    assert ended["stop_requested"] is None and ended["stop_reason"] is None
    assert (await api("GET", "/audit?action=job.timeout")).data == []


@pytest.mark.gen_test(timeout=90)
async def test_a_batch_takes_a_timeout_for_all_and_one_per_job(api, sleepers):
    reply = await api("POST", "/jobs/batch", {"timeout": 60, "jobs": [
        {"worker": "Sleeper"}, {"worker": "Sleeper", "timeout": 5}, {"worker": "Limited"}]})
    assert reply.code == 201, reply
    assert [job["timeout"] for job in reply.data] == [60, 5, 60]


@pytest.mark.gen_test(timeout=90)
async def test_a_bad_timeout_is_refused_naming_the_field_and_nothing_is_created(api, sleepers):
    for bad in (0, -3, "10", True, [1], {"s": 1}):
        reply = await api("POST", "/jobs", {"worker": "Sleeper", "timeout": bad, "start": True})
        assert reply.code == 400 and '"timeout"' in reply.json["message"], reply
        batch = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Sleeper"},
                                                           {"worker": "Sleeper", "timeout": bad}]})
        assert batch.code == 400 and "jobs[1].timeout" in batch.json["message"], batch
        whole = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Sleeper"}],
                                                  "timeout": bad})
        assert whole.code == 400 and '"timeout"' in whole.json["message"], whole
    assert (await api("GET", "/jobs")).data == []


@pytest.mark.gen_test(timeout=90)
async def test_a_worker_with_a_bad_timeout_is_refused_and_shown_broken(api, write_worker):
    code = LIMITED.replace("0.5 * 2", "-1")
    saved = await api("PUT", "/workers/Limited", code)
    assert saved.code == 422 and "timeout must be a positive number" in saved.json["message"], \
        saved
    write_worker("Limited", code)  # put there by hand
    shown = (await api("GET", "/workers/Limited")).data[0]
    assert "timeout must be a positive number" in shown["error"]
    refused = await api("POST", "/jobs", {"worker": "Limited"})
    assert refused.code == 422 and "cannot run jobs until its code is fixed" in \
        refused.json["message"], refused


class TestServerDefault:
    @pytest.fixture
    def config_overrides(self):
        return {"default_timeout": 1.0}

    @pytest.mark.gen_test(timeout=90)
    async def test_the_servers_default_applies_last(self, api, sleepers, wait_for_status):
        job = (await api("POST", "/jobs", {"worker": "Sleeper", "start": True})).data[0]
        assert job["timeout"] == 1
        ended = await wait_for_status(job["id"])
        assert (ended["status"], ended["error"]) == ("error", "timed out after 1 s")
        declared = (await api("POST", "/jobs", {"worker": "Quick"})).data[0]
        assert declared["timeout"] == 3600  # the worker's wins over the server's


# --- across a restart ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_a_time_limit_is_enforced_across_a_server_restart(config, cleanup, sleepers):
    """The first server stops (its jobs run on) before the limit; the second, started after the
    deadline has passed, stops the job at once from the deadline in the database."""
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job, _ = await jobs.submit_job({"worker": "Sleeper", "timeout": 2, "start": True})
    await first.stop()  # the job keeps running, with no server to stop it
    assert os.getpgid(job["pid"]) == job["pid"]
    deadline = job["deadline"]
    await poll(lambda: time.time() > deadline + 0.5, what="the deadline to pass")
    assert os.getpgid(job["pid"]) == job["pid"]  # nobody stopped it meanwhile

    second = await started_server(config)
    cleanup.append(second)
    jobs = services(second)

    async def ended():
        found = await jobs.get_job(job["id"])
        return found if found["status"] not in ("active", "paused") else None
    final = await poll(ended, what="the job to end at its time limit after the restart")
    assert (final["status"], final["error"]) == ("error", "timed out after 2 s"), final
    assert final["stop_reason"] == "timeout"


@pytest.mark.gen_test(timeout=120)
async def test_a_deadline_still_ahead_is_rearmed_by_a_restarted_server(config, cleanup,
                                                                       sleepers):
    first = await started_server(config)
    cleanup.append(first)
    job, _ = await services(first).submit_job({"worker": "Stubborn", "timeout": 3,
                                               "start": True})
    await first.stop()
    second = await started_server(config)
    cleanup.append(second)
    jobs = services(second)
    assert job["id"] in second.processes.running

    async def ended():
        found = await jobs.get_job(job["id"])
        return found if found["status"] not in ("active", "paused") else None
    final = await poll(ended, what="the job to end at its time limit")
    assert (final["status"], final["error"]) == ("error", "timed out after 3 s"), final
    assert final["exit_signal"] == signal.SIGKILL
