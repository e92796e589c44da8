"""Jobs outlive their server: a new server on the same data dir re-adopts them.

These run two servers one after the other in the test process (the first stopped without
killing its jobs), talking to the domain services directly.
"""
import ctypes
import json
import os
import re
import signal
import time

import pytest

from jobjoker import models
from jobjoker.app import JobJokerServer
from jobjoker.supervisor import PR_SET_CHILD_SUBREAPER
from tests.support import PASSWORD, kill_leftovers, poll, process_alive


async def started_server(config):
    server = JobJokerServer(config, admin_password=PASSWORD)
    await server.start(listen=False)
    return server


def services(server):
    return server.app.settings["jobs"]


async def messages(jobs, job_id, stream="log"):
    entries, _, _ = await jobs.read_entries(job_id, stream, 0, 100000)
    return [e["message"] for e in entries]


@pytest.fixture
def cleanup(config):
    servers = []
    yield servers
    for server in servers:
        kill_leftovers(server.processes.supervisor.socket_path)
    models.database.initialize(None)


@pytest.mark.gen_test(timeout=60)
async def test_a_restarted_server_adopts_a_running_job(config, cleanup):
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job = await jobs.create_job({"worker": "TestWorker",
                                 "parameters": {"count": 1000, "sleep": 0.05}})
    started = await jobs.command(job["id"], "start")
    async def logged_3():
        return "log 3" in await messages(jobs, job["id"])
    await poll(logged_3, what="log 3")
    await first.stop()  # the jobs keep running
    assert os.getpgid(started["pid"]) == started["pid"]

    spool = os.path.join(config.jobs_dir, job["id"], "log.spool")
    left = os.path.getsize(spool)
    await poll(lambda: os.path.getsize(spool) > left,
               what="the job to log on while no server is there")
    second = await started_server(config)
    cleanup.append(second)
    jobs = services(second)
    assert job["id"] in second.processes.running
    async def logged_more():
        return len(await messages(jobs, job["id"])) > 12
    await poll(logged_more, what="more log after adoption")
    stopping = await jobs.command(job["id"], "stop")
    assert stopping["stop_requested"] is not None
    async def ended():
        return (await jobs.get_job(job["id"]))["status"] != "active"
    await poll(ended, what="the end")
    final = await jobs.get_job(job["id"])
    assert final["status"] == "stop"
    log = await messages(jobs, job["id"])
    numbered = [m for m in log if m.startswith("log ")]
    # Every entry once, in order, across the restart.
    assert numbered == ["log %d" % i for i in range(len(numbered))]
    assert log[0].startswith("STARTED") and log[-1].startswith("ENDED stop")
    responses = await messages(jobs, job["id"], "response")
    assert responses == ["response %d" % i for i in range(len(responses))]
    await second.stop(kill_jobs=True)


async def away_after_the_end(record):
    """Wait for the job's end ``record`` (its exit or run-end record), then until 3 s after
    the end time it gives, which it returns: the server stays away that long, so a restart's
    time cannot pass for the end's."""
    await poll(lambda: os.path.exists(record), what="the job to end")
    with open(record) as f:
        ended_at = json.load(f)["time"]
    await poll(lambda: time.time() > ended_at + 3, what="3 s after the end", every=0.1)
    return ended_at


@pytest.mark.gen_test(timeout=60)
async def test_a_job_that_ended_while_the_server_was_away_gets_its_real_end(config, cleanup):
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job = await jobs.create_job({"worker": "TestWorker", "parameters": {"count": 3, "sleep": 0.1}})
    await jobs.command(job["id"], "start")
    await first.stop()
    exit_file = os.path.join(config.jobs_dir, job["id"], "exit.json")
    ended_at = await away_after_the_end(exit_file)

    restarted_at = time.time()
    second = await started_server(config)
    cleanup.append(second)
    jobs = services(second)
    final = await jobs.get_job(job["id"])
    assert final["status"] == "done" and final["exit_code"] == 0
    assert final["stoptime"] == pytest.approx(ended_at, abs=0.01)
    assert final["stoptime"] < restarted_at - 1
    assert final["duration"] == pytest.approx(final["stoptime"] - final["starttime"], abs=0.01)
    log = await messages(jobs, job["id"])
    assert [m for m in log if m.startswith("log ")] == ["log 0", "log 1", "log 2"]
    closing = re.fullmatch(r"ENDED done \(exit code 0\) after ([0-9.]+) s", log[-1])
    assert closing and float(closing.group(1)) == pytest.approx(final["duration"], abs=0.01)
    entries, _, _ = await jobs.read_entries(job["id"], "log", 0, 100)
    assert entries[-1]["time"] == pytest.approx(ended_at, abs=0.01)  # stamped when it ended
    assert not os.path.exists(os.path.dirname(exit_file))  # spool cleaned up once stored
    await second.stop(kill_jobs=True)


@pytest.mark.gen_test(timeout=60)
async def test_a_job_whose_process_vanished_is_marked_error_not_left_active(config, cleanup):
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job = await jobs.create_job({"worker": "TestWorker", "parameters": {"count": 100, "sleep": 1}})
    started = await jobs.command(job["id"], "start")
    # The server stops, its supervisor is SIGKILLed, then the job's process dies: nothing is
    # left to record its end.
    supervisor_pid = first.processes.supervisor.supervisor_pid
    await first.stop()
    os.kill(supervisor_pid, signal.SIGKILL)
    os.killpg(started["pid"], signal.SIGKILL)
    await poll(lambda: not os.path.exists("/proc/%d" % started["pid"]), what="the job's end")
    killed_at = time.time()
    assert not os.path.exists(os.path.join(config.jobs_dir, job["id"], "exit.json"))
    await poll(lambda: time.time() > killed_at + 3, what="3 s after the end", every=0.1)

    restarted_at = time.time()
    second = await started_server(config)
    cleanup.append(second)
    final = await services(second).get_job(job["id"])
    assert final["status"] == "error"
    assert "lost while the server was away" in final["error"]
    # Nobody saw the exit: its end is its last output, and the log says so.
    assert final["starttime"] <= final["stoptime"] <= killed_at < restarted_at - 1
    log = await messages(services(second), job["id"])
    assert log[-1].startswith("ENDED error (exit status unknown) after ")
    assert log[-1].endswith("; end time from its last output (the exit was not seen)")
    await second.stop(kill_jobs=True)


RAW_AFTER_GATE = '''import os, time
from jobjoker import Worker


class RawLate(Worker):
    """Once the file `gate` exists, writes a raw line to its stdout (as a child command would)
    and ends."""
    def run(self):
        self.log("waiting")
        while not os.path.exists(self.params["gate"]):
            time.sleep(0.02)
        os.write(1, b"raw output\\n")
'''


@pytest.mark.gen_test(timeout=60)
async def test_raw_output_written_while_the_server_was_away_keeps_its_time(config, cleanup,
                                                                           write_worker,
                                                                           tmp_path):
    write_worker("RawLate", RAW_AFTER_GATE)
    gate = tmp_path / "gate"
    first = await started_server(config)
    cleanup.append(first)
    jobs = services(first)
    job = await jobs.create_job({"worker": "RawLate", "parameters": {"gate": str(gate)}})
    await jobs.command(job["id"], "start")
    async def waiting():
        return "waiting" in await messages(jobs, job["id"])
    await poll(waiting, what="the job to wait")
    await first.stop()
    gate.touch()
    ended_at = await away_after_the_end(os.path.join(config.jobs_dir, job["id"], "exit.json"))

    restarted_at = time.time()
    second = await started_server(config)
    cleanup.append(second)
    entries, _, _ = await services(second).read_entries(job["id"], "log", 0, 100)
    [raw] = [e for e in entries if e["message"] == "raw output"]
    # Stamped with when the spool was last written, not with the restart that read it.
    assert gate.stat().st_mtime - 0.01 <= raw["time"] <= ended_at < restarted_at - 1
    await second.stop(kill_jobs=True)


@pytest.fixture(params=["reaped", "left-a-zombie"])
def orphans(request):
    """Whoever inherits the orphans of a dead supervisor: init, which reaps them at once, or
    (``left-a-zombie``) this test process made a subreaper that reaps them only at the end, so
    an ended job is still a zombie when the next server looks at it."""
    if request.param == "reaped":
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        # The orphans of this test (its jobs, its second supervisor, which the test shuts
        # down) became our children: reap them all, once each has ended.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            time.sleep(0.05)


@pytest.mark.gen_test(timeout=60)
async def test_an_end_nobody_saw_takes_its_time_from_the_run_end_record(config, cleanup,
                                                                         orphans):
    first = await started_server(config)
    cleanup.append(first)
    job = await services(first).create_job({"worker": "TestWorker",
                                            "parameters": {"count": 2, "sleep": 0.5}})
    started = await services(first).command(job["id"], "start")
    # The server stops and its supervisor dies: the job ends on its own, with no exit record.
    supervisor_pid = first.processes.supervisor.supervisor_pid
    await first.stop()
    os.kill(supervisor_pid, signal.SIGKILL)
    await poll(lambda: not process_alive(started["pid"]), what="the job's end")
    folder = os.path.join(config.jobs_dir, job["id"])
    assert not os.path.exists(os.path.join(folder, "exit.json"))
    ended_at = await away_after_the_end(os.path.join(folder, "run-end.json"))

    restarted_at = time.time()
    second = await started_server(config)
    cleanup.append(second)
    final = await services(second).get_job(job["id"])
    assert final["status"] == "done"  # the runner's record says how it ended, too
    assert final["stoptime"] == pytest.approx(ended_at, abs=0.01)
    assert final["stoptime"] < restarted_at - 1
    log = await messages(services(second), job["id"])
    assert log[-1].endswith("; end time from its run-end record (the exit was not seen)"), log
    await second.stop(kill_jobs=True)


@pytest.mark.gen_test(timeout=60)
async def test_a_second_server_on_the_same_data_dir_refuses_to_start(config, cleanup):
    from jobjoker.errors import StartupError
    first = await started_server(config)
    cleanup.append(first)
    with pytest.raises(StartupError, match="another JobJoker server"):
        await JobJokerServer(config).start(listen=False)
    await first.stop(kill_jobs=True)
