"""Why a job ended, for machines: its ``reason`` (``states.REASONS``), reached through real jobs.

Each ending is made as it happens in life: run() returns or raises, ``sys.exit(3)``, a SIGKILL
or a SIGTERM from outside JobJoker, a time limit, a stop or kill through the API, a start that
fails (secret values no key opens), a process lost while the server was away. And a move to a
final status without a reason is refused: no code path can forget it.
"""
import os
import signal

import pytest

from jobjoker import jobstore, outcome
from jobjoker.states import REASONS, JobStatus
from tests.support import FAILING_WORKER, SLEEPER, STUBBORN, poll
from tests.test_restart import cleanup, services, started_server  # noqa: F401,F811

EXITS = '''import sys
from jobjoker import Worker


class Exits(Worker):
    """Exits with code 3, raising nothing (sys.exit)."""
    def run(self):
        sys.exit(3)
'''

QUICK = '''from jobjoker import Worker


class Quick(Worker):
    """Ends at once."""
    def run(self):
        self.log("quick")
'''

SECRETIVE = '''import time
from jobjoker import Worker


class Secretive(Worker):
    """Takes a secret."""
    parameters = {"token": {"type": "string", "secret": True}}

    def run(self):
        self.log("has a secret")
'''


@pytest.fixture
def workers(write_worker):
    for name, code in (("Exits", EXITS), ("Quick", QUICK), ("Failing", FAILING_WORKER),
                       ("Sleeper", SLEEPER), ("Stubborn", STUBBORN),
                       ("Secretive", SECRETIVE)):
        write_worker(name, code)


async def started(api, worker, **body):
    reply = await api("POST", "/jobs", dict(body, worker=worker, start=True))
    assert reply.code == 201, reply
    return reply.data[0]


async def running(api, job_id):
    """The job once its worker runs its own code (its SIGTERM handler is in place)."""
    async def responded():
        job = (await api("GET", "/jobs/%s" % job_id)).data[0]
        return job if job["response_count"] >= 1 else None
    return await poll(responded, what="job %s to respond" % job_id)


# --- the pure parts ------------------------------------------------------------------------------

def test_every_outcome_has_a_documented_reason():
    cases = [  # (stop requested, exit record, run end, stop reason) -> (status, reason)
        ((False, {"returncode": 0}, None, None), ("done", "completed")),
        ((False, {"returncode": 3}, {"returncode": 3, "outcome": "error"}, None),
         ("error", "exit")),
        ((False, {"returncode": 1}, {"returncode": 1, "error": "ValueError: x"}, None),
         ("error", "exception")),
        ((False, {"returncode": 3}, {"returncode": 3, "error": "sys.exit(3)"}, None),
         ("error", "exit")),
        ((False, {"signal": 9}, None, None), ("error", "signal")),
        ((False, {"returncode": outcome.EXIT_STOPPED},
          {"returncode": outcome.EXIT_STOPPED, "outcome": "stopped"}, None), ("stop", "signal")),
        ((True, {"signal": 9}, None, None), ("stop", "stopped")),
        ((True, {"returncode": 0}, None, outcome.TIMEOUT), ("error", "timeout")),
        ((False, {"returncode": None, "signal": None, "lost": "gone"}, None, None),
         ("error", "lost")),
    ]
    for (stop, record, run_end, why), expected in cases:
        status, reason, _, _ = outcome.final_outcome(stop, record, run_end, why, 5)
        assert (status.value, reason) == expected, (record, run_end)
        assert reason in REASONS


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_final_move_without_a_reason_is_refused(storage):
    def idle_then_active(tx):
        jobstore.insert(tx, [{"id": "a", "worker": "W", "status": "idle", "parameters": "{}",
                              "created": 1.0}])
        jobstore.transition(tx, "a", JobStatus.ACTIVE)
    await storage.transaction(idle_then_active)
    for move in (lambda tx: jobstore.transition(tx, "a", JobStatus.DONE),
                 lambda tx: jobstore.transition_many(tx, ["a"], JobStatus.ERROR),
                 lambda tx: jobstore.transition(tx, "a", JobStatus.STOP, reason="because"),
                 lambda tx: jobstore.transition(tx, "a", JobStatus.PAUSED, reason="exit")):
        with pytest.raises(ValueError, match="reason"):
            await storage.transaction(move)
    assert (await storage.read(jobstore.get, "a")).status == "active"
    ended = await storage.transaction(jobstore.transition, "a", JobStatus.DONE,
                                      reason="completed")
    assert (ended.status, ended.reason) == ("done", "completed")


# --- through real jobs ---------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_how_a_job_ends_is_its_reason(api, workers, wait_for_status):
    done = await started(api, "Quick")
    exits = await started(api, "Exits")
    raises = await started(api, "Failing")
    timed_out = await started(api, "Sleeper", timeout=1)
    expected = {done["id"]: ("done", "completed"), exits["id"]: ("error", "exit"),
                raises["id"]: ("error", "exception"), timed_out["id"]: ("error", "timeout")}
    for job_id, (status, reason) in expected.items():
        ended = await wait_for_status(job_id)
        assert (ended["status"], ended["reason"]) == (status, reason), ended
    assert (await api("GET", "/jobs/%s" % exits["id"])).data[0]["error"].startswith("sys.exit(3)")


@pytest.mark.gen_test(timeout=120)
async def test_a_stop_or_kill_through_jobjoker_is_stopped(api, workers, wait_for_status):
    stopped = await started(api, "Sleeper")
    killed = await started(api, "Stubborn")
    await running(api, stopped["id"])
    await running(api, killed["id"])
    assert (await api("PUT", "/jobs/%s/status" % stopped["id"], "stop")).code == 202
    assert (await api("PUT", "/jobs/%s/status" % killed["id"], "kill")).code == 202
    for job_id in (stopped["id"], killed["id"]):
        ended = await wait_for_status(job_id)
        assert (ended["status"], ended["reason"]) == ("stop", "stopped"), ended


@pytest.mark.gen_test(timeout=120)
async def test_a_signal_from_outside_is_signal(api, workers, wait_for_status):
    """The OOM killer's SIGKILL ends a job error; a SIGTERM from outside that the worker
    honours (someone's ``kill PID``) ends it stop: both say ``signal``."""
    oom = await started(api, "Sleeper")
    termed = await started(api, "Sleeper")
    await running(api, oom["id"])
    await running(api, termed["id"])
    os.kill(oom["pid"], signal.SIGKILL)
    os.kill(termed["pid"], signal.SIGTERM)
    ended = await wait_for_status(oom["id"])
    assert (ended["status"], ended["reason"], ended["error"]) == \
        ("error", "signal", "killed by SIGKILL"), ended
    ended = await wait_for_status(termed["id"])
    assert (ended["status"], ended["reason"]) == ("stop", "signal"), ended
    assert ended["error"] == "stopped by a SIGTERM from outside JobJoker"


@pytest.mark.gen_test(timeout=120)
async def test_a_start_that_fails_is_start_failed(api, app, workers):
    """Secret values that no key opens: the job cannot start, and says so."""
    storage = app.settings["storage"]
    job = (await api("POST", "/jobs", {"worker": "Secretive",
                                       "parameters": {"token": "s3cret"}})).data[0]
    stored = (await storage.read(jobstore.get, job["id"])).secret_parameters
    await storage.transaction(jobstore.set_secrets, job["id"], "v1:not-a-token", stored)
    reply = await api("PUT", "/jobs/%s/status" % job["id"], "start")
    assert reply.code == 503, reply
    ended = (await api("GET", "/jobs/%s" % job["id"])).data[0]
    assert (ended["status"], ended["reason"]) == ("error", "start_failed"), ended


@pytest.mark.gen_test(timeout=120)
async def test_a_process_lost_while_the_server_was_away_is_lost(config, cleanup, workers):
    first = await started_server(config)
    cleanup.append(first)
    job, _ = await services(first).submit_job({"worker": "Sleeper", "start": True})
    supervisor_pid = first.processes.supervisor.supervisor_pid
    await first.stop()
    os.kill(supervisor_pid, signal.SIGKILL)
    os.killpg(job["pid"], signal.SIGKILL)
    await poll(lambda: not os.path.exists("/proc/%d" % job["pid"]), what="the job's end")
    second = await started_server(config)
    cleanup.append(second)
    final = await services(second).get_job(job["id"])
    assert (final["status"], final["reason"]) == ("error", "lost"), final
    await second.stop(kill_jobs=True)
