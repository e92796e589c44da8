"""One firing of a schedule: the job it makes, or the run that says why none.

Contract: ``ScheduleFirer.fire(schedule, scheduled_for, next_time, actor=None)`` fires the
schedule read as ``schedule`` for the time ``scheduled_for``. A cron time (``next_time`` given)
is claimed first, in the same writer transaction that creates the job: a conditional UPDATE of
the schedule's ``next_run`` from ``scheduled_for`` to ``next_time`` (its row count decides, so
one server alone fires it) and the run's row, unique per (schedule, time). A run-now
(``next_time`` None, ``actor`` the user who asked) claims nothing and leaves the times as
they are. The job is made as ``POST /jobs`` with ``"start": true`` makes one
(``JobService._prepare_jobs``, ``_insert``, ``_launch``), in the owner's name
(``created_by``), with ``schedule_id``; admission may leave it ``queued`` (never launched
here). Why no job: ``skipped`` (overlap ``skip`` while a job of the schedule still runs or
waits, or missed times under missed ``skip``) or ``failed`` (the worker is gone, the stored
parameters no longer pass its declaration: the reason is recorded, the times move on). An
owner who was deleted, disabled or is no longer an operator or admin pauses the schedule
instead (``paused_reason``). Each firing is audited: ``schedule.fire`` (the server's) or
``schedule.run`` (a run-now, by its user). Returns the run as a dict, or None when another
firing took the time first.
"""
import json
import logging

from jobjoker import admission, models, roles, schedulestore
from jobjoker.schedulespec import iso_time
from jobjoker.audit import SERVER, Actor
from jobjoker.errors import Conflict, DatabaseUnavailable, JobJokerError
from jobjoker.states import JobStatus

log = logging.getLogger(__name__)


class ScheduleFirer:
    """Makes the jobs of schedules."""

    def __init__(self, storage, jobs, audit, secrets):
        self.storage = storage
        self.jobs = jobs
        self.audit = audit
        self.secrets = secrets

    @staticmethod
    def owner_problem(username):
        """Reader thread: why ``username`` may not own a running schedule, else None."""
        user = models.User.get_or_none(models.User.username == username)
        if user is None:
            return "its owner %s was deleted" % username
        if user.disabled:
            return "its owner %s is disabled" % username
        if not roles.allows(user.role, "run"):
            return "its owner %s is now a %s (schedules run as an operator or admin)" % (
                username, user.role)
        return None

    async def fire(self, schedule, scheduled_for, next_time, actor=None, note=None):
        """Fire ``schedule`` for ``scheduled_for``: the run as a dict, or None (taken)."""
        owner = Actor(schedule.owner)

        def read():
            problem = self.owner_problem(schedule.owner)
            return problem, None if problem else self.secrets.open(schedule.secret_parameters)
        try:
            owner_problem, secrets = await self.storage.read(read)
        except DatabaseUnavailable:  # an outage: nothing is recorded, the time fires later
            raise
        except JobJokerError as e:  # the secrets cannot be opened: a failed run
            owner_problem, secrets, failure = None, {}, e.message
        else:
            failure = None
        if owner_problem:
            return await self._pause_for_owner(schedule, owner_problem, actor)
        rows, sources = None, None
        if failure is None:
            spec = {"worker": schedule.worker, "timeout": schedule.timeout,
                    "parameters": dict(json.loads(schedule.parameters or "{}"), **secrets)}
            try:
                rows, _ = await self.jobs._prepare_jobs([spec], owner)
                sources = await self.jobs._read_sources([schedule.worker])
            except JobJokerError as e:
                failure = e.message
        result = await self.storage.transaction(
            self._claim_and_create, schedule, scheduled_for, next_time, rows, sources, failure,
            actor, note)
        if result is None:
            return None
        run, jobs = result
        started = [job for job in jobs if job.status == JobStatus.ACTIVE.value]
        if started:  # a job admission left queued starts when a slot frees, not here
            await self.jobs._launch(started, owner, sources)
            run["job_status"] = (await self.storage.read(
                lambda: models.Job.get_by_id(started[0].id).status))
        return run

    def _claim_and_create(self, tx, schedule, scheduled_for, next_time, rows, sources,
                          failure, actor, note):
        """Writer thread: claim the time, then record its run and make its job (or not)."""
        if failure is None:
            admission.lock()  # before this transaction's first read of jobs (admission's rule)
        if next_time is not None and not schedulestore.claim(tx, schedule, scheduled_for,
                                                             next_time):
            return None
        jobs, job_id = [], None
        if failure is not None:
            outcome, detail = "failed", failure
        else:
            running = schedulestore.unfinished_job_of(schedule.id) \
                if schedule.overlap == "skip" else None
            if running:
                outcome, detail = "skipped", "job %s of this schedule still runs or waits " \
                                             "(overlap: skip)" % running
            else:
                rows = [dict(rows[0], schedule_id=schedule.id)]
                jobs = self.jobs._insert(tx, rows, Actor(schedule.owner), True, sources)
                job_id = jobs[0].id
                outcome = "queued" if jobs[0].status == JobStatus.QUEUED.value else "started"
                detail = note
        schedulestore.record_run(tx, schedule.id, scheduled_for, outcome, job_id, detail)
        self.audit.record(tx, actor or SERVER, "schedule.run" if actor else "schedule.fire",
                          schedule.id, "%s%s for %s" % (
                              outcome, " job %s" % job_id if job_id else "",
                              iso_time(scheduled_for)) + (": %s" % detail if detail else ""))
        return {"scheduled_for": scheduled_for, "outcome": outcome, "detail": detail,
                "job": job_id, "job_status": jobs[0].status if jobs else None}, jobs

    async def skip_missed(self, schedule, scheduled_for, next_time, detail):
        """Claim the missed time ``scheduled_for`` and record it skipped (missed ``skip``)."""
        def skip(tx):
            if not schedulestore.claim(tx, schedule, scheduled_for, next_time):
                return None
            schedulestore.record_run(tx, schedule.id, scheduled_for, "skipped", None, detail)
            self.audit.record(tx, SERVER, "schedule.fire", schedule.id, "skipped for %s: %s"
                              % (iso_time(scheduled_for), detail))
            return {"scheduled_for": scheduled_for, "outcome": "skipped", "detail": detail,
                    "job": None, "job_status": None}
        return await self.storage.transaction(skip)

    async def _pause_for_owner(self, schedule, problem, actor):
        reason = "paused by the server: %s" % problem

        def pause(tx):
            if schedulestore.pause(tx, schedule.id, reason):
                self.audit.record(tx, SERVER, "schedule.pause", schedule.id, reason)
                tx.on_commit(lambda: log.warning("schedule %s: %s", schedule.id, reason))
        await self.storage.transaction(pause)
        if actor is not None:
            raise Conflict("schedule %s did not run: %s; it is now paused" % (
                schedule.id, problem))
        return None

