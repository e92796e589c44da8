"""Queue hand-over latency: from the end of one job to the start of the next queued one, under
a server cap of one (``--max-active-jobs 1``).

A batch of Noop jobs is started at once: one runs, the others wait ``queued``; each end hands
the slot to the next. A sample is the next job's ``starttime`` (when the dispatcher moved it to
active) minus the previous job's ``stoptime`` (its recorded end), both as the server stored
them. Also reported: the same chain driven by a client instead (no cap: it follows each job's
stream to its ``end`` message, then sends the next ``start``), the baseline of the same run.
"""
import asyncio

from bench import workers
from bench.harness import BenchServer, HTTPConnection, Scratch, latency_row, read_json, \
    websocket

TITLE = "queue hand-over latency"
TARGET = "p50 <= 20 ms"
WARMUP = 2


async def job_rows(http, ids):
    rows = []
    for job_id in ids:
        status, body = await http.json("GET", "/jobs/%s" % job_id)
        assert status == 200, body
        rows.append(body["data"][0])
    return rows


def hand_overs(jobs):
    """Milliseconds from each job's end to the next one's start, in start order."""
    jobs = sorted(jobs, key=lambda job: job["starttime"])
    return [(after["starttime"] - before["stoptime"]) * 1000
            for before, after in zip(jobs[WARMUP:], jobs[WARMUP + 1:])]


async def queued_samples(server, count):
    http = HTTPConnection(server.port, server.auth)
    try:
        status, body = await http.json("POST", "/jobs/batch", {
            "jobs": [{"worker": "Noop"} for _ in range(count)], "start": True})
        assert status == 201, body
        ids = [job["id"] for job in body["data"]]
        assert sum(job["status"] == "queued" for job in body["data"]) >= count - 1, body
        for _ in range(6000):  # until every job has ended (a 10-minute ceiling)
            jobs = await job_rows(http, ids)
            if all(job["status"] == "done" for job in jobs):
                return hand_overs(jobs)
            await asyncio.sleep(0.1)
        raise RuntimeError("the queued jobs did not all run")
    finally:
        http.close()


async def client_samples(server, count):
    """The baseline: a client starts each job once it has seen the previous one's end."""
    http = HTTPConnection(server.port, server.auth)
    try:
        ids = []
        for _ in range(count):
            status, body = await http.json("POST", "/jobs", {"worker": "Noop"})
            assert status == 201, body
            job_id = body["data"][0]["id"]
            stream = await websocket(server, "/jobs/%s/stream" % job_id)
            await read_json(stream)  # its status
            status, _ = await http.request("PUT", "/jobs/%s/status" % job_id, "start")
            assert status == 200
            while await read_json(stream, timeout=30) is not None:  # until its end
                pass
            stream.close()
            ids.append(job_id)
        return hand_overs(await job_rows(http, ids))
    finally:
        http.close()


def run(options):
    count = WARMUP + (16 if options.quick else 101)
    with Scratch("queue") as tmp:
        (tmp / "capped").mkdir()
        (tmp / "free").mkdir()
        with BenchServer(tmp / "capped", {"Noop": workers.NOOP},
                         args=["--max-active-jobs", "1"]) as server:
            queued = asyncio.run(queued_samples(server, count))
        with BenchServer(tmp / "free", {"Noop": workers.NOOP},
                         args=["--max-active-jobs", "0"]) as server:
            driven = asyncio.run(client_samples(server, count))
    rows = [latency_row("JobJoker: a job's end -> the next queued job's start (cap 1)", queued),
            latency_row("a client following each end, then starting the next (no cap)", driven,
                        baseline=True)]
    return {"title": TITLE, "target": TARGET, "met": rows[0]["p50"] <= 20, "rows": rows}
