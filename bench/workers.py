"""The trivial workers the benchmark cases run, as source text for a scratch workers dir."""

HELLO = '''from jobjoker import Worker


class Hello(Worker):
    """Logs one entry at once: what the start-latency case waits for."""

    def run(self):
        self.log("hello")
'''

NOOP = '''from jobjoker import Worker


class Noop(Worker):
    """Does nothing: a job's whole cost is the job machinery."""

    def run(self):
        pass
'''

FLOOD = '''from jobjoker import Worker


class Flood(Worker):
    """Logs ``count`` entries of 80 bytes as fast as self.log() takes them."""

    def run(self):
        line = "x" * 80
        log = self.log
        for _ in range(self.params["count"]):
            log(line)
'''

FLOOD_PROGRESS = '''from jobjoker import Worker


class FloodProgress(Worker):
    """Logs ``count`` entries of 80 bytes like Flood, and reports its progress every ``every``
    entries (self.progress(done, total)), as a worker with a progress bar does."""

    def run(self):
        line = "x" * 80
        log, progress = self.log, self.progress
        count, every = self.params["count"], self.params["every"]
        for i in range(count):
            log(line)
            if i % every == 0:
                progress(i, count, "entry %d" % i)
        progress(count, count, "all logged")
'''

TICKER = '''import time

from jobjoker import Worker


class Ticker(Worker):
    """Logs ``rate`` entries a second for ``seconds``, each carrying the time it was logged."""

    def run(self):
        interval = 1.0 / self.params["rate"]
        count = int(self.params["rate"] * self.params["seconds"])
        due = time.time()
        for _ in range(count):
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            self.log("t=%.6f" % time.time())
            due += interval
'''

SLEEPER = '''import time

from jobjoker import Worker


class Sleeper(Worker):
    """Sleeps ``seconds`` (an idle job)."""

    def run(self):
        time.sleep(self.params.get("seconds", 600))
'''

ALL = {"Hello": HELLO, "Noop": NOOP, "Flood": FLOOD, "Ticker": TICKER, "Sleeper": SLEEPER}
