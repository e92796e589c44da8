#!/usr/bin/env python3
"""Benchmark: the cost of appending to a job's log does not grow with the log.

Appends single entries (as POST /jobs/ID/log does) to a job whose log already holds N entries,
for N from 10 to 10 million, through ``LogStore`` on SQLite; and, as the baseline in the same
run, the original tool's way (``UPDATE job SET log = log || ?``) at the sizes where it is still
bearable. Prints a table and writes JSON to bench/results/log_append.json.

    .venv/bin/python bench/log_append.py [--quick]
"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from jobjoker import models, spool  # noqa: E402
from jobjoker.events import EventHub  # noqa: E402
from jobjoker.logstore import LogStore  # noqa: E402

ENTRY = "x" * 79


def fill(logstore, job_id, target):
    """Grow the log to ``target`` entries in large blocks (as ingestion stores them)."""
    have = models.Job.get_by_id(job_id).log_count
    line = spool.encode_entry(ENTRY, when=time.time())
    while have < target:
        count = min(100000, target - have)
        logstore.append_blocks(job_id, "log", [line * count])
        have += count


def time_appends(logstore, job_id, rounds):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        logstore.append_message(job_id, "log", ENTRY)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def time_naive(db, size, rounds):
    db.execute_sql("CREATE TABLE IF NOT EXISTS naive (id INTEGER PRIMARY KEY, log TEXT)")
    db.execute_sql("DELETE FROM naive")
    db.execute_sql("INSERT INTO naive (id, log) VALUES (1, ?)", ((ENTRY + "\n") * size,))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        with db.atomic():
            db.execute_sql("UPDATE naive SET log = log || ? WHERE id = 1", (ENTRY + "\n",))
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def summary(samples):
    ordered = sorted(samples)
    return {"p50_us": round(statistics.median(ordered), 1),
            "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 1),
            "min_us": round(ordered[0], 1), "max_us": round(ordered[-1], 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (for CI)")
    args = parser.parse_args()
    sizes = [10, 1000, 10000] if args.quick else [10, 100000, 1000000, 10000000]
    naive_sizes = [10, 1000] if args.quick else [10, 100000, 1000000]
    rounds = 50 if args.quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        db = models.open_database("sqlite:///%s" % os.path.join(tmp, "bench.sqlite3"))
        logstore = LogStore(EventHub())
        models.Job.create(id="bench", worker="W", status="active", created=time.time())
        results = {"chunked": {}, "naive_text_append": {}}
        for size in sizes:
            fill(logstore, "bench", size)
            results["chunked"][size] = summary(time_appends(logstore, "bench", rounds))
        for size in naive_sizes:
            results["naive_text_append"][size] = summary(time_naive(db, size, rounds))
        db.close()
    print("%-20s %12s %10s %10s" % ("method", "log entries", "p50 us", "p99 us"))
    for method, by_size in results.items():
        for size, figures in by_size.items():
            print("%-20s %12d %10.1f %10.1f" % (method, size, figures["p50_us"],
                                                 figures["p99_us"]))
    out = pathlib.Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "log_append.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
