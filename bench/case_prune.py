"""Retention: ``/health`` latency while the server prunes 100,000 finished jobs (10,000 with
``--quick``), then while it prunes one job with a 10-million-entry log (a million), against
its idle figure on the same server just before.

The database is filled straight through SQLite as the ``reads`` case fills it (its
``populate``): finished jobs of ten workers and the newest with the big log. Phase 1 ages every
job but the big one by ten days and starts the server with ``--keep-days 1 --prune-interval
INTERVAL``: ``/health`` is sent over one keep-alive connection every ``GAP`` seconds, idle for
``IDLE_SECONDS`` after the server answers, then on until the server logs ``retention: removed``.
The prune's window starts when a read of the database (another connection, every 50 ms) sees
the first row gone: the first read of the due jobs before it is not in the window. Phase 2 ages
the big job too and starts the server again: its log's chunks go, ``DELETE_BATCH`` at a time.
Target: p99 during each prune within twice the idle p99.
"""
import asyncio
import re
import sqlite3
import threading
import time

from bench.case_reads import populate
from bench.harness import BenchServer, HTTPConnection, Scratch, latency_row, value_row

TITLE = "retention prune"
TARGET = "/health p99 during a prune <= 2x its idle p99"
INTERVAL = 25  # seconds from the server's start to its first prune (10 with --quick)
IDLE_SECONDS = 8.0  # (3 with --quick)
GAP = 0.01  # seconds between two /health requests
DONE = re.compile(r"retention: removed (.*) in ([0-9.]+) s")
DAY = 86400.0


def age(path, where, params=()):
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("UPDATE job SET stoptime = stoptime - ?, created = created - ? %s"
                           % where, (10 * DAY, 10 * DAY) + tuple(params))
    finally:
        connection.close()


class Watch(threading.Thread):
    """Notes when ``count_sql`` first reads less than at the start, and the server's line saying
    the prune ended."""

    def __init__(self, path, count_sql, server):
        super().__init__(daemon=True)
        self.path, self.count_sql, self.server = path, count_sql, server
        self.began = self.ended = self.summary = None
        self.stop = threading.Event()

    def run(self):
        connection = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True)
        try:
            first = connection.execute(self.count_sql).fetchone()[0]
            while not self.stop.wait(0.05):
                if self.began is None and connection.execute(self.count_sql).fetchone()[0] < first:
                    self.began = time.perf_counter()
                found = DONE.search(self.server.stderr_tail(4000))
                if found:
                    self.ended = time.perf_counter()
                    self.summary = (found.group(1), float(found.group(2)))
                    return
        finally:
            connection.close()


async def sample_health(server, watch, timeout):
    """[(time sent, ms)] of /health until the watch saw the prune end (or ``timeout``)."""
    http = HTTPConnection(server.port, server.auth)
    samples = []
    deadline = time.perf_counter() + timeout
    try:
        while watch.ended is None and time.perf_counter() < deadline:
            sent = time.perf_counter()
            status, body = await http.request("GET", "/health")
            if status != 200:
                raise RuntimeError("/health: %s %s" % (status, body[:300]))
            samples.append((sent, (time.perf_counter() - sent) * 1000))
            await asyncio.sleep(GAP)
    finally:
        http.close()
    return samples


def phase(tmp, count_sql, timeout, quick):
    """(idle ms samples, during-prune ms samples, the server's summary, its seconds)."""
    path = tmp / "data" / "jobjoker.sqlite3"
    interval, idle_seconds = (10, 3.0) if quick else (INTERVAL, IDLE_SECONDS)
    with BenchServer(tmp, {}, args=["--keep-days", "1", "--prune-interval", str(interval)]) \
            as server:
        ready = time.perf_counter()
        watch = Watch(path, count_sql, server)
        watch.start()
        try:
            samples = asyncio.run(sample_health(server, watch, timeout))
        finally:
            watch.stop.set()
            watch.join()
        if watch.ended is None or watch.began is None:
            raise RuntimeError("the prune did not run within %.0f s: %s"
                               % (timeout, server.stderr_tail()))
        # A slow start leaves less idle time before the prune: the idle window ends a second
        # before the prune was seen to begin (its first read is not seen).
        idle_end = min(ready + idle_seconds, watch.began - 1.0)
        idle = [ms for sent, ms in samples if sent < idle_end]
        during = [ms for sent, ms in samples if watch.began <= sent <= watch.ended]
        if len(idle) < 50:
            raise RuntimeError("the prune began %.1f s after the server answered: too soon to "
                               "measure it idle" % (watch.began - ready))
        return idle, during, watch.summary[0], watch.summary[1]


def run(options):
    jobs, entries = (10000, 1000000) if options.quick else (100000, 10000000)
    size = "{:,}".format
    rows, notes = [], []
    with Scratch("prune") as tmp:
        big_id, fill_seconds = populate(tmp / "data", jobs + 1, entries)
        notes.append("filling the database took %.1f s" % fill_seconds)
        database = tmp / "data" / "jobjoker.sqlite3"
        age(database, "WHERE id != ?", (big_id,))
        idle, during, summary, seconds = phase(tmp, "SELECT COUNT(*) FROM job", 1800,
                                                options.quick)
        rows.append(latency_row("JobJoker: /health during a prune of %s finished jobs"
                                % size(jobs), during))
        rows.append(latency_row("/health idle, same server before it", idle, baseline=True))
        rows.append(value_row("  the prune (%s)" % summary, round(seconds, 1), "s", info=True,
                              jobs_per_second=round(jobs / seconds) if seconds else 0))
        age(database, "WHERE id = ?", (big_id,))
        idle2, during2, summary2, seconds2 = phase(
            tmp, "SELECT COUNT(*) FROM chunk", 1800, options.quick)
        rows.append(latency_row("JobJoker: /health during the prune of a %s-entry log"
                                % size(entries), during2))
        rows.append(latency_row("/health idle, same server before it", idle2, baseline=True))
        rows.append(value_row("  the prune (%s)" % summary2, round(seconds2, 1), "s",
                              info=True))
    met = during and during2 and all(
        latency["p99"] <= 2 * baseline["p99"]
        for latency, baseline in ((rows[0], rows[1]), (rows[3], rows[4])))
    return {"title": TITLE, "target": TARGET, "met": bool(met), "rows": rows, "notes": notes}
