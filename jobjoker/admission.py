"""Admission: whether jobs that are to start may start now, or wait ``queued`` for a slot.

Contract: everything here runs on the writer thread, inside the transaction that starts jobs
(``JobService._insert``, a start command, the ``jobjoker.clock``), and is the one place that
decides a start against the caps:
  - the server's: the ``setting`` row ``max_active_jobs`` (every server of the database shares
    it; ``--max-active-jobs`` writes it at start: ``store_cap``), none when NULL or absent;
  - a worker's: ``max_active`` declared in its class (``worker_cap(name)``: it, or None);
  - a schedule's whose ``overlap`` is ``queue``: one of its jobs at a time.
A job holds a slot while it runs (``active`` or ``paused``: a paused job keeps its slot). The
queue is first in, first out per cap, in the order ``(queued, id)``: ``place`` walks the queued
jobs in that order and lets each take a slot of every cap it is under while one is free; a
queued job held back by its worker's (or schedule's) cap takes nothing, so it holds back no job
of another worker. New candidates come after every queued job: one never overtakes a queued job
that a free slot is owed to. On MySQL and PostgreSQL the setting row is locked first (``SELECT
... FOR UPDATE``), so the admissions of several servers take turns; SQLite has one writer.
A transaction that reads jobs before it admits calls ``lock()`` first: on MySQL (REPEATABLE
READ) its first plain read fixes the snapshot its counts see, which must come after the lock.
Queued jobs are moved to ``active`` by the clock's dispatcher alone (``admit_queued``); a start
(``admit_new``) only ever activates its own candidates, and queues those that do not fit.
"""
import collections
import time

import peewee

from jobjoker import jobstore, models
from jobjoker.states import ACTIONS, JobStatus

SETTING = "max_active_jobs"
Job = models.Job


def _locking():
    return not isinstance(models.database.obj, peewee.SqliteDatabase)


def store_cap(cap):
    """Writer thread, at server start: the row exists (so that it can be locked); ``cap`` (the
    ``--max-active-jobs`` given, else None: the row is left as it is) is written, 0 removing
    the cap."""
    models.Setting.insert(name=SETTING, value=None).on_conflict_ignore().execute()
    if cap is not None:
        models.Setting.update(value=str(cap) if cap else None).where(
            models.Setting.name == SETTING).execute()


def server_cap():
    """The server cap (None: none), the row locked on MySQL and PostgreSQL until the commit."""
    query = models.Setting.select(models.Setting.value).where(models.Setting.name == SETTING)
    if _locking():
        query = query.for_update()
    row = query.tuples().first()
    return int(row[0]) if row and row[0] else None


def lock():
    """Writer thread: take the admission lock now (see the contract), before any read."""
    server_cap()


class Slots:
    """The slots of every cap as the transaction sees them: ``take(job)`` says whether ``job``
    fits under each of its caps and, if so, counts it in."""

    def __init__(self, worker_cap):
        self.cap = server_cap()
        self.worker_cap = worker_cap
        self.by_worker = collections.Counter(dict(
            Job.select(Job.worker, peewee.fn.COUNT(Job.id)).where(Job.status.in_(jobstore.RUNNING))
            .group_by(Job.worker).tuples()))
        self.total = sum(self.by_worker.values())  # every running job is some worker's
        self.queue_schedules = {schedule_id for schedule_id, in models.Schedule.select(
            models.Schedule.id).where(models.Schedule.overlap == "queue").tuples()}
        self.by_schedule = collections.Counter(dict(
            Job.select(Job.schedule_id, peewee.fn.COUNT(Job.id)).where(
                Job.status.in_(jobstore.RUNNING), Job.schedule_id.in_(list(self.queue_schedules)))
            .group_by(Job.schedule_id).tuples())) if self.queue_schedules else {}

    def full(self):
        """Whether the server cap leaves no slot for anyone."""
        return self.cap is not None and self.total >= self.cap

    def take(self, job):
        worker_cap = self.worker_cap(job.worker)
        serial = job.schedule_id is not None and job.schedule_id in self.queue_schedules
        if self.full() or (worker_cap is not None and self.by_worker[job.worker] >= worker_cap) \
                or (serial and self.by_schedule[job.schedule_id] >= 1):
            return False
        self.total += 1
        self.by_worker[job.worker] += 1
        if serial:
            self.by_schedule[job.schedule_id] += 1
        return True


def queued_jobs():
    """The queued jobs in queue order, ``(queued, id)``."""
    return jobstore.rows(Job.select().where(Job.status == JobStatus.QUEUED.value)
                         .order_by(Job.queued, Job.id))


def _owed(slots):
    """Let every queued job take the slots owed to it (in queue order); returns them."""
    owed = []
    if slots.full():  # the usual case with a queue: no slot, so no need to read it
        return owed
    for job in queued_jobs():
        if slots.full():
            break
        if slots.take(job):
            owed.append(job)
    return owed


def admit_new(tx, jobs, worker_cap):
    """Writer thread: of ``jobs`` (rows that are to start now, idle or scheduled, in order),
    those that fit under every cap after the queued jobs owed a slot, and the rest moved to
    ``queued``; returns ``(to start, owed)``: the caller moves the first to active, and the
    dispatcher must be woken when ``owed`` (queued jobs a slot is free for) is not empty."""
    slots = Slots(worker_cap)
    owed = _owed(slots)
    fit, wait = [], []
    for job in jobs:
        (fit if slots.take(job) else wait).append(job)
    if wait:
        jobstore.transition_many(tx, [job.id for job in wait], JobStatus.QUEUED,
                                 only=ACTIONS["start"], queued=time.time())
    return fit, owed


def admit_queued(worker_cap):
    """Writer thread: the queued jobs that a slot is free for, in queue order (the dispatcher
    moves each to active)."""
    return _owed(Slots(worker_cap))


def position(job):
    """A queued job's place in the queue (1: first), counted in queue order; else None."""
    if job.status != JobStatus.QUEUED.value:
        return None
    return Job.select().where(Job.status == JobStatus.QUEUED.value, (Job.queued < job.queued) | (
        (Job.queued == job.queued) & (Job.id < job.id))).count() + 1
