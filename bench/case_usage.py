"""Case 11, the cost of sampling jobs' resource use (``--usage-interval``, jobjoker.usage).

1. **The sampler's own CPU** with 200 sleeping jobs (quick: 40), as % of one core at one pass a
   second: the pass the server's sampler thread makes (``GroupSampler.sample``, its
   ``time.thread_time()``), run here over the process groups of a real server's jobs, the
   machine's other processes included in what it lists. The jobs' own CPU is not in it.
2. **The server process's CPU** over the same windows, 200 sleeping jobs each, with sampling on
   (``--usage-interval 1``) and off (``0``): two servers side by side, measured in interleaved
   windows (on, off, on, off ...) so that a machine whose speed drifts weighs on both alike; the
   difference of the medians is what sampling (the thread, and the loop's share: figures,
   series, batches) costs the server.
3. **``self.log()`` throughput and start latency with sampling on and off**, as the ``logs`` and
   ``start`` cases measure them, on two more servers, in interleaved rounds.

Target: sampling 200 jobs costs under 2 % of one core (the sampler's pass, part 1). A verdict
reported here, never a test's assertion.
"""
import asyncio
import statistics
import threading
import time

from bench import workers
from bench.case_logs import one_round
from bench.case_start import jobjoker_samples
from bench.harness import (BenchServer, Scratch, cpu_seconds, latency_row, rate_row,
                           value_row)

TITLE = "resource sampling cost"
TARGET = "sampling 200 sleeping jobs < 2 % of one core; self.log() and start not worse"

SLEEPER = '''import time

from jobjoker import Worker


class Sleeper(Worker):
    """Sleeps until it is stopped: a job whose group the sampler watches at no cost of its own."""

    def run(self):
        while self.is_active():
            time.sleep(0.5)
'''


def start_sleepers(server, count):
    """Start ``count`` sleeping jobs in one batch; their pids (each leads its group)."""
    status, body = server.call("POST", "/jobs/batch", {
        "jobs": [{"worker": "Sleeper"} for _ in range(count)], "start": True}, timeout=120)
    if status != 201:
        raise RuntimeError("the batch of sleepers was refused: %s %s" % (status, body))
    pids = [job["pid"] for job in body["data"] if job["status"] == "active"]
    if len(pids) != count:
        raise RuntimeError("%d of %d sleepers started" % (len(pids), count))
    return pids


def sampler_cost(pids, passes):
    """Median CPU seconds of one ``GroupSampler`` pass over the groups of ``pids`` (after a
    first pass that learns every pid), measured on a thread as the server runs it."""
    from jobjoker.usage_sampler import GroupSampler
    groups = {pid: "job-%d" % pid for pid in pids}
    sampler = GroupSampler()
    costs, seen = [], []

    def work():
        sampler.sample(groups)  # the first pass learns every pid's group
        for _ in range(passes):
            began = time.thread_time()
            results = sampler.sample(groups)
            costs.append(time.thread_time() - began)
            seen.append(len(results))
            time.sleep(0.05)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return statistics.median(costs), min(seen)


def server_windows(on, off, window, rounds):
    """Each server's CPU in % of one core over ``rounds`` windows of ``window`` s, interleaved."""
    shares = {"on": [], "off": []}
    for _ in range(rounds):
        for side, server in (("on", on), ("off", off)):
            before = cpu_seconds(server.process.pid)
            time.sleep(window)
            shares[side].append((cpu_seconds(server.process.pid) - before) / window * 100)
    return shares


def interleaved_logs_and_starts(on, off, rounds, count, starts):
    rates = {"on": [], "off": []}
    latencies = {"on": [], "off": []}
    for _ in range(rounds):
        for side, server in (("on", on), ("off", off)):
            rates[side].append(asyncio.run(one_round(server, count))[0])
            latencies[side] += asyncio.run(jobjoker_samples(server, starts))[0]
    return rates, latencies


def run(options):
    jobs = 40 if options.quick else 200
    window, windows = (3.0, 2) if options.quick else (20.0, 4)
    rows = []
    with Scratch("usage") as tmp:
        for name in ("on", "off", "log-on", "log-off"):
            (tmp / name).mkdir()
        sleepers = {"Sleeper": SLEEPER}
        with BenchServer(tmp / "on", sleepers, args=["--usage-interval", "1"]) as on, \
                BenchServer(tmp / "off", sleepers, args=["--usage-interval", "0"]) as off:
            pids = start_sleepers(on, jobs)
            start_sleepers(off, jobs)
            time.sleep(2.0)  # their start-up CPU is not the sampler's
            per_pass, sampled = sampler_cost(pids, 10 if options.quick else 40)
            share = per_pass * 100  # at one pass a second
            rows.append(value_row("sampler pass over %d sleeping jobs' groups: %% of one core "
                                  "at 1 Hz" % jobs, round(share, 3), "%",
                                  ms_a_pass=round(per_pass * 1000, 3), groups_sampled=sampled))
            shares = server_windows(on, off, window, windows)
            medians = {side: statistics.median(values) for side, values in shares.items()}
            rows.append(value_row("server CPU, %d sleeping jobs, --usage-interval 1" % jobs,
                                  round(medians["on"], 3), "% of a core", info=True,
                                  lowest=round(min(shares["on"]), 3),
                                  highest=round(max(shares["on"]), 3)))
            rows.append(value_row("server CPU, %d sleeping jobs, --usage-interval 0" % jobs,
                                  round(medians["off"], 3), "% of a core", baseline=True,
                                  lowest=round(min(shares["off"]), 3),
                                  highest=round(max(shares["off"]), 3)))
            rows.append(value_row("  sampling's share of the server (on - off)",
                                  round(medians["on"] - medians["off"], 3), "% of a core",
                                  info=True))
        count = 100000 if options.quick else 500000
        rounds = 2 if options.quick else 3
        flood = {"Flood": workers.FLOOD, "Hello": workers.HELLO}
        with BenchServer(tmp / "log-on", flood, args=["--usage-interval", "1"]) as on, \
                BenchServer(tmp / "log-off", flood, args=["--usage-interval", "0"]) as off:
            rates, latencies = interleaved_logs_and_starts(on, off, rounds, count,
                                                           8 if options.quick else 30)
        for side, flag in (("on", "1"), ("off", "0")):
            rows.append(rate_row("self.log() x %s, --usage-interval %s" % (
                "{:,}".format(count), flag), rates[side], "entries/s", baseline=side == "off",
                entries=count))
        for side, flag in (("on", "1"), ("off", "0")):
            rows.append(latency_row("start -> worker's first entry, --usage-interval %s" % flag,
                                    latencies[side], baseline=side == "off"))
    return {"title": TITLE, "target": TARGET, "met": share < 2.0, "rows": rows}
