"""The supervisor dies while the server runs: the server says so, starts a new one, and keeps
control of the jobs the old one started (found again through a pidfd, identity-checked)."""
import os
import signal

import pytest

from tests.support import poll, process_alive


@pytest.mark.gen_test(timeout=60)
async def test_a_lost_supervisor_is_replaced_and_its_jobs_stay_under_control(api, run_job,
                                                                            server):
    job = await run_job("TestWorker", {"count": 1000, "sleep": 0.05})
    old = server.processes.supervisor.supervisor_pid
    os.kill(old, signal.SIGKILL)

    async def replaced_and_healthy():
        # Either we catch the gap (503) or the replacement is already up; both end at 200.
        return (server.processes.supervisor.supervisor_pid not in (None, old)
                and (await api("GET", "/health", auth=None)).code == 200)
    await poll(replaced_and_healthy, what="a new supervisor")

    count_before = (await api("GET", "/jobs/%s" % job["id"])).data[0]["log_count"]

    async def log_grew():
        return (await api("GET", "/jobs/%s" % job["id"])).data[0]["log_count"] > count_before + 3
    await poll(log_grew, what="the orphaned job's log to keep flowing")

    reply = await api("PUT", "/jobs/%s/status" % job["id"], "kill")
    assert reply.code == 202, reply

    async def ended():
        data = (await api("GET", "/jobs/%s" % job["id"])).data[0]
        return data if data["status"] != "active" else None
    final = await poll(ended, what="the job to end")
    assert final["status"] == "stop"
    await poll(lambda: not process_alive(job["pid"]), what="the process to be gone")


@pytest.mark.gen_test(timeout=60)
async def test_health_is_503_while_the_supervisor_is_away(api, server):
    server.processes.supervisor.supervisor_pid = None  # as the read loop leaves it on a drop
    assert (await api("GET", "/health", auth=None)).code == 503
    reply = await api("GET", "/health")  # signed in: with the reason
    assert reply.code == 503
    assert reply.json["success"] is False and "supervisor" in reply.json["message"]



@pytest.mark.gen_test(timeout=60)
async def test_stopping_an_orphan_reaches_its_whole_group(api, run_job, server, write_worker,
                                                         tmp_path):
    pid_file = tmp_path / "child"
    write_worker("Parent", '''import subprocess, time
from jobjoker import Worker

class Parent(Worker):
    def run(self):
        child = subprocess.Popen(["sleep", "300"])
        open("%s", "w").write(str(child.pid))
        self.log("child started")
        while self.is_active():
            time.sleep(0.05)
''' % pid_file)
    job = await run_job("Parent")

    async def child_started():
        return pid_file.exists() and pid_file.read_text()
    child = int(await poll(child_started, what="the child"))
    os.kill(server.processes.supervisor.supervisor_pid, signal.SIGKILL)

    async def adopted():
        running = server.processes.running.get(job["id"])
        return running is not None and running.pidfd is not None
    await poll(adopted, what="the orphan to be adopted")
    assert (await api("PUT", "/jobs/%s/status" % job["id"], "stop")).code == 202

    async def ended():
        data = (await api("GET", "/jobs/%s" % job["id"])).data[0]
        return data if data["status"] != "active" else None
    final = await poll(ended, what="the job to end")
    assert final["status"] == "stop"
    assert await poll(lambda: not process_alive(child), what="the child to die with its group")
