"""Faults against real server processes: the server SIGKILLed with jobs running, a stop in
progress when it dies, and a pid reused by a stranger while it was away."""
import os
import re
import signal
import sqlite3

import pytest

from tests.support import TICKER_WORKER, Bystander, process_alive, processes_of, until, \
    workers_folder

STUBBORN = '''import signal, time
from jobjoker import Worker


class Stubborn(Worker):
    def run(self):
        signal.signal(signal.SIGTERM, lambda *a: self.log("ignoring SIGTERM"))
        self.log("ready")
        while True:
            time.sleep(0.05)
'''


@pytest.fixture
def fleet(servers, tmp_path):
    """``fleet(*args)``: start a server on this test's data dir with the Ticker and Stubborn
    workers, ready; every one is killed afterwards, with its supervisor and jobs."""
    workers = workers_folder(tmp_path / "workers", {"Ticker": TICKER_WORKER, "Stubborn": STUBBORN},
                             samples=())

    def start(*args):
        return servers(*args, workers_dir=workers).wait_ready()
    return start


def ended(server, job_id, timeout=60):
    """The job once it is no longer active."""
    return server.wait_for_job(job_id, ("done", "error", "stop"), timeout)


def test_kill_9_of_the_server_with_twenty_jobs_running_then_restart(fleet, tmp_path):
    first = fleet()
    # Each ticks 50 times, then waits at its gate: all of them run when the server dies, and
    # those to be stopped still run when the stop comes.
    gate, closed = tmp_path / "gate", tmp_path / "never"
    jobs = [first.create_job("Ticker", {"count": 150, "every": 0.02, "pause_at": 50,
                                        "gate": str(closed if i < 10 else gate)})
            for i in range(20)]
    stopped = jobs[:10]
    until(lambda: all(len(first.messages(j["id"])) > 5 for j in jobs), what="every job to tick")
    first.kill()
    assert all(process_alive(j["pid"]) for j in jobs)  # the jobs did not notice
    gate.touch()  # the others tick on while no server is there

    second = fleet()
    for j in stopped:  # stops work on re-adopted jobs
        reply = second.call("PUT", "/jobs/%s/status" % j["id"], "stop")
        assert reply.code == 202, reply
    for j in jobs:
        final = ended(second, j["id"])
        entries = second.messages(j["id"])
        ticks = [m for m in entries if m.startswith("tick ")]
        # Every entry once and in order, across the crash: nothing lost, nothing doubled.
        assert ticks == ["tick %d" % i for i in range(len(ticks))], j["id"]
        assert entries[0].startswith("STARTED") and entries[-1].startswith("ENDED")
        if j in stopped:
            assert final["status"] == "stop", final
        else:
            assert final["status"] == "done" and len(ticks) == 150, (final, len(ticks))
        assert not process_alive(j["pid"])


def test_a_stop_interrupted_by_a_server_crash_still_escalates_on_time(fleet):
    first = fleet("--stop-grace", "3")
    started = first.create_job("Stubborn")
    until(lambda: "ready" in first.messages(started["id"]), what="the job to be ready")
    assert first.call("PUT", "/jobs/%s/status" % started["id"], "stop").code == 202
    until(lambda: "ignoring SIGTERM" in first.messages(started["id"]), what="the SIGTERM")
    first.kill()  # mid-grace: the timer dies with the server

    # The new server's own grace is far longer than the test may take: only the deadline the
    # first one stored (the stop's time + 3 s) can end the job in time. Forgotten, the job
    # would run on (it ignores SIGTERM); restarted, it would end an hour from now.
    second = fleet("--stop-grace", "3600")
    final = ended(second, started["id"])
    assert final["status"] == "stop" and final["exit_signal"] == signal.SIGKILL, final
    assert final["stoptime"] >= final["stop_requested"] + 3 - 0.1, final  # never before it
    assert not process_alive(started["pid"])


def test_a_pid_reused_by_a_stranger_is_never_signalled(fleet, tmp_path):
    first = fleet()
    started = first.create_job("Ticker", {"count": 100000, "every": 0.05})
    assert first.stop() == 0  # the server goes; the job stays
    # Then the supervisor and the job die while no server watches: nothing records the end.
    for pid in processes_of(first.supervisor_socket):
        if pid != started["pid"]:
            os.kill(pid, signal.SIGKILL)
    os.killpg(started["pid"], signal.SIGKILL)
    until(lambda: not process_alive(started["pid"]), what="the job to die")
    # A stranger now holds the job's pid (simulated: the row is pointed at a decoy process,
    # as the kernel would do by reusing the number; its start time differs, as it would).
    decoy = Bystander()
    try:
        database = sqlite3.connect(str(tmp_path / "data" / "jobjoker.sqlite3"))
        with database:
            database.execute("UPDATE job SET pid = ? WHERE id = ?", (decoy.pid, started["id"]))
        database.close()

        second = fleet()
        final = second.job(started["id"])
        assert final["status"] == "error" and "lost while the server was away" in final["error"]
        assert second.call("PUT", "/jobs/%s/status" % started["id"], "kill").code == 409
        assert decoy.unsignalled()  # by all the server did up to here: the stranger lives on
    finally:
        decoy.close()


# Loaded by the first server only (PYTHONPATH): it dies by SIGKILL at the seam between the
# supervisor's fork and the storing of the pid (the writer thread is about to store it).
DIE_BEFORE_STORING_PIDS = '''import os, signal, sys
if sys.argv and sys.argv[0].endswith("run_server.py"):
    from jobjoker import procman

    def _record_starts(self, tx, started, failed, also):
        os.kill(os.getpid(), signal.SIGKILL)

    procman.ProcessManager._record_starts = _record_starts
'''


@pytest.mark.parametrize("ends_first", [False, True], ids=["running", "ended-meanwhile"])
def test_a_job_started_as_the_server_died_gets_its_pid_at_restart(fleet, servers, tmp_path,
                                                                    ends_first):
    seam = tmp_path / "seam"
    seam.mkdir()
    (seam / "sitecustomize.py").write_text(DIE_BEFORE_STORING_PIDS)
    workers = workers_folder(tmp_path / "workers", {"Ticker": TICKER_WORKER}, samples=())
    first = servers(workers_dir=workers, env={"PYTHONPATH": str(seam)}).wait_ready()
    gate = tmp_path / "gate"
    if ends_first:
        gate.touch()
    created = first.api("POST", "/jobs", {"worker": "Ticker", "parameters": {
        "count": 40, "every": 0.02, "pause_at": 20, "gate": str(gate)}})[0]
    try:
        first.call("PUT", "/jobs/%s/status" % created["id"], "start")
    except OSError:
        pass  # the server died while answering
    first.process.wait(timeout=60)
    assert first.process.returncode == -signal.SIGKILL
    folder = tmp_path / "data" / "jobs" / created["id"]
    until(lambda: (folder / "log.spool").exists() and b"tick 3" in
          (folder / "log.spool").read_bytes(), what="the job to run")
    pid = int(re.search(rb"STARTED .*pid (\d+)", (folder / "log.spool").read_bytes()).group(1))
    if ends_first:
        until(lambda: (folder / "exit.json").exists(), what="the job to end")

    second = fleet()
    job = second.job(created["id"])
    assert job["pid"] == pid, job
    if ends_first:
        assert job["status"] == "done", job
    else:
        assert job["status"] == "active", job
        gate.touch()
        final = ended(second, created["id"])
        assert final["status"] == "done" and final["pid"] == pid, final
