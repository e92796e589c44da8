"""Pause and resume: ``PUT /jobs/ID/status`` with ``pause`` (SIGSTOP to the job's group) and
``resume`` (SIGCONT); the status follows what the supervisor saw (``paused`` once the process
stopped, ``active`` once it continued), also for a signal from outside JobJoker; stop and kill
of a paused job; 409s naming the state; audit entries; a paused job's time limit runs on; a
paused job found again after a restart; a resume is not counted as a start.
"""
import os
import signal

import pytest

from jobjoker import proc
from tests.support import STUBBORN, poll, until
from tests.test_cli import client, jj  # noqa: F401,F811
from tests.test_restart import cleanup, services, started_server  # noqa: F401,F811

COUNTER = '''
import time

from jobjoker import Worker


class Counter(Worker):
    """Logs a tick every 20 ms until stopped."""

    def run(self):
        ticks = 0
        self.response("running")
        while self.is_active():
            ticks += 1
            self.log("tick %d" % ticks)
            time.sleep(0.02)
'''


SPAWNER = '''
import subprocess

from jobjoker import Worker


class Spawner(Worker):
    """Runs `true` over and over (subprocess forks with vfork)."""

    def run(self):
        self.response("running")
        while self.is_active():
            subprocess.run(["true"])
'''


@pytest.fixture
def counters(write_worker):
    write_worker("Counter", COUNTER)
    write_worker("Stubborn", STUBBORN)
    write_worker("Spawner", SPAWNER)


async def command(api, job_id, word):
    return await api("PUT", "/jobs/%s/status" % job_id, word)


async def log_count(api, job_id):
    return (await api("GET", "/jobs/%s" % job_id)).data[0]["log_count"]


async def running(api, run_job, worker="Counter"):
    job = await run_job(worker)
    await poll(lambda: proc.state(job["pid"]) in ("R", "S"), what="the job's process")

    async def responded():
        return (await api("GET", "/jobs/%s/response" % job["id"])).data
    await poll(responded, what="the job to run its worker")
    return job


@pytest.mark.gen_test(timeout=120)
async def test_pause_stops_the_process_and_resume_lets_it_go_on(api, run_job, counters,
                                                                wait_for_status):
    job = await running(api, run_job)
    paused = await command(api, job["id"], "pause")
    assert paused.code == 202 and paused.json["message"] == "job %s is pausing" % job["id"]
    assert paused.data[0]["pause_requested"] is not None
    found = await wait_for_status(job["id"], ("paused",))
    assert proc.state(job["pid"]) == "T"  # really stopped, not just said to be
    assert found["pause_requested"] is not None
    # While it is stopped, it logs nothing more (every entry it had buffered is in).
    before = await log_count(api, job["id"])
    await poll(lambda: proc.state(job["pid"]) == "T", what="still stopped")
    assert await log_count(api, job["id"]) <= before + 1

    resumed = await command(api, job["id"], "resume")
    assert resumed.code == 202 and resumed.data[0]["pause_requested"] is None
    found = await wait_for_status(job["id"], ("active",))
    assert found["pause_requested"] is None
    count = await log_count(api, job["id"])

    async def goes_on():
        return await log_count(api, job["id"]) > count + 3
    await poll(goes_on, what="the job to log on after its resume")
    log = [e["message"] for e in (await api("GET", "/jobs/%s/log?limit=100000"
                                            % job["id"])).data]
    assert any(m.startswith("PAUSED (its process was stopped by SIGSTOP, requested)")
               for m in log), log
    assert "RESUMED (its process continued)" in log

    audit = (await api("GET", "/audit?limit=100")).data
    assert {(e["action"], e["actor"]) for e in audit if e["target"] == job["id"]} >= {
        ("job.pause", "admin"), ("job.resume", "admin")}
    await command(api, job["id"], "stop")
    assert (await wait_for_status(job["id"]))["status"] == "stop"


@pytest.mark.gen_test(timeout=300)
async def test_a_job_that_keeps_starting_commands_pauses_whole(api, run_job, counters,
                                                               wait_for_status):
    """SIGSTOP to the whole group at once can catch a child between vfork() and exec(): its
    parent, the job, then waits for it uninterruptibly and never stops. The leader is stopped
    first, then the rest: every pause takes, and stops everything."""
    job = await running(api, run_job, "Spawner")
    for _ in range(10):
        await command(api, job["id"], "pause")
        await wait_for_status(job["id"], ("paused",))
        group = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                 if _group_of(pid) == job["pid"]]
        assert all(proc.state(pid) in ("T", "Z", None) for pid in group), \
            [(pid, proc.state(pid)) for pid in group]
        await command(api, job["id"], "resume")
        await wait_for_status(job["id"], ("active",))
    await command(api, job["id"], "kill")
    assert (await wait_for_status(job["id"]))["status"] == "stop"


def _group_of(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@pytest.mark.gen_test(timeout=120)
async def test_stop_of_a_paused_job(api, run_job, counters, wait_for_status):
    job = await running(api, run_job)
    await command(api, job["id"], "pause")
    await wait_for_status(job["id"], ("paused",))
    stopping = await command(api, job["id"], "stop")
    assert stopping.code == 202, stopping
    assert stopping.data[0]["stop_requested"] is not None
    ended = await wait_for_status(job["id"])
    # The SIGCONT after the SIGTERM woke it, and its worker saw the stop and returned.
    assert ended["status"] == "stop" and ended["exit_signal"] is None, ended


@pytest.mark.gen_test(timeout=120)
async def test_kill_of_a_paused_job(api, run_job, counters, wait_for_status):
    job = await running(api, run_job, "Stubborn")
    await command(api, job["id"], "pause")
    await wait_for_status(job["id"], ("paused",))
    assert proc.state(job["pid"]) == "T"
    killing = await command(api, job["id"], "kill")
    assert killing.code == 202, killing
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "stop" and ended["exit_signal"] == signal.SIGKILL, ended


@pytest.mark.gen_test(timeout=120)
async def test_pause_and_resume_in_the_wrong_state_are_refused_saying_it(api, run_job,
                                                                         counters,
                                                                         wait_for_status):
    idle = (await api("POST", "/jobs", {"worker": "Counter"})).data[0]
    for word in ("pause", "resume"):
        reply = await command(api, idle["id"], word)
        assert reply.code == 409 and "is idle" in reply.json["message"], reply
    job = await running(api, run_job)
    reply = await command(api, job["id"], "resume")
    assert reply.code == 409, reply
    assert reply.json["message"] == ("job %s is active; only a paused job can resume"
                                     % job["id"])
    await command(api, job["id"], "pause")
    await wait_for_status(job["id"], ("paused",))
    reply = await command(api, job["id"], "pause")
    assert reply.code == 409, reply
    assert reply.json["message"] == ("job %s is paused; only an active job can pause"
                                     % job["id"])
    await command(api, job["id"], "kill")
    await wait_for_status(job["id"])
    for word in ("pause", "resume"):
        reply = await command(api, job["id"], word)
        assert reply.code == 409 and "has already ended: it was stopped" in \
            reply.json["message"], reply
    # Nothing refused was recorded.
    audit = (await api("GET", "/audit?limit=100")).data
    assert [e["action"] for e in audit if e["target"] == job["id"]].count("job.pause") == 1
    assert not [e for e in audit if e["target"] == idle["id"] and e["action"] != "job.create"]


@pytest.mark.gen_test(timeout=120)
async def test_pause_and_resume_need_an_operator(api, run_job, counters, make_user,
                                                 wait_for_status):
    job = await running(api, run_job)
    viewer = make_user("watcher", "viewer")
    operator = make_user("hands", "operator")
    refused = await api("PUT", "/jobs/%s/status" % job["id"], "pause", auth=viewer)
    assert refused.code == 403, refused
    assert (await api("PUT", "/jobs/%s/status" % job["id"], "pause", auth=operator)).code == 202
    await wait_for_status(job["id"], ("paused",))
    refused = await api("PUT", "/jobs/%s/status" % job["id"], "resume", auth=viewer)
    assert refused.code == 403, refused
    assert (await api("PUT", "/jobs/%s/status" % job["id"], "resume", auth=operator)).code == 202
    await wait_for_status(job["id"], ("active",))
    audit = (await api("GET", "/audit?limit=100")).data
    assert [(e["action"], e["actor"]) for e in audit if e["target"] == job["id"]
            and e["action"] in ("job.pause", "job.resume")] == [("job.resume", "hands"),
                                                                ("job.pause", "hands")]
    await command(api, job["id"], "kill")
    await wait_for_status(job["id"])


@pytest.mark.gen_test(timeout=120)
async def test_a_signal_from_outside_is_shown(api, run_job, counters, wait_for_status):
    job = await running(api, run_job)
    os.kill(job["pid"], signal.SIGSTOP)
    found = await wait_for_status(job["id"], ("paused",))
    assert found["pause_requested"] is None
    log = [e["message"] for e in (await api("GET", "/jobs/%s/log?limit=100000"
                                            % job["id"])).data]
    assert any(m.startswith("PAUSED (its process was stopped by SIGSTOP, from outside")
               for m in log), log
    os.kill(job["pid"], signal.SIGCONT)
    await wait_for_status(job["id"], ("active",))
    await command(api, job["id"], "stop")
    assert (await wait_for_status(job["id"]))["status"] == "stop"


@pytest.mark.gen_test(timeout=120)
async def test_a_paused_jobs_time_limit_runs_on(api, counters, wait_for_status):
    job = (await api("POST", "/jobs", {"worker": "Counter", "timeout": 2,
                                       "start": True})).data[0]
    await command(api, job["id"], "pause")
    paused = await wait_for_status(job["id"], ("paused", "error"))
    assert paused["deadline"] == job["deadline"]  # unchanged by the pause
    ended = await wait_for_status(job["id"])
    assert (ended["status"], ended["error"]) == ("error", "timed out after 2 s"), ended


@pytest.mark.gen_test(timeout=120)
async def test_a_resume_is_not_counted_as_a_start(api, run_job, counters, wait_for_status):
    async def starts():
        metrics = await api("GET", "/metrics")
        return [row for row in metrics.text.splitlines()
                if row.startswith("jobjoker_job_starts_total")]
    job = await running(api, run_job)
    assert await starts() == ["jobjoker_job_starts_total 1.0"]
    await command(api, job["id"], "pause")
    await wait_for_status(job["id"], ("paused",))
    await command(api, job["id"], "resume")
    await wait_for_status(job["id"], ("active",))
    assert await starts() == ["jobjoker_job_starts_total 1.0"]
    await command(api, job["id"], "kill")
    await wait_for_status(job["id"])


# --- across a restart ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_a_paused_job_is_found_paused_after_a_restart(config, cleanup, counters):
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job, _ = await jobs.submit_job({"worker": "Counter", "start": True})
    await jobs.command(job["id"], "pause")

    async def paused():
        return (await jobs.get_job(job["id"]))["status"] == "paused"
    await poll(paused, what="the job to be paused")
    await first.stop()

    second = await started_server(config)
    cleanup.append(second)
    jobs = services(second)
    assert (await jobs.get_job(job["id"]))["status"] == "paused"
    assert proc.state(job["pid"]) == "T"
    await jobs.command(job["id"], "resume")

    async def active():
        return (await jobs.get_job(job["id"]))["status"] == "active"
    await poll(active, what="the job to be active again")
    await jobs.command(job["id"], "stop")

    async def ended():
        return (await jobs.get_job(job["id"]))["status"] == "stop"
    await poll(ended, what="the job to stop")


@pytest.mark.gen_test(timeout=120)
async def test_a_pause_requested_before_a_restart_is_applied_after_it(config, cleanup,
                                                                      counters):
    """The server stopped between storing the request and sending SIGSTOP (as if): the next
    one stops the job, and shows it paused."""
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job, _ = await jobs.submit_job({"worker": "Counter", "start": True})

    def request_only(tx):
        from jobjoker import jobstore
        jobstore.update(tx, job["id"], pause_requested=1.0)
    await first.storage.transaction(request_only)
    await first.stop()
    assert proc.state(job["pid"]) != "T"

    second = await started_server(config)
    cleanup.append(second)
    jobs = services(second)

    async def paused():
        return (await jobs.get_job(job["id"]))["status"] == "paused"
    await poll(paused, what="the pause requested before the restart to be applied")
    assert proc.state(job["pid"]) == "T"
    await jobs.command(job["id"], "kill")

    async def ended():
        return (await jobs.get_job(job["id"]))["status"] == "stop"
    await poll(ended, what="the job to be killed")


# --- the command line and the client -------------------------------------------------------------

def test_cli_pause_and_resume_and_run_with_a_timeout(jj, client):
    job = client.create_job("TestWorker", {"count": 1000, "sleep": 0.05}, start=True)
    paused = jj("pause", job["id"])
    assert paused.returncode == 0 and paused.stdout == "job %s is pausing\n" % job["id"], paused
    until(lambda: client.job(job["id"])["status"] == "paused", what="the job to be paused")
    again = jj("jobs", "pause", job["id"])
    assert again.returncode == 1 and "is paused; only an active job can pause" in again.stderr
    resumed = jj("jobs", "resume", job["id"], "--json")
    assert resumed.returncode == 0 and resumed.json["pause_requested"] is None, resumed
    until(lambda: client.job(job["id"])["status"] == "active", what="the job to be active")
    client.kill(job["id"])

    limited = jj("run", "TestWorker", "-p", "count=1000", "-p", "sleep=0.05", "--timeout", "1",
                 "--json")
    assert limited.returncode == 0 and limited.json["timeout"] == 1, limited
    # wait() goes through the pause to the end: the time limit ends the paused job.
    client.pause(limited.json["id"])
    final = client.wait(limited.json["id"])
    assert (final["status"], final["error"]) == ("error", "timed out after 1 s"), final
    for bad in ("0", "-2", "soon", "inf"):
        refused = jj("run", "TestWorker", "--timeout", bad)
        assert refused.returncode == 2 and "--timeout" in refused.stderr, refused


def test_client_pause_and_resume(client, server_process):
    job = client.run("TestWorker", {"count": 1000, "sleep": 0.05}, follow=False, timeout=600)
    assert job["timeout"] == 600 and job["deadline"] is not None
    assert client.pause(job["id"])["pause_requested"] is not None
    try:
        until(lambda: client.job(job["id"])["status"] == "paused", what="the job to be paused")
    except AssertionError:
        raise AssertionError("not paused; state %s; server:\n%s\nsupervisor:\n%s" % (
            proc.state(job["pid"]), server_process.stderr[-5000:],
            (server_process.data_dir / "run" / "supervisor.log").read_text()[-3000:]))
    assert client.resume(job["id"])["pause_requested"] is None
    until(lambda: client.job(job["id"])["status"] == "active", what="the job to be active")
    batch = client.create_jobs([("TestWorker", {"count": 1})], timeout=30)
    assert batch[0]["timeout"] == 30
    client.kill(job["id"])
