"""The rows of schedules and their runs: the one module that writes ``schedule`` and
``schedule_run``.

Contract: functions run on the storage's threads (readers take no ``tx``; writers take the
write transaction ``tx`` first). ``schedule_to_dict`` is a schedule as the API shows it: its
parameters with secret values masked (never the sealed ones), its next run times (none while
paused) and its last ``models.RUNS_SHOWN`` runs, each with its outcome and, when it made a job,
the job's id and status. ``claim(tx, schedule, scheduled_for, next_time)`` is how a time is
taken: a conditional UPDATE of ``next_run`` from the value read to the next one, whose row
count decides which server fires it, and the run's row, unique per (schedule, time), written in
the same transaction as the job: a time never fires twice, across restarts and servers.
"""
import json
import time

from jobjoker import models, schedulespec
from jobjoker.errors import NotFound
from jobjoker.models import Job, Schedule, ScheduleRun
from jobjoker.states import RUNNING_STATES, WAITING_STATES

OUTCOMES = ("started", "queued", "skipped", "failed")
UNFINISHED = [s.value for s in RUNNING_STATES | WAITING_STATES]


def get(schedule_id):
    """The schedule's row, or ``NotFound``."""
    row = Schedule.get_or_none(Schedule.id == schedule_id)
    if row is None:
        raise NotFound("no schedule %r" % schedule_id)
    return row


def page(offset, limit):
    query = Schedule.select().order_by(Schedule.created, Schedule.id)
    return list(query.offset(offset).limit(limit)), Schedule.select().count()


def runs_of(schedule_ids, count=models.RUNS_SHOWN):
    """``{schedule id: [its newest runs as dicts, newest first]}``, each run with its job's
    status (None when it made no job, or the job was deleted)."""
    runs = {schedule_id: [] for schedule_id in schedule_ids}
    for schedule_id in schedule_ids:
        rows = list(ScheduleRun.select().where(ScheduleRun.schedule == schedule_id)
                    .order_by(ScheduleRun.scheduled_for.desc(), ScheduleRun.id.desc())
                    .limit(count))
        statuses = dict(Job.select(Job.id, Job.status).where(
            Job.id.in_([r.job for r in rows if r.job])).tuples()) if rows else {}
        runs[schedule_id] = [{
            "scheduled_for": r.scheduled_for, "fired": r.fired, "outcome": r.outcome,
            "detail": r.detail, "job": r.job, "job_status": statuses.get(r.job)}
            for r in rows]
    return runs


def schedule_to_dict(row, runs, now=None):
    """The schedule as replies show it (``runs``: its newest runs, from ``runs_of``)."""
    next_runs = []
    if row.paused is None and row.next_run is not None:
        next_runs = [row.next_run] + schedulespec.run_times(
            row.cron, row.timezone, row.next_run, schedulespec.NEXT_SHOWN - 1)
    return {"id": row.id, "name": row.name, "worker": row.worker,
            "parameters": json.loads(row.parameters or "{}"),
            "has_secrets": row.secret_parameters is not None,
            "timeout": row.timeout, "cron": row.cron, "timezone": row.timezone,
            "missed": row.missed, "overlap": row.overlap, "owner": row.owner,
            "paused": row.paused, "paused_reason": row.paused_reason,
            "next_run": row.next_run if row.paused is None else None, "next_runs": next_runs,
            "last_run": row.last_run, "created": row.created, "revision": row.revision,
            "runs": runs}


def read_dicts(schedule_ids):
    """Reader thread: the schedules as dicts (those that still exist, in the order given), with
    their runs and next times. The runs are read first: a firing that commits in between
    makes the schedule's row newer than its runs, never older (its ``next_run`` is always
    after its newest run)."""
    runs = runs_of(schedule_ids)
    rows = {row.id: row for row in Schedule.select().where(Schedule.id.in_(schedule_ids))}
    return [schedule_to_dict(rows[i], runs[i]) for i in schedule_ids if i in rows]


def insert(tx, values):
    Schedule.insert(values).execute()
    return get(values["id"])


def update(tx, schedule_id, **fields):
    """Change fields of the schedule (its revision goes up); the row, or ``NotFound``."""
    changed = (Schedule.update(revision=Schedule.revision + 1, **fields)
               .where(Schedule.id == schedule_id).execute())
    if not changed:
        raise NotFound("no schedule %r" % schedule_id)
    return get(schedule_id)


def delete(tx, schedule_id):
    """Delete the schedule and its runs (its jobs stay, with their ``schedule_id``)."""
    row = get(schedule_id)
    ScheduleRun.delete().where(ScheduleRun.schedule == schedule_id).execute()
    Schedule.delete().where(Schedule.id == schedule_id).execute()
    return row


def due(now):
    """The unpaused schedules whose next run is at or before ``now``."""
    return list(Schedule.select().where(Schedule.paused.is_null(), Schedule.next_run.is_null(
        False), Schedule.next_run <= now).order_by(Schedule.next_run))


def earliest_next_run():
    """The earliest next run of every unpaused schedule (None when there is none)."""
    row = (Schedule.select(Schedule.next_run).where(Schedule.paused.is_null(),
                                                    Schedule.next_run.is_null(False))
           .order_by(Schedule.next_run).limit(1).first())
    return row.next_run if row else None


def claim(tx, schedule, scheduled_for, next_time):
    """Take the time ``scheduled_for`` of the schedule read as ``schedule``: move its
    ``next_run`` from that value to ``next_time``, unpaused. False when another firing (here or
    on another server) took it first: nothing was written."""
    return bool(Schedule.update(next_run=next_time, last_run=scheduled_for)
                .where(Schedule.id == schedule.id, Schedule.next_run == scheduled_for,
                       Schedule.paused.is_null()).execute())


def record_run(tx, schedule_id, scheduled_for, outcome, job=None, detail=None):
    """The run of one time (unique per schedule and time: a second one raises)."""
    assert outcome in OUTCOMES
    ScheduleRun.insert(schedule=schedule_id, scheduled_for=scheduled_for, fired=time.time(),
                       job=job, outcome=outcome, detail=detail).execute()


def unfinished_job_of(schedule_id):
    """The id of a job of the schedule that still runs or waits, else None."""
    row = (Job.select(Job.id).where(Job.schedule_id == schedule_id,
                                    Job.status.in_(UNFINISHED)).limit(1).first())
    return row.id if row else None


def pause(tx, schedule_id, reason, only_if_unpaused=True):
    """Pause the schedule (``paused_reason``: why); False when it already was."""
    query = Schedule.update(paused=time.time(), paused_reason=reason, next_run=None,
                            revision=Schedule.revision + 1).where(Schedule.id == schedule_id)
    if only_if_unpaused:
        query = query.where(Schedule.paused.is_null())
    return bool(query.execute())
