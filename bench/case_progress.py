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
    job_cpu = statistics.median(cpu for _, _, cpu in progress)
    plain_cpu = statistics.median(cpu for _, _, cpu in plain)
    rows = [rate_row("JobJoker: self.log() x %s, self.progress() each %dth -> stored, received"
                     % ("{:,}".format(count), EVERY),
                     [rate for rate, _, _ in progress], "entries/s", entries=count),
            value_row("  CPU time an entry in the job's process, with progress (median)",
                      round(job_cpu, 2), "us", info=True,
                      server=round(statistics.median(cpu for _, cpu, _ in progress), 2)),
            rate_row("interleaved: self.log() x %s alone" % "{:,}".format(count),
                     [rate for rate, _, _ in plain], "entries/s", baseline=True, entries=count),
            value_row("  CPU time an entry in the job's process, without (median)",
                      round(plain_cpu, 2), "us", info=True, baseline=True,
                      server=round(statistics.median(cpu for _, cpu, _ in plain), 2)),
            value_row("  with progress / without: entries/s (median rates)", ratio, "ratio",
                      info=True)]
    if plain_cpu:
        rows.append(value_row("  with progress / without: the job's CPU an entry",
                              round(job_cpu / plain_cpu, 3), "ratio", info=True))
    return {"title": TITLE, "target": TARGET, "met": ratio >= 0.9, "rows": rows}
