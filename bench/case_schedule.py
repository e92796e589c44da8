"""Schedule lateness: from a schedule's cron time to its job's start (the job's
``starttime``, set in the transaction that claims the time and creates the job active).

One schedule firing every second (croniter's sixth field, seconds) on an idle server, its
overlap ``allow`` so that every time makes a job; after the rounds it is paused and each run's
job read back, in rounds of a new schedule each (a schedule shows its newest ten runs). Also
reported: to the run's ``fired`` time. Baseline in the same
run: how late an asyncio timer armed for each whole second wakes in this process (the floor
any loop-based scheduler has on this machine).
"""
import asyncio
import time

from bench import workers
from bench.harness import BenchServer, HTTPConnection, Scratch, latency_row

TITLE = "schedule lateness"
TARGET = "cron time -> job started: p99 <= 200 ms"
WARMUP = 2


async def jobjoker_samples(server, rounds):
    """(to the job's start, to the claim) in ms, one list each."""
    http = HTTPConnection(server.port, server.auth)
    try:
        status, body = await http.json("POST", "/schedules", {
            "worker": "Hello", "cron": "* * * * * *", "overlap": "allow"})
        assert status == 201, body
        path = "/schedules/%s" % body["data"][0]["id"]
        runs = []
        deadline = time.time() + rounds + WARMUP + 60
        while len(runs) < rounds + WARMUP and time.time() < deadline:
            await asyncio.sleep(1)
            status, body = await http.json("GET", path)
            runs = [run for run in body["data"][0]["runs"] if run["job"]]
        status, body = await http.json("POST", path + "/pause")
        assert status == 200, body
        made = [run for run in reversed(body["data"][0]["runs"]) if run["job"]][WARMUP:]
        to_start, to_claim = [], []
        for run in made:
            status, job = await http.json("GET", "/jobs/%s" % run["job"])
            to_start.append((job["data"][0]["starttime"] - run["scheduled_for"]) * 1000)
            to_claim.append((run["fired"] - run["scheduled_for"]) * 1000)
        return to_start, to_claim
    finally:
        http.close()


async def timer_samples(rounds):
    """How late ``loop.call_at`` for each next whole second of wall time wakes, in ms."""
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(rounds):
        target = int(time.time()) + 1
        woke = loop.create_future()
        loop.call_at(loop.time() + (target - time.time()), woke.set_result, None)
        await woke
        samples.append((time.time() - target) * 1000)
    return samples


def run(options):
    rounds = 8  # with the warm-up, the newest RUNS_SHOWN (10) runs a schedule shows
    samples_start, samples_claim = [], []
    repeats = 1 if options.quick else 6
    with Scratch("schedule") as tmp:
        with BenchServer(tmp, {"Hello": workers.HELLO}) as server:
            for _ in range(repeats):
                to_start, to_claim = asyncio.run(jobjoker_samples(server, rounds))
                samples_start += to_start
                samples_claim += to_claim
    rows = [latency_row("JobJoker: cron time -> its job started", samples_start),
            latency_row("JobJoker: cron time -> its run recorded (after the job's insert)",
                        samples_claim, info=True),
            latency_row("asyncio call_at a whole second -> wake-up, in this process",
                        asyncio.run(timer_samples(max(5, len(samples_start) // 4))),
                        baseline=True)]
    main = rows[0]
    return {"title": TITLE, "target": TARGET, "met": main["p99"] <= 200, "rows": rows}
