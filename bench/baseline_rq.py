"""The RQ baseline: job functions run by RQ's forking ``Worker``, and how the bench drives it.

Contract: ``RQWorker(redis_url)`` starts one ``rq worker -w rq.worker.Worker`` process (it forks a
"work horse" per job, as JobJoker gives each job its own process) on a queue of its own, and
removes the queue's keys on exit. ``start_latencies`` times enqueue to the first line of the job
function (the job writes its start time into Redis); ``throughput`` times N trivial jobs from
the first enqueue until every one is in RQ's finished registry (its final state stored).
The job functions are importable by the worker because it runs with the checkout on its path.
"""
import os
import time
import uuid

from bench.harness import PYTHON, ROOT, Child


def record_start(key):
    """Job: the first thing it does is store the time it began."""
    began = time.time()
    from rq import get_current_job
    get_current_job().connection.set(key, repr(began), ex=600)


def noop():
    """Job: nothing."""


def redis_problem(redis_url):
    """None when Redis answers at ``redis_url`` and rq is installed, else why not."""
    try:
        import redis
        import rq  # noqa: F401
    except ImportError as e:
        return "not installed (%s): pip install -e '.[bench]'" % e
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as e:  # redis raises several unrelated types
        return "Redis at %s is not reachable: %s" % (redis_url, e)
    return None


class RQWorker:
    """One forking RQ worker process on a private queue."""

    def __init__(self, redis_url, log_path):
        import redis
        from rq import Queue
        self.redis = redis.Redis.from_url(redis_url)
        self.queue_name = "jj-bench-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.queue = Queue(self.queue_name, connection=self.redis)
        rq_command = os.path.join(os.path.dirname(PYTHON), "rq")
        self.child = Child([rq_command, "worker", "-w", "rq.worker.Worker", "-u", redis_url,
                            "-P", str(ROOT), "--logging_level", "WARNING",
                            "--disable-job-desc-logging", self.queue_name],
                           cwd=ROOT, log_path=log_path)

    def wait_ready(self, timeout=60.0):
        """Until a warm-up job has run (the worker is up and idle on its queue)."""
        job = self.queue.enqueue(noop, result_ttl=600)
        deadline = time.monotonic() + timeout
        while job.get_status(refresh=True) != "finished":
            if self.child.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the RQ worker did not run a job (status %s)"
                                   % job.get_status())
            time.sleep(0.02)
        return self

    def start_latencies(self, rounds):
        """Enqueue-to-first-line latencies (ms), one job at a time, the worker idle."""
        samples = []
        for i in range(rounds):
            key = "%s:start:%d" % (self.queue_name, i)
            sent = time.time()
            job = self.queue.enqueue(record_start, key, result_ttl=600)
            deadline = time.monotonic() + 30
            while True:
                began = self.redis.get(key)
                if began is not None:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("RQ job %s did not start" % job.id)
                time.sleep(0.0005)
            samples.append((float(began) - sent) * 1000)
            while job.get_status(refresh=True) != "finished":  # idle again before the next
                time.sleep(0.002)
            self.redis.delete(key)
        return samples

    def throughput(self, count, timeout=300.0):
        """Jobs per second: ``count`` trivial jobs, enqueue to all finished."""
        registry = self.queue.finished_job_registry
        before = registry.count
        start = time.perf_counter()
        for _ in range(count):
            self.queue.enqueue(noop, result_ttl=600)
        deadline = time.monotonic() + timeout
        while registry.count < before + count:
            if time.monotonic() > deadline:
                raise RuntimeError("RQ finished %d of %d jobs in %.0f s"
                                   % (registry.count - before, count, timeout))
            time.sleep(0.005)
        return count / (time.perf_counter() - start)

    def close(self):
        self.child.close()
        try:
            for key in self.redis.scan_iter("*%s*" % self.queue_name):
                self.redis.delete(key)
            self.redis.srem("rq:queues", self.queue.key)  # RQ's list of known queues
        finally:
            self.redis.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
