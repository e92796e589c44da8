"""Case 4, fan-out: many WebSocket subscribers on one job that logs 1,000 entries a second,
each entry carrying the time the worker logged it; the delay from that time to its arrival at
each subscriber, over all subscribers (p50/p99/min/max).

The subscribers live in separate client processes (``bench.fanout_subscriber``: asyncio and
Tornado's WebSocket client), all connected before the job starts. Their CPU time is reported
too: on two cores, clients that saturate a core add their own queueing to the figures.
Baseline in the same run: one subscriber on the same kind of job.
"""
import json
import os
import subprocess
import time

from bench import workers
from bench.fanout_subscriber import histogram_percentile
from bench.harness import (PYTHON, ROOT, BenchServer, Child, Scratch, cpu_seconds, value_row)

TITLE = "fan-out to WebSocket subscribers"
TARGET = "p99 <= 50 ms with 500 subscribers"
RATE = 1000


def one_job(server, tmp, subscribers, processes, seconds, label):
    """Run one Ticker job followed by ``subscribers`` in ``processes`` client processes."""
    status, body = server.call("POST", "/jobs", {"worker": "Ticker", "parameters": {
        "rate": RATE, "seconds": seconds}})
    assert status == 201, body
    job_id = body["data"][0]["id"]
    env = dict(os.environ, JJ_BENCH_AUTH=server.auth, PYTHONPATH=str(ROOT))
    shares = [subscribers // processes + (1 if i < subscribers % processes else 0)
              for i in range(processes)]
    children, outputs = [], []
    try:
        for i, share in enumerate(shares):
            out = tmp / ("%s-%d.json" % (label, i))
            outputs.append(out)
            children.append(Child([PYTHON, "-m", "bench.fanout_subscriber", "--port",
                                   str(server.port), "--job", job_id, "--count", str(share),
                                   "--out", str(out)],
                                  env=env, cwd=ROOT, log_path=tmp / ("%s-%d.err" % (label, i)),
                                  stdout=subprocess.PIPE))
        for child in children:
            line = child.process.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError("a subscriber process failed: %s" % (
                    (tmp / ("%s-%d.err" % (label, children.index(child)))).read_text()[-2000:]))
        server_cpu = cpu_seconds(server.process.pid)
        began = time.perf_counter()
        status, body = server.call("PUT", "/jobs/%s/status" % job_id, "start")
        assert status == 200, body
        for child in children:
            child.process.wait(timeout=seconds + 300)
        elapsed = time.perf_counter() - began
        server_cpu = cpu_seconds(server.process.pid) - server_cpu
    finally:
        for child in children:
            child.close()
    histogram, low, high, entries, ended, client_cpu = {}, float("inf"), 0.0, [], [], 0.0
    for out in outputs:
        part = json.loads(out.read_text())
        for key, count in part["histogram"].items():
            histogram[int(key)] = histogram.get(int(key), 0) + count
        low, high = min(low, part["min"]), max(high, part["max"])
        entries += part["entries"]
        ended += part["ended"]
        client_cpu += part["cpu_seconds"]
    expected = int(RATE * seconds) + 2  # + STARTED and ENDED
    short = sum(1 for n in entries if n != expected)
    not_done = sum(1 for e in ended if e != "done")
    if short or not_done:
        raise RuntimeError("%d of %d subscribers missed entries (expected %d each); %d did "
                           "not see the end: %s" % (short, len(entries), expected, not_done,
                                                    sorted(set(map(str, ended)))[:3]))
    samples = sum(histogram.values())
    # A percentile read from the histogram is its bucket's upper edge: never past the extremes.
    p50, p99 = (min(max(histogram_percentile(histogram, q), low), high) for q in (50, 99))
    return {"p50": round(p50, 3), "p99": round(p99, 3), "min": round(low, 3),
            "max": round(high, 3), "n": samples,
            "server_cpu_percent": round(100 * server_cpu / elapsed, 1),
            "server_cpu_us_per_delivery": round(server_cpu * 1e6 / samples, 2),
            "clients_cpu_percent": round(100 * client_cpu / elapsed, 1)}


def row(name, figures, baseline=False):
    return dict({"name": name, "baseline": baseline, "kind": "latency", "unit": "ms"}, **figures)


def run(options):
    subscribers = 100 if options.quick else 500
    seconds = 2 if options.quick else 10
    with Scratch("fanout") as tmp:
        with BenchServer(tmp, {"Ticker": workers.TICKER}) as server:
            many = one_job(server, tmp, subscribers, 2, seconds, "many")
            one = one_job(server, tmp, 1, 1, seconds, "one")
    rows = [row("JobJoker: log -> %d subscribers (2 client processes)" % subscribers, many),
            row("1 subscriber on the same kind of job", one, baseline=True),
            value_row("server CPU while %d subscribers follow" % subscribers,
                      many["server_cpu_percent"], "% of a core", info=True),
            value_row("  the server's CPU time an entry delivered to a subscriber",
                      many["server_cpu_us_per_delivery"], "us", info=True),
            value_row("client processes' CPU (%d subscribers)" % subscribers,
                      many["clients_cpu_percent"], "% of a core", info=True)]
    notes = ["%d entries/s for %d s; every subscriber received every entry"
             % (RATE, seconds)]
    return {"title": TITLE, "target": TARGET, "met": many["p99"] <= 50, "rows": rows,
            "notes": notes}
