"""Resource use: a job's CPU time and memory, sampled over its whole process group, kept after
its end and across a restart, with a bounded series (jobjoker.usage, usage_sampler,
usage_series, usage_store; GET /jobs/ID/usage; the stream's ``usage`` messages)."""
import json
import os
import subprocess
import sys

import pytest

from jobjoker.app import JobJokerServer
from jobjoker.cli_output import format_value
from jobjoker.client import Client
from jobjoker.usage_series import UsageSeries
from tests.support import PASSWORD, ROOT, poll, until, wait_for_end
from tests.test_restart import cleanup  # noqa: F401,F811 -- a fixture

MB = 1024 * 1024

# Allocates `mb` MB and touches every page, burns `burn` s of CPU, says "ready" and waits for
# the file `gate`.
HOG = """import os, time
from jobjoker import Worker


class Hog(Worker):
    def run(self):
        size = self.params.get("mb", 200) * 1024 * 1024
        held = bytearray(size)
        for i in range(0, size, 4096):
            held[i] = 1
        while time.process_time() < self.params.get("burn", 1.0):
            pass
        self.log("ready")
        while not os.path.exists(self.params["gate"]):
            time.sleep(0.05)
        self.log("held %d bytes" % len(held))
"""

# Two children burn CPU: one it waits for (reaped: its parent's children figure), one that
# stays alive until the gate opens (a live member of the group). The worker itself sleeps.
PARENT = """import os, subprocess, sys, time
from jobjoker import Worker

BURN = "import time\\nwhile time.process_time() < 1.0: pass\\n"
STAY = BURN + ("open(%r, 'w').close()\\nimport os\\n"
               "while not os.path.exists(%r): time.sleep(0.05)\\n")


class Parent(Worker):
    def run(self):
        gate, burnt = self.params["gate"], self.params["gate"] + ".burnt"
        subprocess.run([sys.executable, "-c", BURN], check=True)
        child = subprocess.Popen([sys.executable, "-c", STAY % (burnt, gate)])
        while not os.path.exists(burnt):
            time.sleep(0.05)
        self.log("ready")
        child.wait()
"""


async def usage(api, job_id, auth=("admin", PASSWORD)):
    reply = await api("GET", "/jobs/%s/usage" % job_id, auth=auth)
    assert reply.code == 200, reply
    return reply.data[0]


async def logged(api, job_id, text):
    async def check():
        entries = (await api("GET", "/jobs/%s/log" % job_id)).data
        return any(entry["message"] == text for entry in entries)
    await poll(check, what="job %s to log %r" % (job_id, text))


@pytest.mark.gen_test(timeout=120)
async def test_figures_rise_for_a_job_that_allocates_200_mb_and_burns_cpu(
        api, run_job, write_worker, wait_for_status, tmp_path):
    write_worker("Hog", HOG)
    gate = tmp_path / "gate"
    job = await run_job("Hog", {"mb": 200, "burn": 1.0, "gate": str(gate)})
    await logged(api, job["id"], "ready")

    async def risen():
        now = await usage(api, job["id"])
        return now if (now["rss_bytes"] or 0) >= 150 * MB and (now["cpu_seconds"] or 0) > 0.5 \
            else None
    live = await risen() or await poll(risen, what="the figures to rise")
    assert live["sampling"] is True
    assert live["max_rss_bytes"] >= live["rss_bytes"]
    assert live["points"] and live["step"] >= 0.5
    t, cpu, rss = live["points"][-1]
    assert t >= job["starttime"] and cpu <= live["cpu_seconds"] and rss >= 150 * MB

    gate.touch()
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "done"
    assert ended["cpu_seconds"] > 0.5
    assert ended["max_rss_bytes"] >= 150 * MB
    kept = await usage(api, job["id"])
    assert kept["sampling"] is False
    assert kept["cpu_seconds"] == ended["cpu_seconds"]
    assert kept["max_rss_bytes"] == ended["max_rss_bytes"] >= 150 * MB
    assert kept["points"] and kept["points"][0][0] == live["points"][0][0]
    assert len(kept["points"]) >= len(live["points"])


@pytest.mark.gen_test(timeout=120)
async def test_the_cpu_of_children_counts_for_the_group(api, run_job, write_worker,
                                                         wait_for_status, tmp_path):
    write_worker("Parent", PARENT)
    gate = tmp_path / "gate"
    job = await run_job("Parent", {"gate": str(gate)})
    await logged(api, job["id"], "ready")

    async def both_counted():
        # Each child used at least 1 s; the sleeping worker far less on its own.
        return ((await usage(api, job["id"]))["cpu_seconds"] or 0) >= 1.9
    await poll(both_counted, what="the children's CPU time to count")
    gate.touch()
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "done", ended
    assert ended["cpu_seconds"] >= 1.9


@pytest.mark.gen_test(timeout=120)
async def test_the_stream_carries_live_usage_messages(api, run_job, write_worker, ws_connect,
                                                       tmp_path):
    write_worker("Hog", HOG)
    gate = tmp_path / "gate"
    job = await run_job("Hog", {"mb": 10, "burn": 0.2, "gate": str(gate)})
    connection = await ws_connect("/jobs/%s/stream" % job["id"])
    try:
        first = json.loads(await connection.read_message())
        assert first["type"] == "status"
        while True:
            message = await connection.read_message()
            assert message is not None, "the stream closed before a usage message"
            message = json.loads(message)
            if message["type"] == "usage":
                break
        assert set(message) == {"type", "job", "t", "cpu_seconds", "rss_bytes",
                                "max_rss_bytes"}
        assert message["job"] == job["id"]
        assert message["rss_bytes"] > 0 and message["max_rss_bytes"] >= message["rss_bytes"]
    finally:
        connection.close()
        gate.touch()


@pytest.mark.gen_test(timeout=120)
async def test_the_sampler_forgets_ended_jobs(api, app, run_job, write_worker, wait_for_status,
                                              tmp_path):
    write_worker("Hog", HOG)
    gate = tmp_path / "gate"
    job = await run_job("Hog", {"mb": 1, "burn": 0.1, "gate": str(gate)})
    monitor = app.settings["usage"]
    assert job["id"] in monitor.jobs and job["pid"] in monitor._groups
    sampler = monitor._thread.sampler
    await poll(lambda: job["pid"] in sampler._groups, what="the group to be sampled")
    gate.touch()
    await wait_for_status(job["id"])
    # Forgotten once its end has committed (the status is announced a moment before).
    await poll(lambda: job["id"] not in monitor.jobs, what="the monitor to forget the job")
    assert job["pid"] not in monitor._groups
    passes = monitor.passes
    await poll(lambda: monitor.passes > passes + 1, what="two more passes")
    assert job["pid"] not in sampler._groups
    assert job["pid"] not in sampler._process


@pytest.mark.gen_test(timeout=60)
async def test_usage_of_an_idle_job_and_of_no_job(api, make_user):
    created = await api("POST", "/jobs", {"worker": "TestWorker"})
    job_id = created.data[0]["id"]
    viewer = make_user("watcher", "viewer")
    idle = await usage(api, job_id, auth=viewer)
    assert idle == {"id": job_id, "cpu_seconds": None, "rss_bytes": None,
                    "max_rss_bytes": None, "sampling": False, "step": None, "points": []}
    missing = await api("GET", "/jobs/%s/usage" % ("0" * 20))
    assert missing.code == 404 and "no job" in missing.json["message"]
    anonymous = await api("GET", "/jobs/%s/usage" % job_id, auth=None)
    assert anonymous.code == 401


class TestSamplingOff:
    @pytest.fixture
    def config_overrides(self):
        return {"usage_interval": 0}

    @pytest.mark.gen_test(timeout=120)
    async def test_usage_interval_0_samples_nothing(self, api, app, run_job, write_worker,
                                                     wait_for_status, tmp_path):
        write_worker("Hog", HOG)
        gate = tmp_path / "gate"
        job = await run_job("Hog", {"mb": 20, "burn": 0.3, "gate": str(gate)})
        await logged(api, job["id"], "ready")
        monitor = app.settings["usage"]
        assert monitor._thread is None and not monitor.jobs and monitor.passes == 0
        gate.touch()
        ended = await wait_for_status(job["id"])
        after = await usage(api, job["id"])
        assert after["points"] == [] and after["sampling"] is False
        assert ended["rss_bytes"] is None  # only a sample says what a job holds now
        # ... but its totals are the supervisor's exact ones, from the exit record (wait4):
        # the CPU it burned and the peak of the 20 MB it touched.
        assert ended["cpu_seconds"] >= 0.25
        assert ended["max_rss_bytes"] >= 20 * 1024 * 1024


# --- the series ----------------------------------------------------------------------------

def test_the_series_stays_under_its_cap_doubling_its_step():
    series = UsageSeries(interval=1.0, cap=100)
    steps = [series.step]
    for i in range(5000):
        series.add(1000.0 + i, i * 0.5, 1000 + (i % 7))
        assert len(series) <= 100
        if series.step != steps[-1]:
            steps.append(series.step)
    assert steps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    assert series.points[0] == (1000.0, 0.0, 1000)  # the first point stays
    assert series.points[-1][:2] == (5999.0, 2499.5)  # the last is the newest sample
    times = [point[0] for point in series.points]
    assert times == sorted(times)
    # Merged points keep the higher RSS of those they stand for.
    assert max(point[2] for point in series.points[1:]) == 1006


def test_points_are_step_apart_once_coarser():
    series = UsageSeries(interval=1.0, cap=10, step=4.0)
    for i in range(20):
        series.add(float(i), float(i), i)
    gaps = {b[0] - a[0] for a, b in zip(series.points[1:-1], series.points[2:-1])}
    assert gaps == {4.0}
    assert series.points[-1][0] == 19.0


def test_a_stored_series_resumes_and_garbage_starts_anew():
    series = UsageSeries(interval=1.0, cap=10)
    for i in range(30):
        series.add(float(i), i / 10, i)
    again = UsageSeries.from_json(series.to_json(), interval=1.0, cap=10)
    assert again.points == series.points and again.step == series.step
    for text in (None, "", "not json", "[1, 2]", '{"points": [[1]]}'):
        empty = UsageSeries.from_json(text, interval=1.0)
        assert empty.points == [] and empty.step == 1.0


def test_the_job_display_prints_cpu_and_memory_readably():
    assert format_value("cpu_seconds", 12.3456) == "12.35 s"
    assert format_value("max_rss_bytes", 200 * MB) == "200.0 MiB"
    assert format_value("rss_bytes", None) == "-"


# --- across a restart ----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_the_series_and_totals_survive_a_restart(config, cleanup, write_worker,
                                                       tmp_path):
    write_worker("Hog", HOG)
    gate = tmp_path / "gate"
    first = JobJokerServer(config, admin_password=PASSWORD)
    await first.start(listen=False)
    cleanup.append(first)
    jobs, monitor = first.app.settings["jobs"], first.app.settings["usage"]
    job = await jobs.create_job({"worker": "Hog", "parameters": {
        "mb": 64, "burn": 0.6, "gate": str(gate)}})
    await jobs.command(job["id"], "start")

    async def sampled_a_while():
        now = await monitor.usage_of(job["id"])
        return now if len(now["points"]) >= 3 and (now["rss_bytes"] or 0) >= 48 * MB \
            and now["cpu_seconds"] > 0.5 else None
    before = await poll(sampled_a_while, what="a few samples")
    await first.stop()  # stores what it sampled; the job runs on

    second = JobJokerServer(config, admin_password=PASSWORD)
    await second.start(listen=False)
    cleanup.append(second)
    jobs, monitor = second.app.settings["jobs"], second.app.settings["usage"]
    stored = await jobs.get_job(job["id"])
    assert stored["cpu_seconds"] >= before["cpu_seconds"]
    assert stored["max_rss_bytes"] >= before["max_rss_bytes"] >= 48 * MB

    async def resumed():
        now = await monitor.usage_of(job["id"])
        return now if now["sampling"] and len(now["points"]) > len(before["points"]) else None
    after = await poll(resumed, what="the series to go on")
    # The last point may have moved on to a later sample (it stands for those since the one
    # before); the others are as they were.
    kept = len(before["points"]) - 1
    assert after["points"][:kept] == before["points"][:kept]
    assert after["cpu_seconds"] >= before["cpu_seconds"]

    gate.touch()

    async def ended():
        return (await jobs.get_job(job["id"]))["status"] == "done"
    await poll(ended, what="the end")
    final = await monitor.usage_of(job["id"])
    assert final["sampling"] is False
    assert final["points"][:kept] == before["points"][:kept]
    assert final["max_rss_bytes"] >= 48 * MB and final["cpu_seconds"] >= before["cpu_seconds"]
    await second.stop(kill_jobs=True)


# --- the client and the command ------------------------------------------------------------

def test_the_client_reads_usage_and_jobs_show_prints_it(server_process, tmp_path):
    client = Client(server_process.url, "admin", PASSWORD)
    client.push_worker("Hog", HOG)
    gate = tmp_path / "gate"
    job = client.run("Hog", {"mb": 40, "burn": 0.3, "gate": str(gate)}, follow=False)
    until(lambda: (client.usage(job["id"])["rss_bytes"] or 0) >= 30 * MB,
          what="the client to see the job's memory")
    live = client.usage(job["id"])
    assert live["sampling"] is True and live["points"]
    gate.touch()
    ended = wait_for_end(client, job["id"])
    assert ended["max_rss_bytes"] >= 30 * MB
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    env.update(JOBJOKER_URL=server_process.url, JOBJOKER_USER="admin",
               JOBJOKER_PASSWORD=PASSWORD)
    shown = subprocess.run([sys.executable, "-m", "jobjoker.cli", "jobs", "show", job["id"]],
                           capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert fields["cpu_seconds"].endswith(" s") and float(fields["cpu_seconds"][:-2]) > 0
    assert fields["max_rss_bytes"].endswith(" MiB")
    assert float(fields["max_rss_bytes"][:-4]) >= 30
