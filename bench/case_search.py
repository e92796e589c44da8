"""Case 9, log search: ``GET /jobs/ID/log?search=TEXT`` over a log of a million entries (100,000
with ``--quick``) of about 35 bytes, stored as the server stores them (filled straight through
SQLite, as the ``reads`` case does). The text is found once, in the last entry, so the whole log
is scanned: the time to the first answer (bounded by ``--search-seconds``, 0.5 s by default,
with what was found so far), and the entries scanned per second while following
``X-Next-Offset`` to the end, case-sensitive and with ``ignore_case=1``. Baseline in the same
run: ``grep -cF`` over the same lines in a text file.
"""
import asyncio
import json
import shutil
import subprocess
import time

from bench.case_reads import populate
from bench.harness import BenchServer, HTTPConnection, Scratch, latency_row, rate_row, \
    unavailable_row

TITLE = "log search"
TARGET = "first answer <= 0.6 s; >= 1,000,000 entries/s scanned"


async def scan(server, job_id, query, total):
    """(seconds to the first answer, entries scanned per second) of one whole search."""
    http = HTTPConnection(server.port, server.auth)
    found, offset, first = [], 0, None
    start = time.perf_counter()
    try:
        while offset is not None:
            status, body, headers = await http.request("GET", "/jobs/%s/log?%s&offset=%d" % (
                job_id, query, offset), with_headers=True)
            if status != 200:
                raise RuntimeError("search: %s %s" % (status, body[:300]))
            if first is None:
                first = time.perf_counter() - start
            found += json.loads(body)["data"]
            following = headers.get("x-next-offset")
            offset = None if following is None else int(following)
    finally:
        http.close()
    elapsed = time.perf_counter() - start
    if [entry["seq"] for entry in found] != [total - 1]:
        raise RuntimeError("search %s found %s" % (query, [e["seq"] for e in found][:10]))
    return first, total / elapsed


def grep_rate(tmp, entries, rounds):
    """Lines per second that ``grep -cF`` reads from a file of the same lines."""
    path = tmp / "log.txt"
    with open(path, "wb") as f:
        for start in range(0, entries, 100000):
            f.write(b"".join(b"log line %010d\n" % n
                             for n in range(start, min(entries, start + 100000))))
    rates = []
    for _ in range(rounds):
        began = time.perf_counter()
        result = subprocess.run(["grep", "-cF", "line %010d" % (entries - 1), str(path)],
                                capture_output=True, text=True, check=True)
        rates.append(entries / (time.perf_counter() - began))
        assert result.stdout.strip() == "1", result.stdout
    return rates


def run(options):
    entries = 100000 if options.quick else 1000000
    rounds = 3 if options.quick else 5
    rows = []
    with Scratch("search") as tmp:
        job_id, _ = populate(tmp / "data", 1, entries)
        needle = "line %010d" % (entries - 1)
        with BenchServer(tmp, {}) as server:
            for label, query in (("case-sensitive", "search=" + needle.replace(" ", "%20")),
                                 ("ignore_case=1", "search=" + needle.upper().replace(" ", "%20")
                                  + "&ignore_case=1")):
                results = [asyncio.run(scan(server, job_id, query, entries))
                           for _ in range(rounds)]
                size = "{:,}".format(entries)
                rows.append(latency_row("JobJoker: first answer, %s (%s entries)" % (label, size),
                                        [first * 1000 for first, _ in results]))
                rows.append(rate_row("JobJoker: scanned to the end, %s" % label,
                                     [rate for _, rate in results], "entries/s",
                                     entries=entries))
        if shutil.which("grep"):
            rows.append(rate_row("grep -cF over the same lines in a file",
                                 grep_rate(tmp, entries, rounds), "lines/s", baseline=True))
        else:
            rows.append(unavailable_row("grep -cF over the same lines", "grep is not installed",
                                        baseline=True))
    met = all(row["p50"] <= 600 for row in rows if row["kind"] == "latency") and all(
        row["median"] >= 1000000 for row in rows if row["kind"] == "rate" and not row["baseline"])
    return {"title": TITLE, "target": TARGET, "met": met, "rows": rows}
