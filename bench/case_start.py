"""Case 1, start latency: from sending ``PUT /jobs/ID/status start`` to the worker's first log
entry arriving at a WebSocket subscriber already following ``/jobs/ID/stream``.

One job at a time on an idle server (each sample is a new job: a job starts once), after two
warm-up jobs. Also reported: the same to the runner's ``STARTED`` entry (written before the
worker's code is loaded) and to the PUT's reply. Baselines in the same run: RQ's forking worker
from enqueue to the job function's first line, and a bare ``python -c pass`` from spawn to exit.
"""
import asyncio
import subprocess
import time

from bench import baseline_rq, workers
from bench.harness import (PYTHON, BenchServer, HTTPConnection, Scratch, latency_row,
                           read_json, unavailable_row, websocket)

TITLE = "start latency"
TARGET = "p50 <= 8 ms and p99 <= 20 ms"
WARMUP = 2


async def jobjoker_samples(server, rounds):
    """(to the worker's entry, to STARTED, to the PUT reply) in ms, one list each."""
    http = HTTPConnection(server.port, server.auth)
    to_worker, to_started, to_reply = [], [], []
    try:
        for i in range(WARMUP + rounds):
            status, body = await http.json("POST", "/jobs", {"worker": "Hello"})
            assert status == 201, body
            job_id = body["data"][0]["id"]
            stream = await websocket(server, "/jobs/%s/stream" % job_id)
            first = await read_json(stream)
            assert first["type"] == "status" and first["job"]["status"] == "idle", first
            sent = time.perf_counter()
            put = asyncio.ensure_future(timed(http.request("PUT", "/jobs/%s/status" % job_id,
                                                           "start")))
            started = worker = None
            while worker is None:
                message = await read_json(stream, timeout=30)
                if message is None:
                    raise RuntimeError("job %s: stream closed before the worker's entry" % job_id)
                if message["type"] != "log":
                    continue
                now = time.perf_counter()
                for entry in message["entries"]:
                    if started is None and entry["message"].startswith("STARTED"):
                        started = now
                    if entry["message"] == "hello":
                        worker = now
            (status, reply), replied = await put
            assert status == 200, reply
            while await read_json(stream, timeout=30) is not None:  # until the job's end
                pass
            stream.close()
            if i >= WARMUP:
                to_worker.append((worker - sent) * 1000)
                to_started.append((started - sent) * 1000)
                to_reply.append((replied - sent) * 1000)
    finally:
        http.close()
    return to_worker, to_started, to_reply


async def timed(request):
    """The request's result and when it came (the stream is read meanwhile)."""
    result = await request
    return result, time.perf_counter()


def python_pass_samples(rounds):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def run(options):
    rounds = 15 if options.quick else 100
    rows = []
    with Scratch("start") as tmp:
        with BenchServer(tmp, {"Hello": workers.HELLO}) as server:
            to_worker, to_started, to_reply = asyncio.run(jobjoker_samples(server, rounds))
        rows.append(latency_row("JobJoker: PUT start -> worker's first entry at a subscriber",
                                to_worker))
        rows.append(latency_row("JobJoker: PUT start -> runner's STARTED entry at a subscriber",
                                to_started, info=True))
        rows.append(latency_row("JobJoker: PUT start -> 200 reply", to_reply, info=True))
        problem = baseline_rq.redis_problem(options.redis_url)
        name = "RQ forking worker: enqueue -> job's first line"
        if problem:
            rows.append(unavailable_row(name, problem, baseline=True))
        else:
            with baseline_rq.RQWorker(options.redis_url, tmp / "rq.log") as rq_worker:
                rq_worker.wait_ready()
                rq_worker.start_latencies(WARMUP)
                rows.append(latency_row(name, rq_worker.start_latencies(rounds),
                                        baseline=True))
    rows.append(latency_row("bare python -c pass: spawn -> exit",
                            python_pass_samples(max(10, rounds // 2)), baseline=True))
    main = rows[0]
    met = main["p50"] <= 8 and main["p99"] <= 20
    return {"title": TITLE, "target": TARGET, "met": met, "rows": rows}
