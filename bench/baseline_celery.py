"""The Celery baseline: a Celery app with a prefork pool on a Redis broker, and its driver.

Contract: the module defines the Celery ``app`` (broker and result backend from
``JJ_BENCH_REDIS_URL``, queue from ``JJ_BENCH_CELERY_QUEUE``, set before this module is
imported; ``CeleryWorker`` passes both to the worker it starts) and a trivial task.
``CeleryWorker(log_path)`` runs
``celery -A bench.baseline_celery worker --pool=prefork -c 2``; ``throughput`` times N trivial
tasks from the first send until every result is in. Celery's pool reuses its two processes: no
task gets a process of its own (the issue's point of comparison).
"""
import os
import time
import uuid

from celery import Celery
from celery.result import ResultSet

from bench.harness import PYTHON, ROOT, Child

REDIS_URL = os.environ.get("JJ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("jj_bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(task_default_queue=os.environ.get("JJ_BENCH_CELERY_QUEUE", "jj-bench"),
                result_expires=600, broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False)


@app.task
def noop():
    """Task: nothing."""


class CeleryWorker:
    """One Celery worker (prefork pool of 2) on a private queue."""

    def __init__(self, log_path):
        self.queue_name = "jj-bench-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        os.environ["JJ_BENCH_CELERY_QUEUE"] = self.queue_name
        app.conf.task_default_queue = self.queue_name
        env = dict(os.environ, JJ_BENCH_REDIS_URL=REDIS_URL, PYTHONPATH=str(ROOT))
        celery_command = os.path.join(os.path.dirname(PYTHON), "celery")
        self.child = Child([celery_command, "-A", "bench.baseline_celery", "worker",
                            "--pool=prefork", "-c", "2", "-Q", self.queue_name, "-l", "WARNING",
                            "--without-gossip", "--without-mingle", "--without-heartbeat"],
                           env=env, cwd=ROOT, log_path=log_path)

    def wait_ready(self, timeout=60.0):
        """Until a warm-up task has come back (both pool processes may still be forking)."""
        noop.apply_async(queue=self.queue_name).get(timeout=timeout)
        return self

    def throughput(self, count, timeout=300.0):
        """Tasks per second: ``count`` trivial tasks, first send to every result in."""
        start = time.perf_counter()
        results = ResultSet([noop.apply_async(queue=self.queue_name) for _ in range(count)])
        results.join_native(timeout=timeout)
        return count / (time.perf_counter() - start)

    def close(self):
        self.child.close()
        import redis
        connection = redis.Redis.from_url(REDIS_URL)
        try:
            for key in connection.scan_iter("*%s*" % self.queue_name):
                connection.delete(key)
        finally:
            connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
