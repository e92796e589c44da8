"""Log throughput with progress reported often: the log-throughput case (``case_logs``) run
with a worker that also calls ``self.progress()`` every ``EVERY`` entries, in rounds
interleaved with plain ``self.log()`` rounds on the same server (plain, progress, plain, ...),
so that a machine whose speed drifts weighs on both alike. Entries per second of each (median of
the rounds) and their ratio. Reported, not asserted: progress should cost the log's throughput
little (a progress call is a tuple stored under a lock; a record goes out at most ten times a
second).
"""
import asyncio
import statistics

from bench import workers
from bench.case_logs import one_round
from bench.harness import BenchServer, Scratch, rate_row, value_row

TITLE = "log throughput with self.progress() often"
TARGET = "progress every 10 entries: throughput within 10% of plain logging (reported)"
EVERY = 10


def run(options):
    count = 100000 if options.quick else 1000000
    rounds = 2 if options.quick else 3
    plain, progress = [], []
    with Scratch("progress") as tmp:
        with BenchServer(tmp, {"Flood": workers.FLOOD,
                               "FloodProgress": workers.FLOOD_PROGRESS}) as server:
            for _ in range(rounds):
                plain.append(asyncio.run(one_round(server, count)))
                progress.append(asyncio.run(one_round(server, count, "FloodProgress",
                                                      {"every": EVERY})))
    plain_rate = statistics.median(rate for rate, _, _ in plain)
    progress_rate = statistics.median(rate for rate, _, _ in progress)
    ratio = round(progress_rate / plain_rate, 3)
    rows = [rate_row("JobJoker: self.log() x %s and self.progress() every %d -> stored and "
                     "received" % ("{:,}".format(count), EVERY),
                     [rate for rate, _, _ in progress], "entries/s", entries=count),
            value_row("  CPU time an entry with progress: the job's process (median)",
                      round(statistics.median(cpu for _, _, cpu in progress), 2), "us",
                      info=True),
            rate_row("interleaved: self.log() x %s alone" % "{:,}".format(count),
                     [rate for rate, _, _ in plain], "entries/s", baseline=True, entries=count),
            value_row("  with progress / without (median rates)", ratio, "ratio", info=True)]
    return {"title": TITLE, "target": TARGET, "met": ratio >= 0.9, "rows": rows}
