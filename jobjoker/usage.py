"""Resource use of running jobs: sampled off the loop, shown live, stored in batches, kept.

Contract: one ``UsageMonitor`` per server (the process manager's ``usage``). ``watch(job_id,
pid, resume)`` starts sampling a job's process group (led by ``pid``) once its pid is known, at
its launch or its adoption (``resume``: a restarted server goes on with the figures and series
stored before); ``record_end(tx, job, exit_record)`` writes its final figures in the
transaction of its end (writer thread; once that commits, before the end is announced, the job
counts as ended here: its stored figures are the ones shown), and ``forget(job_id)`` stops
watching it. Every
``--usage-interval`` seconds (0: never, and nothing is sampled) a thread of its own
(``jobjoker.usage_sampler``) measures every watched group and hands the figures to the loop with
``IOLoop.add_callback`` (the one thread-safe IOLoop method); there each job's figures and its
``UsageSeries`` move on, and a job followed by a stream gets a ``usage`` event on its topic:
``{"type": "usage", "job_id", "message"}``, ``message`` the stream's text, encoded once:
``{"type": "usage", "job", "t", "cpu_seconds", "rss_bytes", "max_rss_bytes"}``. The database
hears of it in batches: every ``FLUSH_SECONDS`` one transaction writes the figures of every job
sampled since (``jobjoker.usage_store``), and each job's series with them while it is short,
less often as it grows (``series_due``), so the bytes written stay about the same per job
whatever its age; a server that dies loses at most that much of a series, and its figures
resume from the stored ones. ``usage_of(job_id)`` is what ``GET /jobs/ID/usage`` answers.
"""
import asyncio
import contextvars
import json
import logging
import threading
import time

from tornado.ioloop import IOLoop, PeriodicCallback

from jobjoker import usage_store
from jobjoker.logthrottle import LogThrottle
from jobjoker.usage_sampler import SamplerThread
from jobjoker.usage_series import DEFAULT_CAP, UsageSeries

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0  # between the batches that store the figures
SERIES_SECONDS_PER_POINT = 0.5  # a series of N points is stored at most every N/2 s...
MAX_SERIES_SECONDS = 120.0  # ...and at least every two minutes


class JobUsage:
    """What the monitor knows of one job: its figures and series, on the loop."""

    def __init__(self, job_id, pgid, series):
        self.job_id = job_id
        self.pgid = pgid
        self.series = series
        self.t = None  # when last sampled
        self.cpu_seconds = None
        self.rss_bytes = None
        self.max_rss_bytes = None
        self.dirty = False  # sampled since the last batch
        self.series_stored = 0.0  # monotonic time of the last stored series
        self.loaded = True  # False while a resumed job's stored figures are being read
        # Set on the writer thread once its end has committed (before the end is announced):
        # from then on its stored figures are the ones to show.
        self.ended = False

    def take(self, t, cpu_seconds, rss_bytes):
        self.t = t
        # In the series' unit (a millisecond) already: a point never shows more than the total.
        self.cpu_seconds = max(round(cpu_seconds, 3), self.cpu_seconds or 0.0)
        self.rss_bytes = rss_bytes
        self.max_rss_bytes = max(rss_bytes, self.max_rss_bytes or 0)
        self.series.add(t, self.cpu_seconds, rss_bytes)
        self.dirty = True

    def resume(self, job, series_json):
        """Go on from what a previous server stored (the samples taken since come after)."""
        stored = UsageSeries.from_json(series_json, self.series.interval, self.series.cap)
        for point in self.series.points:
            if not stored.points or point[0] > stored.points[-1][0]:
                stored.add(*point)
        self.series = stored
        if job.cpu_seconds is not None:
            self.cpu_seconds = max(job.cpu_seconds, self.cpu_seconds or 0.0)
        if job.max_rss_bytes is not None:
            self.max_rss_bytes = max(job.max_rss_bytes, self.max_rss_bytes or 0)
        if self.rss_bytes is None:
            self.rss_bytes = job.rss_bytes
        self.loaded = True

    def figures(self, with_series):
        return usage_store.Figures(
            self.job_id, None if self.cpu_seconds is None else round(self.cpu_seconds, 3),
            self.rss_bytes, self.max_rss_bytes, self.series.snapshot() if with_series else None)

    def series_due(self, now):
        wait = min(MAX_SERIES_SECONDS, len(self.series) * SERIES_SECONDS_PER_POINT)
        return now - self.series_stored >= wait

    def to_dict(self):
        figures = self.figures(with_series=False)
        return dict(totals(self.job_id, figures.cpu_seconds, self.rss_bytes,
                           self.max_rss_bytes), sampling=True, **self.series.to_dict())


def totals(job_id, cpu_seconds, rss_bytes, max_rss_bytes):
    return {"id": job_id, "cpu_seconds": cpu_seconds, "rss_bytes": rss_bytes,
            "max_rss_bytes": max_rss_bytes}


class UsageMonitor:
    """Samples the process groups of this server's running jobs."""

    def __init__(self, storage, interval, cap=DEFAULT_CAP, flush_seconds=FLUSH_SECONDS):
        self.storage = storage
        self.hub = storage.hub
        self.interval = interval
        self.cap = cap
        self.flush_seconds = flush_seconds
        self.jobs = {}  # job id -> JobUsage, on the loop
        # pgid -> job id, replaced whole on every change: the sampler thread reads it unlocked.
        self._groups = {}
        # Held while a job's figures change (loop) or are read for its end (writer thread).
        self._lock = threading.Lock()
        self._thread = None
        self._flusher = None
        self._flushing = None
        self._to_load = set()
        self._failures = LogThrottle(log, interval=60.0)
        self.passes = 0  # sampling passes, and the sampler thread's CPU time in them
        self.sampler_seconds = 0.0

    @property
    def enabled(self):
        return self.interval > 0

    def start(self):
        """Start the sampler thread and the batches (nothing when ``--usage-interval 0``)."""
        if not self.enabled:
            return
        loop = IOLoop.current()

        def deliver(t, results, seconds):  # on the sampler's thread
            loop.add_callback(self._on_samples, t, results, seconds)
        self._thread = SamplerThread(self.interval, lambda: self._groups, deliver).start()
        self._flusher = PeriodicCallback(self._flush_soon, self.flush_seconds * 1000)
        self._flusher.start()

    async def close(self):
        """Stop sampling; store what was sampled since the last batch."""
        if self._flusher is not None:
            self._flusher.stop()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.stop)
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.flush(everything=True)

    # --- which jobs -----------------------------------------------------------------------------

    def watch(self, job_id, pid, resume=False):
        """Sample the group of ``pid`` as ``job_id``'s (``resume``: go on from the stored
        figures and series, read in the background)."""
        if not self.enabled or not pid or job_id in self.jobs:
            return
        usage = self.jobs[job_id] = JobUsage(job_id, pid, UsageSeries(self.interval, self.cap))
        self._groups = {**self._groups, pid: job_id}
        if resume:
            usage.loaded = False
            if not self._to_load:
                IOLoop.current().add_callback(self._load_soon)
            self._to_load.add(job_id)

    def forget(self, job_id):
        """Stop sampling ``job_id`` (it has ended, or is no longer this server's)."""
        usage = self.jobs.pop(job_id, None)
        if usage is not None:
            self._groups = {pgid: other for pgid, other in self._groups.items()
                            if other != job_id}

    def _load_soon(self):
        # In a context of its own: whatever request led here, its time limit is not this task's.
        asyncio.get_running_loop().create_task(self._load(), context=contextvars.Context())

    async def _load(self):
        """Read the stored figures of the jobs resumed since (one read for all)."""
        job_ids, self._to_load = sorted(self._to_load), set()
        try:
            stored = await self.storage.read(usage_store.load_many, job_ids)
        except Exception:
            log.exception("reading the stored resource use of %d resumed jobs failed; their "
                          "series start anew", len(job_ids))
            stored = {}
        for job_id in job_ids:
            usage = self.jobs.get(job_id)
            if usage is not None and not usage.loaded:
                with self._lock:
                    if job_id in stored:
                        usage.resume(*stored[job_id])
                    usage.loaded = True

    # --- samples --------------------------------------------------------------------------------

    def _on_samples(self, t, results, seconds):
        """On the loop: one pass's figures (``{job id: (cpu, rss, processes)}``)."""
        self.passes += 1
        self.sampler_seconds += seconds
        for job_id, (cpu_seconds, rss_bytes, _processes) in results.items():
            usage = self.jobs.get(job_id)
            if usage is None or usage.ended:
                continue  # forgotten meanwhile, or its end is stored
            with self._lock:
                usage.take(t, cpu_seconds, rss_bytes)
            if self.hub.subscriber_count(job_id):
                self.hub.publish({"type": "usage", "job_id": job_id,
                                  "message": usage_message(usage)})

    # --- batches --------------------------------------------------------------------------------

    def _flush_soon(self):
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(
                self.flush(), context=contextvars.Context())

    async def flush(self, everything=False):
        """Store, in one transaction, the figures of every job sampled since the last batch,
        with the series that are due (``everything``: all of them)."""
        now = time.monotonic()
        batch, taken = [], []
        for usage in self.jobs.values():
            if not usage.dirty or not usage.loaded or usage.ended:
                continue
            with_series = everything or usage.series_due(now)
            with self._lock:
                batch.append(usage.figures(with_series))
            usage.dirty = False
            if with_series:
                taken.append((usage, usage.series_stored))
                usage.series_stored = now
        if not batch:
            return
        try:
            await self.storage.transaction(usage_store.save, batch)
        except Exception as e:
            for figures in batch:  # the next batch tries again
                if figures.job_id in self.jobs:
                    self.jobs[figures.job_id].dirty = True
            for usage, stored in taken:
                usage.series_stored = stored
            self._failures.log("flush", logging.WARNING, "storing the resource use of %d jobs "
                               "failed (tried again in %g s): %s", len(batch),
                               self.flush_seconds, e)

    # --- the end --------------------------------------------------------------------------------

    def record_end(self, tx, job, exit_record):
        """Writer thread, in the transaction of the job's end: its final figures and series
        (the exit record's exact figures where higher). Forgotten once that commits."""
        usage = self.jobs.get(job.id)
        final = None
        if usage is not None:
            with self._lock:
                if not usage.loaded:  # ended before its stored figures were read: read them now
                    usage.resume(job, usage_store.stored_series(job.id))
                final = usage.figures(with_series=True)
            tx.on_commit(lambda: setattr(usage, "ended", True))
        usage_store.record_end(tx, job, final, exit_record)

    # --- reading --------------------------------------------------------------------------------

    async def usage_of(self, job_id):
        """What ``GET /jobs/ID/usage`` answers: the figures and the series, from memory while
        this server samples the job, else as stored; ``NotFound`` for no such job."""
        usage = self.jobs.get(job_id)
        if usage is not None and usage.loaded and not usage.ended:
            return usage.to_dict()
        job, series_json = await self.storage.read(usage_store.load, job_id)
        series = UsageSeries.from_json(series_json, self.interval or 1.0, self.cap)
        return dict(totals(job.id, job.cpu_seconds, job.rss_bytes, job.max_rss_bytes),
                    sampling=False, step=series.step if series.points else None,
                    points=[list(point) for point in series.points])


def usage_message(usage):
    """The stream's ``usage`` message of a job's latest sample."""
    return json.dumps({"type": "usage", "job": usage.job_id, "t": round(usage.t, 2),
                       "cpu_seconds": round(usage.cpu_seconds, 3), "rss_bytes": usage.rss_bytes,
                       "max_rss_bytes": usage.max_rss_bytes})
