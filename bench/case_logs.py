"""Case 3, log throughput end to end: one job logging N entries of 80 bytes through
``self.log()``, timed from sending ``PUT start`` until a subscriber that followed the job from
the start has received every entry and the ``end`` message (the job is final: stored), checked
against the stored ``log_count`` (N plus the runner's STARTED and the server's ENDED entries).
Entries per second, median of the rounds. Baseline in the same run: a bare pipe, a child
process writing N lines of 80 bytes and this process reading them in 64 KiB reads.
"""
import asyncio
import statistics
import subprocess
import time

from bench import workers
from bench.harness import (PYTHON, BenchServer, HTTPConnection, Scratch, cpu_seconds, rate_row,
                           read_json, value_row, websocket)

TITLE = "log throughput end to end"
TARGET = ">= 500,000 entries/s, all stored, all received"
EXTRA_ENTRIES = 2  # the runner's STARTED and the server's ENDED


async def one_round(server, count, worker="Flood", parameters=None):
    """Entries per second of one job logging ``count`` entries, and the CPU time (us) an entry
    cost the server and the job's process (``worker``: Flood, or another taking ``count``)."""
    http = HTTPConnection(server.port, server.auth)
    try:
        status, body = await http.json("POST", "/jobs", {
            "worker": worker, "parameters": dict(parameters or {}, count=count)})
        assert status == 201, body
        job_id = body["data"][0]["id"]
        stream = await websocket(server, "/jobs/%s/stream" % job_id)
        assert (await read_json(stream))["type"] == "status"
        supervisor_pid = server.supervisor_pid
        server_cpu = cpu_seconds(server.process.pid)
        job_cpu = cpu_seconds(supervisor_pid, children=True)  # the job, once reaped
        start = time.perf_counter()
        status, body = await http.json("PUT", "/jobs/%s/status" % job_id, "start")
        assert status == 200, body
        received, next_seq, end = 0, 0, None
        while True:
            message = await read_json(stream, timeout=300)
            if message is None:
                break
            if message["type"] == "log":
                if message["seq"] != next_seq:
                    raise RuntimeError("job %s: entry %d came after %d (a gap or a repeat)"
                                       % (job_id, message["seq"], next_seq))
                next_seq += len(message["entries"])
                received += len(message["entries"])
            elif message["type"] == "end":
                end = message["status"]
        elapsed = time.perf_counter() - start
        server_cpu = cpu_seconds(server.process.pid) - server_cpu
        job_cpu = cpu_seconds(supervisor_pid, children=True) - job_cpu
        status, body = await http.json("GET", "/jobs/%s" % job_id)
        stored = body["data"][0]["log_count"]
        if end != "done" or received != count + EXTRA_ENTRIES or stored != received:
            raise RuntimeError("job %s ended %s: %d entries received, %d stored, %d logged"
                               % (job_id, end, received, stored, count))
        return count / elapsed, server_cpu * 1e6 / count, job_cpu * 1e6 / count
    finally:
        http.close()


def pipe_round(count):
    """Lines per second through a bare pipe from a child process."""
    code = ("import sys\nw = sys.stdout.buffer.write\nline = b'x' * 80 + b'\\n'\n"
            "for _ in range(%d):\n    w(line)\n" % count)
    start = time.perf_counter()
    child = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE)
    lines = 0
    while True:
        data = child.stdout.read(65536)
        if not data:
            break
        lines += data.count(b"\n")
    child.wait()
    if lines != count:
        raise RuntimeError("the pipe carried %d of %d lines" % (lines, count))
    return count / (time.perf_counter() - start)


def run(options):
    count = 100000 if options.quick else 1000000
    rounds = 2 if options.quick else 3
    with Scratch("logs") as tmp:
        with BenchServer(tmp, {"Flood": workers.FLOOD}) as server:
            results = [asyncio.run(one_round(server, count)) for _ in range(rounds)]
    rows = [rate_row("JobJoker: self.log() x %s -> stored and received" % "{:,}".format(count),
                     [rate for rate, _, _ in results], "entries/s", entries=count),
            value_row("  CPU time an entry: the server's (median)",
                      round(statistics.median(cpu for _, cpu, _ in results), 2), "us", info=True,
                      job_process=round(statistics.median(cpu for _, _, cpu in results), 2)),
            rate_row("bare pipe: child writes, parent reads 64 KiB at a time",
                     [pipe_round(count) for _ in range(rounds)], "lines/s", baseline=True,
                     entries=count)]
    return {"title": TITLE, "target": TARGET, "met": rows[0]["median"] >= 500000, "rows": rows}
