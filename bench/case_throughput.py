"""Case 2, throughput: trivial jobs through the API, each created, started and finished (its
final state stored), with several client connections at once.

Three forms: (a) two requests per job (``POST /jobs`` then ``PUT /jobs/ID/status start``),
(b) one request per job (``POST /jobs`` with ``"start": true``), (c) batches
(``POST /jobs/batch`` with ``{"jobs": [...], "start": true}``). A form the server does not offer
(404/400/405, or a job that stays idle) is reported as not available. A round is timed from the
first request until the ``/events`` stream has announced every job's final status; the figure is
the median of the rounds. Baselines in the same run: RQ's forking worker (a process per job) and
Celery's prefork pool of two (no process per job), N trivial jobs from the first enqueue until
all are finished.
"""
import asyncio
import json
import statistics
import time

from bench import baseline_rq, workers
from bench.harness import (BenchServer, HTTPConnection, Scratch, cpu_seconds, rate_row,
                           unavailable_row, value_row, websocket)

TITLE = "throughput of trivial jobs"
TARGET = ">= 200 jobs/s with one request per job, >= 400 jobs/s in batches"
FINAL = {"done", "error", "stop"}


class FinalStatuses:
    """Follows ``/events`` and remembers the final status of every job it hears of."""

    def __init__(self, server):
        self.server = server
        self.final = {}
        self._changed = asyncio.Event()
        self._task = None
        self._stream = None

    async def start(self):
        self._stream = await websocket(self.server, "/events")
        self._task = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        while True:
            message = await self._stream.read_message()
            if message is None:
                return
            if '"status"' not in message:
                continue
            event = json.loads(message)
            job = event.get("job") or {}
            if event.get("action") == "status" and job.get("status") in FINAL:
                self.final[job["id"]] = job["status"]
                self._changed.set()

    async def wait_for(self, ids, timeout):
        deadline = time.monotonic() + timeout
        while not all(job_id in self.final for job_id in ids):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [i for i in ids if i not in self.final]
                raise RuntimeError("%d of %d jobs not final after %.0f s"
                                   % (len(missing), len(ids), timeout))
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
            except asyncio.TimeoutError:
                pass
            if self._task.done():
                raise RuntimeError("the /events stream closed")
        failed = {job_id: self.final[job_id] for job_id in ids if self.final[job_id] != "done"}
        if failed:
            raise RuntimeError("%d jobs did not end done: %s" % (len(failed),
                                                                  list(failed.items())[:3]))

    def close(self):
        if self._task is not None:
            self._task.cancel()
        if self._stream is not None:
            self._stream.close()


async def create_two_requests(http, count):
    ids = []
    for _ in range(count):
        status, body = await http.json("POST", "/jobs", {"worker": "Noop", "parameters": {}})
        assert status == 201, body
        job_id = body["data"][0]["id"]
        status, body = await http.json("PUT", "/jobs/%s/status" % job_id, "start")
        assert status == 200, body
        ids.append(job_id)
    return ids


async def create_one_request(http, count):
    ids = []
    for _ in range(count):
        status, body = await http.json("POST", "/jobs", {"worker": "Noop", "parameters": {},
                                                         "start": True})
        assert status == 201 and body["data"][0]["status"] != "idle", body
        ids.append(body["data"][0]["id"])
    return ids


def batch_maker(size):
    async def create_batches(http, count):
        ids = []
        while count > 0:
            batch = min(size, count)
            status, body = await http.json("POST", "/jobs/batch", {
                "jobs": [{"worker": "Noop", "parameters": {}}] * batch, "start": True})
            assert status in (200, 201) and len(body["data"]) == batch, (status, body)
            ids.extend(job["id"] for job in body["data"])
            count -= batch
        return ids
    return create_batches


async def probe(server, http, form):
    """None when the server offers this form, else why not (cleaning up what it created)."""
    if form == "two":
        return None
    if form == "one":
        status, body = await http.json("POST", "/jobs", {"worker": "Noop", "start": True})
    else:
        status, body = await http.json("POST", "/jobs/batch", {
            "jobs": [{"worker": "Noop"}], "start": True})
    if status not in (200, 201):
        message = body.get("message") if isinstance(body, dict) else body
        return "the server answers %d: %s" % (status, message)
    idle = [job for job in body["data"] if job["status"] == "idle"]
    for job in idle:
        await http.json("DELETE", "/jobs/%s" % job["id"])
    if idle:
        return "the server created the job but did not start it (\"start\": true ignored)"
    return None


async def measure(server, form, create, count, concurrency, rounds):
    """(jobs per second of each round, CPU per job, None), or (None, None, reason) when the
    server does not offer the form."""
    connections = [HTTPConnection(server.port, server.auth) for _ in range(concurrency)]
    events = await FinalStatuses(server).start()
    try:
        problem = await probe(server, connections[0], form)
        if problem:
            return None, None, problem
        rates, server_ms, others_ms = [], [], []
        server_pid, supervisor_pid = server.process.pid, server.supervisor_pid
        for _ in range(rounds):
            shares = [count // concurrency + (1 if i < count % concurrency else 0)
                      for i in range(concurrency)]
            cpu = (cpu_seconds(server_pid), cpu_seconds(supervisor_pid, children=True))
            start = time.perf_counter()
            created = await asyncio.gather(*(create(http, share)
                                             for http, share in zip(connections, shares)))
            ids = [job_id for part in created for job_id in part]
            await events.wait_for(ids, timeout=300)
            rates.append(len(ids) / (time.perf_counter() - start))
            server_ms.append((cpu_seconds(server_pid) - cpu[0]) * 1000 / len(ids))
            others_ms.append((cpu_seconds(supervisor_pid, children=True) - cpu[1]) * 1000
                             / len(ids))
        # CPU time a job costs, unlike the wall clock, hardly moves with other load on the box.
        return rates, (statistics.median(server_ms), statistics.median(others_ms)), None
    finally:
        events.close()
        for http in connections:
            http.close()


def run(options):
    quick = options.quick
    count = 40 if quick else 1000
    rounds = 2 if quick else 3
    concurrency = 4
    batch = 20 if quick else 100
    forms = [
        ("two", "JobJoker: POST /jobs + PUT start (2 requests/job, %d connections)"
         % concurrency, create_two_requests, concurrency),
        ("one", "JobJoker: POST /jobs with \"start\": true (1 request/job, %d connections)"
         % concurrency, create_one_request, concurrency),
        ("batch", "JobJoker: POST /jobs/batch, %d jobs a request, 2 connections" % batch,
         batch_maker(batch), 2),
    ]
    rows = []
    with Scratch("throughput") as tmp:
        with BenchServer(tmp, {"Noop": workers.NOOP}) as server:
            for form, name, create, connections in forms:
                rates, cpu, problem = asyncio.run(measure(server, form, create, count,
                                                          connections, rounds))
                if problem:
                    rows.append(unavailable_row(name, problem))
                    continue
                rows.append(rate_row(name, rates, "jobs/s", jobs=count, form=form))
                rows.append(value_row("  its CPU time a job: the server's", round(cpu[0], 2),
                                      "ms", info=True,
                                      supervisor_and_job_process=round(cpu[1], 2)))
        rows.extend(baselines(options, tmp, rounds))
    by_form = {row.get("form"): row for row in rows if row["kind"] == "rate"}
    met = None
    if "one" in by_form and "batch" in by_form:
        met = by_form["one"]["median"] >= 200 and by_form["batch"]["median"] >= 400
    elif len(by_form) < 3:
        met = False  # a form the target names is missing
    return {"title": TITLE, "target": TARGET, "met": met, "rows": rows}


def baselines(options, tmp, rounds):
    rq_name = "RQ forking worker (a process per job)"
    celery_name = "Celery prefork pool of 2 (no process per job)"
    problem = baseline_rq.redis_problem(options.redis_url)
    if problem:
        return [unavailable_row(rq_name, problem, baseline=True),
                unavailable_row(celery_name, problem, baseline=True)]
    rows = []
    rq_count = 30 if options.quick else 300
    with baseline_rq.RQWorker(options.redis_url, tmp / "rq.log") as worker:
        worker.wait_ready()
        rows.append(rate_row(rq_name, [worker.throughput(rq_count) for _ in range(rounds)],
                             "jobs/s", baseline=True, jobs=rq_count))
    try:
        from bench import baseline_celery
    except ImportError as e:
        rows.append(unavailable_row(celery_name, "not installed (%s): pip install -e '.[bench]'"
                                    % e, baseline=True))
        return rows
    celery_count = 100 if options.quick else 1000
    with baseline_celery.CeleryWorker(tmp / "celery.log") as worker:
        worker.wait_ready()
        worker.throughput(20)  # warm both pool processes
        rows.append(rate_row(celery_name, [worker.throughput(celery_count)
                                           for _ in range(rounds)],
                             "jobs/s", baseline=True, jobs=celery_count))
    return rows
