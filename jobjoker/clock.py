"""When waiting jobs start: a job's ``start_at``, and the clock that starts scheduled and queued
jobs.

Contract: ``parse_start_at(value)`` is the one reader of a ``start_at``: an RFC 3339 time with
its offset (``2026-12-24T18:00:00Z``) or seconds since the epoch, returned as epoch seconds, or
``BadRequest`` naming ``start_at``. ``Clock`` (one per server) runs one pass at a time on the
loop: in one writer transaction the ``scheduled`` jobs whose time has come (a time passed while
no server ran included) go through admission (``jobjoker.admission``: active, or queued behind a
cap) and the queued jobs a slot is free for move to ``active``, each move a conditional
transition, so across servers only one wins each job; then this server forks what it moved. A
pass runs when woken (``wake``: a job ended — an end hook wakes it after the commit —, a job
became scheduled — the hub's job events —, a start owed a queued job a slot), at the earliest
``start_at`` of the database's scheduled jobs, and every ``RECHECK_SECONDS`` (what another
server of the database changed). A job whose worker is gone
at its time ends ``error`` (reason ``start_failed``).
"""
import asyncio
import datetime
import json
import logging
import math
import time

from jobjoker import admission, jobstore, models
from jobjoker.errors import BadRequest, DatabaseUnavailable
from jobjoker.events import CHANGES
from jobjoker.states import JobStatus

log = logging.getLogger(__name__)

RECHECK_SECONDS = 2.0  # how soon another server's free slot or scheduled job is seen
LATEST = 253402300799  # 9999-12-31T23:59:59Z: the last time a start_at may name
DUE_PER_PASS = 500  # scheduled jobs started by one transaction (more: the next pass, at once)


def parse_start_at(value):
    """``value`` as epoch seconds (None stays None), or ``BadRequest`` naming ``start_at``."""
    if value is None:
        return None
    when = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        when = float(value) if math.isfinite(value) and 0 <= value <= LATEST else None
    elif isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.strip())
            when = parsed.timestamp() if parsed.tzinfo is not None else None
        except (ValueError, OverflowError):
            when = None
    if when is None:
        error = BadRequest('"start_at" must be a time: RFC 3339 with its offset, like '
                           '"2026-12-24T18:00:00Z", or seconds since the epoch; not %s'
                           % json.dumps(value)[:60])
        error.field = "start_at"
        raise error
    return when


def _due_and_next(now):
    """Reader: whether any job waits for this pass (scheduled and due, or queued), and the
    earliest start_at of the scheduled jobs not yet due (None: none)."""
    Job = models.Job
    scheduled = Job.select().where(Job.status == JobStatus.SCHEDULED.value)
    due = scheduled.where(Job.start_at <= now).exists() or \
        Job.select().where(Job.status == JobStatus.QUEUED.value).exists()
    upcoming = Job.select(Job.start_at).where(
        Job.status == JobStatus.SCHEDULED.value, Job.start_at > now).order_by(Job.start_at) \
        .limit(1).scalar()
    workers = [w for w, in Job.select(Job.worker).distinct().where(
        Job.status.in_([JobStatus.SCHEDULED.value, JobStatus.QUEUED.value]),
        (Job.status == JobStatus.QUEUED.value) | (Job.start_at <= now)).tuples()] if due else []
    return workers, upcoming


def due_jobs(now):
    """Writer: the scheduled jobs whose time has come, earliest first."""
    Job = models.Job
    query = (Job.select().where(Job.status == JobStatus.SCHEDULED.value, Job.start_at <= now)
             .order_by(Job.start_at, Job.id).limit(DUE_PER_PASS))
    return jobstore.rows(query)


class Clock:
    """Starts this database's scheduled jobs at their time and queued jobs as slots free."""

    def __init__(self, jobs, storage, hub, recheck=RECHECK_SECONDS):
        self.jobs = jobs  # the JobService: admission, activation, forking
        self.storage = storage
        self.hub = hub
        self.recheck = recheck
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task = None
        self._unsubscribe = None
        self._next = None  # the earliest start_at known
        self._closed = False

    def start(self):
        self.storage.end_hooks.append(self._on_end)
        self._unsubscribe = self.hub.subscribe(self._on_event, CHANGES)
        self._task = asyncio.ensure_future(self._run())
        return self

    async def close(self):
        self._closed = True  # a cancellation that a wait swallows still ends the loop
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._on_end in self.storage.end_hooks:
            self.storage.end_hooks.remove(self._on_end)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def wake(self):
        self._wake.set()

    def wake_threadsafe(self):
        """From any thread (a commit's callback on the writer thread)."""
        self._loop.call_soon_threadsafe(self._wake.set)

    def _on_end(self, tx, job):
        """End hook (writer thread, in the ending transaction): a slot frees with the commit."""
        tx.on_commit(self.wake_threadsafe)

    def _on_event(self, event):
        job = event.get("job") if event.get("type") == "job" else None
        if job is None:
            return
        if job["status"] == JobStatus.SCHEDULED.value and job["start_at"] is not None and (
                self._next is None or job["start_at"] < self._next):
            self.wake()  # an earlier time to wait for

    async def _run(self):
        while not self._closed:
            self._wake.clear()
            try:
                self._next = await self.run_once()
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable:  # an outage, logged once by the storage
                self._next = None
            except Exception:
                log.exception("starting scheduled and queued jobs failed; trying again")
                self._next = None
            wait = self.recheck if self._next is None else \
                min(self.recheck, max(0.0, self._next - time.time()))
            timer = self._loop.call_later(wait, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    async def run_once(self):
        """One pass: start what is due and what a slot is free for; returns the earliest
        start_at still to come (None: none)."""
        now = time.time()
        workers, upcoming = await self.storage.read(_due_and_next, now)
        if workers:
            sources = await self.jobs._read_sources(workers)
            started = await self.storage.transaction(self._start_waiting, now, sources)
            if started:
                await self.jobs._launch(started, None, sources)
        return upcoming

    def _start_waiting(self, tx, now, sources):
        """Writer thread: due scheduled jobs through admission, then the queued jobs owed a
        slot, each to active; returns the jobs to fork."""
        admission.lock()  # before the reads (see jobjoker.admission)
        started = self.jobs._admit_and_activate(tx, due_jobs(now), sources)
        owed = admission.admit_queued(self.jobs._worker_cap)
        return started + self.jobs._activate(tx, owed, sources, JobStatus.QUEUED)
