"""Case 5, scale of reads: a page of ``GET /jobs`` (plain, by status, by worker) with a million
jobs stored, and a page deep inside a ten-million-entry log, against a server started on a
database filled beforehand.

The database is filled straight through SQLite (the schema made by ``models.open_database``,
rows by ``executemany`` in large transactions; log entries in chunks of about 64 KiB in the
spool format, as ``jobjoker.logstore`` stores them), which takes seconds where the API would
take hours. Each read is sent 200 times over one keep-alive connection after a few warm-up
requests: p50/p99/min/max. Baseline in the same run: the same reads on a small database (1,000
jobs, a 1,000-entry log).
"""
import asyncio
import json
import sqlite3
import time

from bench.harness import (BenchServer, HTTPConnection, Scratch, latency_row, value_row)
from jobjoker.jobstore import encode_job_id

TITLE = "reads at scale"
TARGET = "p50 <= 10 ms for each page (1M jobs, 10M-entry log)"
WORKERS = 10
CHUNK_BYTES = 64 * 1024
WARMUP = 5


def job_id(created, serial):
    """An id in the server's format: milliseconds, then 50 bits (here a serial number)."""
    return encode_job_id((int(created * 1000) << 50) | serial)


def status_of(i):
    return "error" if i % 50 == 0 else "stop" if i % 97 == 0 else "done"


def populate(data_dir, jobs, entries):
    """Fill a new database with ``jobs`` finished jobs, the newest with a log of ``entries``.

    Returns (the big job's id, seconds taken).
    """
    from jobjoker import models
    began = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "jobjoker.sqlite3"
    db = models.open_database("sqlite:///%s" % path)  # the schema, as the server makes it
    fields = models.Job._meta.sorted_fields
    template = {f.name: f.default() if callable(f.default) else f.default for f in fields}
    db.close()
    models.database.initialize(None)

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=DELETE")  # bulk load; WAL again at the end
    connection.execute("PRAGMA synchronous=OFF")
    insert_job = "INSERT INTO job (%s) VALUES (%s)" % (
        ", ".join(f.column_name for f in fields), ", ".join("?" * len(fields)))
    base = time.time() - jobs * 0.01 - 60
    big_id = None
    for start in range(0, jobs, 100000):
        rows = []
        for i in range(start, min(jobs, start + 100000)):
            created = base + i * 0.01
            row = dict(template, id=job_id(created, i), worker="W%d" % (i % WORKERS),
                       status=status_of(i), parameters='{"n": %d}' % i, node="bench",
                       pid=10000 + i % 30000, created=created, starttime=created + 0.001,
                       stoptime=created + 0.05, exit_code=0 if status_of(i) == "done" else 1,
                       log_count=2, created_by="admin")
            if i == jobs - 1:
                big_id = row["id"]
                row.update(status="done", exit_code=0, log_count=entries)
            rows.append(tuple(row[f.name] for f in fields))
        connection.execute("BEGIN")
        connection.executemany(insert_job, rows)
        connection.execute("COMMIT")
    stamp = b"%.3f\t" % base
    line_bytes = len(stamp) + len(b"log line 0000000000\n")
    per_chunk = CHUNK_BYTES // line_bytes
    insert_chunk = "INSERT INTO chunk (job, stream, first_seq, count, data) VALUES (?, 0, ?, ?, ?)"
    total_bytes = 0
    for start in range(0, entries, per_chunk * 500):
        rows = []
        for first in range(start, min(entries, start + per_chunk * 500), per_chunk):
            count = min(per_chunk, entries - first)
            data = b"".join(b"%slog line %010d\n" % (stamp, n)
                            for n in range(first, first + count))
            total_bytes += len(data)
            rows.append((big_id, first, count, data))
        connection.execute("BEGIN")
        connection.executemany(insert_chunk, rows)
        connection.execute("COMMIT")
    connection.execute("UPDATE job SET log_bytes = ? WHERE id = ?", (total_bytes, big_id))
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    return big_id, time.perf_counter() - began


def paths(big_id, entries):
    deep = int(entries * 0.9)
    return [("GET /jobs?limit=50", "/jobs?limit=50", 50),
            ("GET /jobs?status=done&limit=50", "/jobs?status=done&limit=50", 50),
            ("GET /jobs?worker=W3&limit=50", "/jobs?worker=W3&limit=50", 50),
            ("GET /jobs/ID/log?offset=%d&limit=100" % deep,
             "/jobs/%s/log?offset=%d&limit=100" % (big_id, deep), 100)]


async def time_reads(server, path, expected, rounds):
    http = HTTPConnection(server.port, server.auth)
    samples = []
    try:
        for i in range(WARMUP + rounds):
            start = time.perf_counter()
            status, body = await http.request("GET", path)
            elapsed = (time.perf_counter() - start) * 1000
            if status != 200 or len(json.loads(body)["data"]) != expected:
                raise RuntimeError("GET %s: %s %s" % (path, status, body[:300]))
            if i >= WARMUP:
                samples.append(elapsed)
    finally:
        http.close()
    return samples


def measure(tmp, jobs, entries, rounds):
    """{read name: samples} on a server over a database of this size, and its fill/start times."""
    big_id, fill_seconds = populate(tmp / "data", jobs, entries)
    with BenchServer(tmp, {}) as server:
        results = {name: asyncio.run(time_reads(server, path, expected, rounds))
                   for name, path, expected in paths(big_id, entries)}
        return results, fill_seconds, server.ready_seconds


def run(options):
    jobs, entries = (10000, 100000) if options.quick else (1000000, 10000000)
    rounds = 50 if options.quick else 200
    with Scratch("reads-big") as tmp:
        big, fill_seconds, big_start = measure(tmp, jobs, entries, rounds)
    with Scratch("reads-small") as tmp:
        small, _, small_start = measure(tmp, 1000, 1000, rounds)
    rows = []
    for (name, samples), (_, small_samples) in zip(big.items(), small.items()):
        rows.append(latency_row("JobJoker: %s (%s jobs, %s-entry log)" % (
            name, "{:,}".format(jobs), "{:,}".format(entries)), samples))
        rows.append(latency_row("same read, 1,000 jobs and a 1,000-entry log"
                                + (" (offset 900)" if "/log" in name else ""),
                                small_samples, baseline=True))
    rows.append(value_row("server start to /health on the big database", round(big_start, 2),
                          "s", info=True))
    rows.append(value_row("server start to /health on the small database",
                          round(small_start, 2), "s", baseline=True, info=True))
    met = all(row["p50"] <= 10 for row in rows if row["kind"] == "latency" and
              not row["baseline"])
    return {"title": TITLE, "target": TARGET, "met": met, "rows": rows,
            "notes": ["filling the big database took %.1f s" % fill_seconds]}
