"""A process holding many WebSocket subscribers of one job, for the fan-out case.

``python -m bench.fanout_subscriber --port P --job ID [--job ID ...] --count K --out FILE`` (the
Authorization header in ``JJ_BENCH_AUTH``) connects K followers of each ``/jobs/ID/stream``
(the load case follows many jobs, one subscriber each), prints ``ready`` once
all are connected, then, for every log entry ``t=<epoch seconds>`` each receives, records the
delay from that stamp (taken by the worker right before ``self.log()``) to its arrival here.
Delays go into a histogram (0.05 ms steps below 1 s, 1 ms above) so that millions of samples
cost little; when every stream has ended it writes the histogram, the exact min and max, the
entries each subscriber received, how each stream ended and its own CPU time to FILE as JSON.
"""
import argparse
import asyncio
import json
import re
import sys
import time

import tornado.httpclient
import tornado.websocket

STAMP = re.compile(r'"t=(\d+\.\d+)"')
TYPE = re.compile(r'"type":\s*"(\w+)"')
FINE_STEPS = 20  # buckets per millisecond below FINE_LIMIT ms
FINE_LIMIT = 1000


def bucket(delay_ms):
    if delay_ms < FINE_LIMIT:
        return int(delay_ms * FINE_STEPS)
    return FINE_LIMIT * FINE_STEPS + int(delay_ms - FINE_LIMIT)


def bucket_upper_ms(key):
    """The upper edge of a bucket, in ms (what a percentile read from it reports)."""
    if key < FINE_LIMIT * FINE_STEPS:
        return (key + 1) / FINE_STEPS
    return FINE_LIMIT + (key - FINE_LIMIT * FINE_STEPS) + 1


def histogram_percentile(histogram, q):
    """The q-th percentile (nearest rank) of a {bucket: count} histogram, in ms."""
    total = sum(histogram.values())
    rank = max(1, -(-total * q // 100))
    seen = 0
    for key in sorted(histogram):
        seen += histogram[key]
        if seen >= rank:
            return bucket_upper_ms(key)
    return None


class Subscriber:
    def __init__(self, histogram):
        self.histogram = histogram
        self.entries = 0
        self.ended = None
        self.low = float("inf")
        self.high = 0.0

    async def follow(self, connection):
        histogram = self.histogram
        while True:
            raw = await connection.read_message()
            if raw is None:
                if self.ended is None:
                    self.ended = "closed %s %s" % (connection.close_code, connection.close_reason)
                return
            now = time.time()
            kind = TYPE.search(raw, 0, 64)
            kind = kind.group(1) if kind else json.loads(raw).get("type")
            if kind == "log":
                stamps = STAMP.findall(raw)
                for stamp in stamps:
                    delay = max(0.0, (now - float(stamp)) * 1000)
                    key = bucket(delay)
                    histogram[key] = histogram.get(key, 0) + 1
                    if delay < self.low:
                        self.low = delay
                    if delay > self.high:
                        self.high = delay
                self.entries += raw.count('"message"')
            elif kind == "end":
                self.ended = json.loads(raw)["status"]


async def connect(port, job_id, auth):
    request = tornado.httpclient.HTTPRequest(
        "ws://127.0.0.1:%d/jobs/%s/stream" % (port, job_id), headers={"Authorization": auth},
        request_timeout=120)
    connection = await tornado.websocket.websocket_connect(request)
    first = json.loads(await connection.read_message())
    assert first["type"] == "status", first
    return connection


async def main(args, auth):
    targets = [job for job in args.job for _ in range(args.count)]
    connections = []
    for start in range(0, len(targets), 50):  # not 500 handshakes at once
        connections.extend(await asyncio.gather(*(
            connect(args.port, job, auth) for job in targets[start:start + 50])))
    histogram = {}
    subscribers = [Subscriber(histogram) for _ in connections]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.gather(*(s.follow(c) for s, c in zip(subscribers, connections)))
    with open(args.out, "w") as f:
        json.dump({"histogram": histogram,
                   "min": min(s.low for s in subscribers),
                   "max": max(s.high for s in subscribers),
                   "entries": [s.entries for s in subscribers],
                   "ended": [s.ended for s in subscribers],
                   "cpu_seconds": time.process_time()}, f)


if __name__ == "__main__":
    import os
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--job", action="append", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    asyncio.run(main(parser.parse_args(), os.environ["JJ_BENCH_AUTH"]))
