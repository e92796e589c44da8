#!/usr/bin/env python3
"""Benchmark: live streams end to end, against a real server process.

1. Append-to-subscriber latency: ``POST /jobs/ID/log`` one entry at a time while a WebSocket
   follows the job; the time from sending the POST to receiving the entry. Baseline in the same
   run: a minimal Tornado app that pushes each POSTed body to its WebSocket (no storage).
2. Log throughput: a worker logs N entries with ``self.log()``; one subscriber follows from the
   start; entries per second from the start command to the ``end`` message (every entry stored
   and received, checked). Baseline in the same run: a child process printing N lines into a
   pipe read by this process (the floor of moving lines out of a process at all).

Prints a table and writes bench/results/streams.json.

    .venv/bin/python bench/streams.py [--quick]
"""
import argparse
import asyncio
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import tornado.httpclient
import tornado.web
import tornado.websocket

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "bench"
FLOOD = '''from jobjoker import Worker

class Flood(Worker):
    def run(self):
        line = "x" * 72
        for i in range(self.params["count"]):
            self.log(line)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(samples):
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(pick(0.99), 3),
            "min_ms": round(ordered[0], 3), "max_ms": round(ordered[-1], 3), "n": len(ordered)}


class Server:
    """A real JobJoker server process on a scratch data dir."""

    def __init__(self, tmp):
        self.port = free_port()
        workers = pathlib.Path(tmp) / "workers"
        workers.mkdir()
        (workers / "Flood.py").write_text(FLOOD)
        env = dict(os.environ, JOBJOKER_ADMIN_PASSWORD=PASSWORD, JOBJOKER_LOG_LEVEL="WARNING")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "run_server.py"), "--port", str(self.port),
             "--data-dir", str(pathlib.Path(tmp) / "data"), "--workers-dir", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.auth = {"auth_username": "admin", "auth_password": PASSWORD}
        self.http = tornado.httpclient.AsyncHTTPClient()

    async def ready(self):
        for _ in range(300):
            try:
                response = await self.http.fetch("http://127.0.0.1:%d/health" % self.port,
                                                 raise_error=False)
                if response.code == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("server did not start")

    async def call(self, method, path, body=None):
        response = await self.http.fetch("http://127.0.0.1:%d%s" % (self.port, path),
                                         method=method, body=body, **self.auth)
        return json.loads(response.body)["data"]

    async def follow(self, job_id):
        request = tornado.httpclient.HTTPRequest(
            "ws://127.0.0.1:%d/jobs/%s/stream" % (self.port, job_id), **self.auth)
        return await tornado.websocket.websocket_connect(request)

    def stop(self):
        self.process.terminate()
        self.process.wait()


async def jobjoker_latency(server, rounds):
    job = (await server.call("POST", "/jobs", json.dumps({"worker": "Flood"})))[0]
    connection = await server.follow(job["id"])
    await connection.read_message()  # status
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await server.call("POST", "/jobs/%s/log" % job["id"], "entry %d" % i)
        while True:
            message = json.loads(await connection.read_message())
            if message["type"] == "log":
                break
        samples.append((time.perf_counter() - start) * 1000)
    connection.close()
    return samples


class Echo(tornado.websocket.WebSocketHandler):
    subscribers = set()

    def open(self):
        self.subscribers.add(self)

    def on_close(self):
        self.subscribers.discard(self)


class Post(tornado.web.RequestHandler):
    def post(self):
        for subscriber in Echo.subscribers:
            subscriber.write_message(json.dumps({"type": "log", "entries": [
                {"message": self.request.body.decode(), "time": time.time()}]}))
        self.finish("{}")


async def baseline_latency(rounds):
    """The same round trip through a minimal Tornado app that stores nothing (in a child)."""
    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve-baseline", str(port)])
    http = tornado.httpclient.AsyncHTTPClient()
    try:
        for _ in range(200):
            try:
                connection = await tornado.websocket.websocket_connect(
                    "ws://127.0.0.1:%d/ws" % port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        samples = []
        for i in range(rounds):
            start = time.perf_counter()
            await http.fetch("http://127.0.0.1:%d/post" % port, method="POST", body="e %d" % i)
            await connection.read_message()
            samples.append((time.perf_counter() - start) * 1000)
        connection.close()
        return samples
    finally:
        child.terminate()
        child.wait()


async def jobjoker_throughput(server, count):
    job = (await server.call("POST", "/jobs", json.dumps(
        {"worker": "Flood", "parameters": {"count": count}})))[0]
    connection = await server.follow(job["id"])
    start = time.perf_counter()
    await server.call("PUT", "/jobs/%s/status" % job["id"], "start")
    received, expected_seq = 0, 0
    while True:
        raw = await connection.read_message()
        if raw is None:
            break
        message = json.loads(raw)
        if message["type"] == "log":
            assert message["seq"] == expected_seq, "gap or duplicate"
            expected_seq += len(message["entries"])
            received += len(message["entries"])
        elif message["type"] == "end":
            assert message["status"] == "done", message
    elapsed = time.perf_counter() - start
    assert received == count + 2, (received, count)  # + STARTED and ENDED
    stored = (await server.call("GET", "/jobs/%s" % job["id"]))[0]["log_count"]
    assert stored == count + 2, stored
    return count / elapsed


def baseline_throughput(count):
    """Lines per second through a bare pipe from a child process printing them."""
    code = "import sys\nw = sys.stdout.write\nfor i in range(%d):\n    w('x' * 72 + '\\n')\n" \
           % count
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    lines = 0
    while True:
        data = child.stdout.read(65536)
        if not data:
            break
        lines += data.count(b"\n")
    child.wait()
    assert lines == count
    return count / (time.perf_counter() - start)


async def main(quick):
    rounds = 50 if quick else 500
    count = 100000 if quick else 1000000
    repeats = 1 if quick else 3
    results = {}
    tmp = tempfile.mkdtemp(prefix="jj-bench-")
    server = Server(tmp)
    try:
        await server.ready()
        results["latency_jobjoker"] = percentiles(await jobjoker_latency(server, rounds))
        results["latency_baseline_tornado"] = percentiles(await baseline_latency(rounds))
        rates = [await jobjoker_throughput(server, count) for _ in range(repeats)]
        results["throughput_jobjoker_entries_per_s"] = round(statistics.median(rates))
        rates = [baseline_throughput(count) for _ in range(repeats)]
        results["throughput_baseline_pipe_lines_per_s"] = round(statistics.median(rates))
        results["entries"] = count
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%-42s %s" % ("append -> subscriber latency (JobJoker)",
                        results["latency_jobjoker"]))
    print("%-42s %s" % ("same round trip, minimal Tornado (baseline)",
                        results["latency_baseline_tornado"]))
    print("%-42s %d entries/s (%d entries, median of %d)" % (
        "log throughput end to end (JobJoker)", results["throughput_jobjoker_entries_per_s"],
        count, repeats))
    print("%-42s %d lines/s" % ("bare pipe from a child (baseline)",
                                results["throughput_baseline_pipe_lines_per_s"]))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "streams.json").write_text(json.dumps(results, indent=2))


def serve_baseline(port):
    app = tornado.web.Application([(r"/ws", Echo), (r"/post", Post)])

    async def run():
        app.listen(port, "127.0.0.1")
        await asyncio.Event().wait()
    asyncio.run(run())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (for CI)")
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
    else:
        asyncio.run(main(args.quick))
