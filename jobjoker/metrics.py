"""The server's figures for Prometheus: ``GET /metrics``, in its text format.

Contract: a ``Metrics()`` holds a ``prometheus_client`` registry of its own (never the global
one, so several servers in one process, as in the tests, do not collide) and costs nothing
until asked. What happens is counted as it happens: ``count_event(event)``, subscribed to the
event hub, counts job starts (not a paused job's resume), job ends by outcome and entries stored (after their commit, from
the events the job store publishes); ``observe_loop_lag(seconds)``, given to the
``LoopMonitor``, fills the loop-lag histogram; ``observe_database(pool, queued, ran)``, given to
the storage by ``watch``, fills the database histograms on the storage's threads (how long work
waited for a thread, how long the thread took over it). What is measured when asked comes from the
sources given to ``watch(...)`` once the server is up: ``exposition()`` (on the IOLoop) pings
the database (off the loop, on the storage's threads), reads the jobs by status with one
``GROUP BY`` at most every ``JOBS_CACHE_SECONDS`` (also off the loop), reads the supervisors'
state and the stream subscribers from memory, and returns the text and its content type. A
database that does not answer makes ``jobjoker_database_up`` 0 and leaves the job figures out
of that scrape; it never fails the scrape.

There is no queue yet (a job starts when asked or not at all): once one exists, its length
belongs here as ``jobjoker_queue_length``.
"""
import time

import peewee
import prometheus_client
from prometheus_client.core import GaugeMetricFamily

from jobjoker.errors import Unavailable
from jobjoker.states import FINAL_STATES, JobStatus
from jobjoker.supervisor_client import HASH_CHARS

JOBS_CACHE_SECONDS = 10.0  # a scrape every few seconds costs one GROUP BY per this long
# Lag of the IOLoop: 1 ms is idle, 100 ms is felt, a second is a stall.
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Database work: a read of SQLite's cache takes 0.1 ms, a round trip to MariaDB about 1 ms, a
# request gives up at 2 s, and a silent link is dropped at 30 s (past the last bucket).
DATABASE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DATABASE_POOLS = ("read", "write")
# The classic text format, which every Prometheus reads and generate_latest writes for our
# plain names (prometheus_client's "latest" says 1.0.0, which Prometheus 2 does not know).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters fed by events, and the figures read at each scrape."""

    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.job_starts = prometheus_client.Counter(
            "jobjoker_job_starts", "Jobs this server started (their status became active).",
            registry=self.registry)
        self.job_ends = prometheus_client.Counter(
            "jobjoker_job_ends", "Jobs that ended while this server ran, by outcome "
            "(done, error, stop).", ["outcome"], registry=self.registry)
        for outcome in sorted(FINAL_STATES):
            self.job_ends.labels(outcome=str(outcome))  # shown at 0 before the first end
        self.entries = prometheus_client.Counter(
            "jobjoker_entries_stored", "Log and response entries this server stored.",
            ["stream"], registry=self.registry)
        for stream in ("log", "response"):
            self.entries.labels(stream=stream)
        self.loop_lag = prometheus_client.Histogram(
            "jobjoker_loop_lag_seconds", "How much later than due the IOLoop ran its "
            "20-a-second tick: what every request and stream waited at that moment.",
            buckets=LOOP_LAG_BUCKETS, registry=self.registry)
        queued = prometheus_client.Histogram(
            "jobjoker_database_queue_seconds", "How long database work waited for a storage "
            "thread (pool: read, the readers; write, the one writer): what requests and "
            "ingestion wait for beyond the statements themselves.", ["pool"],
            buckets=DATABASE_BUCKETS, registry=self.registry)
        ran = prometheus_client.Histogram(
            "jobjoker_database_work_seconds", "How long a storage thread took over one piece "
            "of database work (a read, or a write transaction with its commit), failures and "
            "reconnects included.", ["pool"], buckets=DATABASE_BUCKETS, registry=self.registry)
        # Resolved once: observe_database runs for every piece of work, on the storage threads.
        self._database = {pool: (queued.labels(pool=pool), ran.labels(pool=pool))
                          for pool in DATABASE_POOLS}
        self._sources = None
        self._snapshot = {}
        self._jobs = (None, 0.0)  # (counts by status, monotonic time read)
        self.registry.register(_Snapshot(self))

    def watch(self, storage, count_jobs, supervisors, subscribers):
        """The sources of the scraped figures: the ``Storage``, a storage-thread function
        giving ``{status: count}``, a function giving the supervisors' state (a list of dicts
        with ``pid``, ``connected``, ``jobs``, ``role``) and one giving the number of open
        stream subscribers. The storage's work is timed from then on."""
        self._sources = (storage, count_jobs, supervisors, subscribers)
        storage.time_work(self.observe_database)

    def count_event(self, event):
        """Hub subscriber: count starts, ends and stored entries (never raises)."""
        kind = event.get("type")
        if kind == "entries":
            self.entries.labels(stream=event["stream"]).inc(event.get("count", 0))
        elif kind == "job" and event.get("action") == "status":
            status = event["job"]["status"]
            # A resume makes a job active again (its event says the status it left): not a
            # start.
            if status == JobStatus.ACTIVE and event.get("previous") != JobStatus.PAUSED:
                self.job_starts.inc()
            elif status in FINAL_STATES:
                self.job_ends.labels(outcome=str(status)).inc()

    def observe_loop_lag(self, seconds):
        self.loop_lag.observe(seconds)

    def observe_database(self, pool, queued, ran):
        """Storage thread: one piece of work of ``pool`` waited ``queued`` s and ran ``ran``."""
        queue_histogram, work_histogram = self._database[pool]
        queue_histogram.observe(queued)
        work_histogram.observe(ran)

    async def exposition(self):
        """``(text, content type)`` of every figure, read now."""
        snapshot = {}
        if self._sources is not None:
            storage, count_jobs, supervisors, subscribers = self._sources
            snapshot["supervisors"] = supervisors()
            snapshot["subscribers"] = subscribers()
            snapshot["write_running"] = storage.writing_for()
            began = time.monotonic()
            try:
                await storage.ping()
                snapshot["ping"] = time.monotonic() - began
                snapshot["jobs"] = await self._job_counts(storage, count_jobs)
            except (Unavailable, peewee.PeeweeException):
                snapshot["ping"] = None
        self._snapshot = snapshot
        return prometheus_client.generate_latest(self.registry), CONTENT_TYPE

    async def _job_counts(self, storage, count_jobs):
        counts, read_at = self._jobs
        if counts is None or time.monotonic() - read_at >= JOBS_CACHE_SECONDS:
            counts = await storage.read(count_jobs)
            self._jobs = (counts, time.monotonic())
        return counts


class _Snapshot:
    """The figures ``Metrics.exposition`` read, as Prometheus families."""

    def __init__(self, metrics):
        self.metrics = metrics

    def describe(self):
        return []  # nothing to check at registration: the families depend on the snapshot

    def collect(self):
        snapshot = self.metrics._snapshot
        if "ping" in snapshot:
            up = GaugeMetricFamily("jobjoker_database_up",
                                   "1 when the database answered this scrape's ping in time.")
            up.add_metric([], 0 if snapshot["ping"] is None else 1)
            yield up
            if snapshot["ping"] is not None:
                yield GaugeMetricFamily("jobjoker_database_ping_seconds",
                                        "How long this scrape's SELECT 1 took.",
                                        value=snapshot["ping"])
            yield GaugeMetricFamily(
                "jobjoker_database_write_running_seconds", "How long the oldest unfinished "
                "write has waited or run (0 when none): a growing figure means a database that "
                "hangs.", value=snapshot["write_running"])
        if snapshot.get("jobs") is not None:
            jobs = GaugeMetricFamily("jobjoker_jobs", "Jobs in the database by status (read "
                                     "at most every %g s)." % JOBS_CACHE_SECONDS,
                                     labels=["status"])
            counts = snapshot["jobs"]
            for status in JobStatus:
                jobs.add_metric([status.value], counts.get(status.value, 0))
            yield jobs
        if "subscribers" in snapshot:
            yield GaugeMetricFamily("jobjoker_stream_subscribers",
                                    "Open WebSocket streams (job logs and event streams).",
                                    value=snapshot["subscribers"])
        if "supervisors" in snapshot:
            yield from supervisor_families(snapshot["supervisors"])


def supervisor_families(supervisors):
    """The supervisors' state: up, pid and running jobs, one series per supervisor, labelled
    with its role (``current``, or ``draining`` after an upgrade) and its code hash."""
    labels = ["role", "code"]
    up = GaugeMetricFamily("jobjoker_supervisor_up", "1 when this server is connected to the "
                           "supervisor.", labels=labels)
    pid = GaugeMetricFamily("jobjoker_supervisor_pid", "The supervisor's process id (absent "
                            "while it is not connected).", labels=labels)
    jobs = GaugeMetricFamily("jobjoker_supervisor_jobs", "Jobs running under the supervisor.",
                             labels=labels)
    for supervisor in supervisors:
        role = [supervisor["role"], (supervisor["code_hash"] or "older")[:HASH_CHARS]]
        up.add_metric(role, 1 if supervisor["connected"] else 0)
        if supervisor["pid"] is not None:
            pid.add_metric(role, supervisor["pid"])
        jobs.add_metric(role, supervisor["jobs"])
    return [up, pid, jobs]
