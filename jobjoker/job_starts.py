"""How ``JobService`` starts jobs that may have to wait: a mixin of its writer-thread steps.

Contract: ``_admit_and_activate(tx, jobs, sources)`` puts jobs that are to start now (idle or
scheduled) through admission (``jobjoker.admission``): those that fit move to ``active``
(unannounced: the pid announces the start), the rest to ``queued``, and the clock is woken after
the commit when queued jobs are owed a slot. ``_activate`` is the one move of waiting or idle
jobs to ``active``: each gets its start time, node, deadline (its ``timeout`` from now) and the
code it runs (``sources``: ``codestore``) recorded; one whose worker file is gone ends ``error``
(reason ``start_failed``). ``_start`` is the start command: an idle job, or a scheduled one
now, through admission, forked when it became active. ``_cancel`` ends a scheduled or queued job ``stop`` (reason
``cancelled``), audited. ``_with_positions`` adds each queued job's ``queue_position`` (1: next)
to the job dicts a reply shows (events carry none: a place changes with every other job).
"""
import collections
import time

from jobjoker import admission, codestore, jobstore
from jobjoker.errors import InvalidTransition, JobJokerError, NotFound, Unavailable
from jobjoker.jobstore import job_to_dict
from jobjoker.states import ACTIONS, WAITING_STATES, JobStatus, describe
from jobjoker.timefmt import rfc3339

# what may move to active through admission (a paused job resumes elsewhere: jobcontrol)
STARTABLE = (JobStatus.IDLE, JobStatus.SCHEDULED, JobStatus.QUEUED)


class JobStarts:
    """Mixed into ``JobService``: needs ``workers``, ``config``, ``audit`` and ``clock``."""

    clock = None  # the server's jobjoker.clock.Clock, set once it runs

    def _worker_cap(self, name):
        """Writer thread: the worker's declared ``max_active`` (None: none, or no worker)."""
        known = self.workers.known_declaration(name)
        if known is None:
            try:
                _, settings = self.workers.declaration(name)
            except JobJokerError:
                return None
        else:
            settings = known[2]
        return (settings or {}).get("max_active")

    def _wake_clock(self):
        if self.clock is not None:
            self.clock.wake_threadsafe()

    def _admit_and_activate(self, tx, jobs, sources):
        """Writer thread: ``jobs`` (idle or scheduled, to start now, in order) active where a
        slot is free, else queued; returns the rows moved to active."""
        if not jobs:
            return []
        fit, owed = admission.admit_new(tx, jobs, self._worker_cap)
        if owed:  # a queued job a slot is free for: the dispatcher hands it over
            tx.on_commit(self._wake_clock)
        return self._activate(tx, fit, sources)

    def _activate(self, tx, jobs, sources, source=None):
        """Writer thread: ``jobs`` to active, with start time, node, deadline and code; returns
        their rows (those whose worker is gone, ended ``error``, are left out)."""
        sources = sources or {}
        gone = [job for job in jobs if job.worker in sources and sources[job.worker] is None]
        now = time.time()
        for job in gone:
            jobstore.transition(tx, job.id, JobStatus.ERROR, only=STARTABLE, stoptime=now,
                                reason="start_failed", error="could not start: its worker %r "
                                "no longer exists" % job.worker)
        jobs = [job for job in jobs if job not in gone]
        if not jobs:
            return []
        codestore.record_sources(tx, [s for s in sources.values() if s is not None])
        groups = collections.defaultdict(list)  # one statement per (time limit, code)
        for job in jobs:
            source_ = sources.get(job.worker)
            groups[job.timeout, None if source_ is None else source_.hash].append(job.id)
        for (timeout, code_hash), ids in groups.items():
            jobstore.transition_many(tx, ids, JobStatus.ACTIVE, announced=False,
                                     only=(source,) if source else STARTABLE, starttime=now,
                                     node=self.config.node, code_hash=code_hash,
                                     deadline=now + timeout if timeout else None)
        return jobstore.get_many([job.id for job in jobs])

    @staticmethod
    def _how_started(job):
        """How a job that was to start did: started, scheduled for its time, or queued."""
        if job.status == JobStatus.SCHEDULED.value:
            return "; it is scheduled to start at %s" % rfc3339(job.start_at)
        if job.status == JobStatus.QUEUED.value:
            return (" and queued: a concurrency cap is full; it starts when a slot frees "
                    "(its place in the queue: queue_position)")
        return " and started"

    async def _start(self, job_id, actor):
        idle = await self.storage.read(jobstore.get, job_id)
        sources = await self._read_sources([idle.worker])
        job = await self.storage.transaction(self._begin_start, job_id, sources)
        if job.status != JobStatus.ACTIVE.value:
            return job  # queued behind a cap
        # A job that fails at once may already be final here: that is its end, not a failure
        # to start (launch raises Unavailable when the supervisor could not fork it).
        [(job, problem)] = await self._launch([job], actor, sources)
        if problem is not None:
            raise Unavailable("job %s could not start: %s" % (job.id, problem))
        return job

    def _begin_start(self, tx, job_id, sources):
        """Writer thread: an idle or scheduled job of an existing worker goes through
        admission: active, unannounced (its start is announced with its pid), with the code it
        runs (``sources``) recorded, or queued; the statuses of two racing starts are read in
        turn."""
        admission.lock()  # before the read below (see jobjoker.admission)
        job = jobstore.get(job_id)
        if job.status == JobStatus.QUEUED.value:
            raise InvalidTransition("job %s is queued: it starts when a slot frees under its "
                                    "concurrency cap (stop it to cancel)" % job.id)
        if job.status not in ACTIONS["start"]:
            raise InvalidTransition(
                "job %s %s; only an idle job can start (create a new job to run %s again)"
                % (job.id, describe(job.status), job.worker))
        if not self.workers.exists(job.worker):
            raise NotFound("job %s cannot start: its worker %r no longer exists"
                           % (job.id, job.worker))
        self._admit_and_activate(tx, [job], sources)
        return jobstore.get(job_id)

    def _cancel(self, tx, job_id, command, actor):
        """Writer thread: a scheduled or queued job ends ``stop`` (reason ``cancelled``);
        ``InvalidTransition`` when it is no longer waiting."""
        job = jobstore.transition(tx, job_id, JobStatus.STOP, only=WAITING_STATES,
                                  stoptime=time.time(), reason="cancelled")
        self.audit.record(tx, actor, "job.%s" % command, job_id, "cancelled before it started")
        return job

    async def _with_positions(self, jobs):
        """The job dicts of rows ``jobs``, each with its ``queue_position`` (read only when one
        of them is queued)."""
        positions = [None] * len(jobs)
        if any(job.status == JobStatus.QUEUED.value for job in jobs):
            positions = await self.storage.read(lambda: [admission.position(job)
                                                         for job in jobs])
        return [dict(job_to_dict(job), queue_position=place)
                for job, place in zip(jobs, positions)]

    async def _shown(self, job):
        """The job dict of row ``job`` with its ``queue_position``."""
        [shown] = await self._with_positions([job])
        return shown
