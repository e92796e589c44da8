"""Case 6, memory and idle cost: N jobs of a worker that sleeps; the unique memory (USS:
Private_Clean + Private_Dirty from /proc/PID/smaps_rollup) of each job's process, median over
the jobs; the server's and the supervisor's RSS; and the CPU each uses over an idle window
with the N jobs running (utime + stime from /proc/PID/stat).

Baselines in the same run: the USS of a bare ``python -c "import time; time.sleep(60)"``, and
the server's RSS and idle CPU before any job was started.

The server runs with ``--usage-interval 0``: the target is the cost of holding idle jobs, and
watching them is a cost of its own, measured by the ``usage`` case (here reported too: the
sampler's pass over these jobs' groups, as % of one core at one pass a second).
"""
import asyncio
import statistics
import subprocess
import time

from bench import workers
from bench.case_usage import sampler_cost
from bench.harness import (PYTHON, BenchServer, HTTPConnection, Scratch, cpu_seconds, rss_bytes,
                           uss_bytes, value_row)

TITLE = "memory and idle cost of sleeping jobs"
TARGET = "<= 3 MB USS a job; server <= 100 MB RSS and ~0% CPU (<= 1%) with 1,000 jobs"
MB = 1024 * 1024


async def start_sleepers(server, count, concurrency=4):
    """Start ``count`` Sleeper jobs (one request each when the server offers it); their pids."""
    connections = [HTTPConnection(server.port, server.auth) for _ in range(concurrency)]

    async def start(http, share):
        pids = []
        for _ in range(share):
            status, body = await http.json("POST", "/jobs", {
                "worker": "Sleeper", "parameters": {"seconds": 3600}, "start": True})
            assert status == 201, body
            job = body["data"][0]
            if job["status"] == "idle":  # the server ignores "start": a second request
                status, body = await http.json("PUT", "/jobs/%s/status" % job["id"], "start")
                assert status == 200, body
                job = body["data"][0]
            assert job["status"] == "active" and job["pid"], job
            pids.append(job["pid"])
        return pids

    try:
        shares = [count // concurrency + (1 if i < count % concurrency else 0)
                  for i in range(concurrency)]
        parts = await asyncio.gather(*(start(h, s) for h, s in zip(connections, shares)))
        return [pid for part in parts for pid in part]
    finally:
        for http in connections:
            http.close()


def cpu_percent(pids, seconds):
    """CPU used by ``pids`` together over ``seconds`` of wall time, in % of one core."""
    before = sum(cpu_seconds(pid) for pid in pids)
    time.sleep(seconds)
    return round(100 * (sum(cpu_seconds(pid) for pid in pids) - before) / seconds, 2)


def bare_python_uss():
    child = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(1.0)  # well past its start-up
        return uss_bytes(child.pid), rss_bytes(child.pid)
    finally:
        child.kill()
        child.wait()


def run(options):
    count = 50 if options.quick else 1000
    window = 3.0 if options.quick else 10.0
    with Scratch("memory") as tmp:
        with BenchServer(tmp, {"Sleeper": workers.SLEEPER},
                         args=["--usage-interval", "0"]) as server:
            server_pid = server.process.pid
            supervisor_pid = server.supervisor_pid
            time.sleep(1.0)
            empty_rss = rss_bytes(server_pid)
            empty_cpu = cpu_percent([server_pid], window)
            pids = asyncio.run(start_sleepers(server, count))
            time.sleep(2.0)  # every job past its start, asleep
            uss = [uss_bytes(pid) for pid in pids]
            rss = [rss_bytes(pid) for pid in pids]
            server_cpu = cpu_percent([server_pid], window)
            supervisor_cpu = cpu_percent([supervisor_pid], 1.0)
            jobs_cpu = cpu_percent(pids, 1.0)
            server_rss = rss_bytes(server_pid)
            supervisor_rss, supervisor_uss = rss_bytes(supervisor_pid), uss_bytes(supervisor_pid)
            per_pass, _ = sampler_cost(pids, 5)
            status, body = server.get("/health")
            running = body["data"][0]["running_jobs"] if status == 200 else None
    bare_uss, bare_rss = bare_python_uss()
    rows = [
        value_row("JobJoker: USS of a sleeping job (median of %d)" % count,
                  round(statistics.median(uss) / MB, 2), "MB",
                  min=round(min(uss) / MB, 2), max=round(max(uss) / MB, 2)),
        value_row("bare python -c 'time.sleep(60)': USS", round(bare_uss / MB, 2), "MB",
                  baseline=True),
        value_row("JobJoker: RSS of a sleeping job (median, shared pages counted)",
                  round(statistics.median(rss) / MB, 2), "MB", info=True),
        value_row("bare python: RSS", round(bare_rss / MB, 2), "MB", baseline=True, info=True),
        value_row("JobJoker: server RSS with %d sleeping jobs" % count,
                  round(server_rss / MB, 1), "MB"),
        value_row("server RSS with no job", round(empty_rss / MB, 1), "MB", baseline=True),
        value_row("JobJoker: server CPU over %.0f s idle, %d jobs" % (window, count),
                  server_cpu, "% of a core"),
        value_row("server CPU over %.0f s idle, no job" % window, empty_cpu, "% of a core",
                  baseline=True),
        value_row("sampler pass over the %d jobs' groups (usage case): %% of one core at 1 Hz"
                  % count, round(per_pass * 100, 2), "%", info=True),
        value_row("supervisor RSS / USS with %d jobs" % count, round(supervisor_rss / MB, 1),
                  "MB", info=True, uss=round(supervisor_uss / MB, 1)),
        value_row("supervisor CPU (1 s) / all %d jobs' CPU (1 s)" % count, supervisor_cpu,
                  "% of a core", info=True, jobs_cpu=jobs_cpu),
    ]
    notes = ["the server reported %s running jobs" % running]
    met = (statistics.median(uss) <= 3 * MB and server_rss <= 100 * MB and server_cpu <= 1.0)
    return {"title": TITLE, "target": TARGET, "met": met, "rows": rows, "notes": notes}
