"""Job rows: the one module that reads and writes them, and the one function that changes a
job's status.

Contract: every function here runs on a ``Storage`` thread (see ``jobjoker.storage``); the
writing ones take the transaction ``tx`` and announce what they changed with ``tx.publish``, so
events go out only once the change has committed. Reads return ``JobRow`` tuples: plain data,
safe to hand to the IOLoop. Every write of a job row adds one to its ``revision``, which every
copy of a job carries (``job_to_dict``), so a client holding two copies keeps the one with the
higher revision. ``transition(tx, job_id, new_status, **fields)`` is the only code that writes
``status``: one conditional UPDATE (``... WHERE id = ? AND status IN (allowed sources)``) whose
row count decides, so two racing starts cannot both win and nothing reads then writes. A move
to a final status must say why (``reason``, one of ``states.REASONS``): one without is refused
with ``ValueError``, a programming error, so no path can forget it. A job that reaches a final
status is handed to ``tx.job_ended`` (the storage's end hooks: retries, webhooks) in the same
transaction.

A job may be named by its id or by the id's last ``SHORT_ID_LENGTH`` characters, as the admin
page shows it: ``resolve(reference)`` turns either into the id (one indexed lookup of the
stored ``short_id``), ``NotFound`` when no job has it, ``Conflict`` listing the ids when several
do. The handlers resolve a job route's id once, before anything else reads it.
"""
import collections
import json
import secrets
import time

import peewee

from jobjoker import models
from jobjoker.errors import Conflict, InvalidTransition, NotFound
from jobjoker.parameters import had_secrets
from jobjoker.states import (ACTIONS, FINAL_STATES, MOVES, REASONS, RUNNING_STATES,
                             JobStatus, allowed_sources, describe)
from jobjoker.statements import execute, param

Job = models.Job
FIELDS = Job._meta.sorted_fields
JobRow = collections.namedtuple("JobRow", [field.name for field in FIELDS])
COUNTERS = {"log": "log_count", "response": "response_count"}
# A row's next revision, as SQL (a literal: the compiled statements bind only named values).
ONE_MORE = Job.revision + peewee.SQL("1")
# Statements with a list of ids bind one parameter per id: SQLite allows 32,766 parameters
# (999 before 3.32), so long lists go in parts.
MAX_IDS_PER_STATEMENT = 500
RUNNING = sorted(status.value for status in RUNNING_STATES)

# --- ids -----------------------------------------------------------------------------------------

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_last_id_value = 0


def new_job_id():
    """An opaque, URL-safe, time-ordered id: 10 chars of milliseconds + 10 random chars.

    Monotonic within a server: an id made in the same millisecond as the previous one is that
    one plus one, so "newest first" by id is creation order (as in ULID's monotonic mode).
    """
    global _last_id_value
    value = (int(time.time() * 1000) << 50) | int.from_bytes(secrets.token_bytes(7), "big") >> 6
    if value >> 50 == _last_id_value >> 50 and value <= _last_id_value:
        value = _last_id_value + 1
    _last_id_value = value
    return encode_job_id(value)


SHORT_ID_LENGTH = 6
MAX_AMBIGUOUS_SHOWN = 10  # ids listed in the refusal of a short id that several jobs share


def short_id_of(job_id):
    """The short form of a job id: its last characters (its random part), as the page shows."""
    return job_id[-SHORT_ID_LENGTH:]


def encode_job_id(value):
    """A job id's 100-bit value (milliseconds << 50 | 50 more bits) as its 20 characters."""
    chars = []
    for _ in range(20):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


# --- what clients see ----------------------------------------------------------------------------

def job_to_dict(job):
    """The job as the API and the events show it."""
    duration = None
    if job.starttime is not None:
        duration = round((job.stoptime or time.time()) - job.starttime, 3)
    return {
        "id": job.id,
        "worker": job.worker,
        "status": job.status,
        "parameters": json.loads(job.parameters),
        "pid": job.pid,
        "node": job.node,
        "created": job.created,
        "starttime": job.starttime,
        "stoptime": job.stoptime,
        "duration": duration,
        "stop_requested": job.stop_requested,
        "exit_code": job.exit_code,
        "exit_signal": job.exit_signal,
        "error": job.error,
        "created_by": job.created_by,
        "log_count": job.log_count,
        "response_count": job.response_count,
        "revision": job.revision,
        "timeout": job.timeout,
        "deadline": job.deadline,
        "stop_reason": job.stop_reason,
        "pause_requested": job.pause_requested,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "result_size": job.result_size,
        "rerun_of": job.rerun_of,
        "code_hash": job.code_hash,
        "cpu_seconds": job.cpu_seconds,
        "rss_bytes": job.rss_bytes,
        "max_rss_bytes": job.max_rss_bytes,
        "start_at": job.start_at,
        "queued": job.queued,
        "reason": job.reason,
        "schedule_id": job.schedule_id,
        "retry_of": job.retry_of,
        "attempt": job.attempt,
        # its retry policy (jobjoker.retries): attempt N of retries + 1
        "retries": job.retries,
        "retry_delay": job.retry_delay,
        "retry_backoff": job.retry_backoff,
        "retry_on_timeout": job.retry_on_timeout,
    }


def announce(tx, action, job):
    tx.publish({"type": "job", "action": action, "job": job_to_dict(job)})


# --- reading -------------------------------------------------------------------------------------

def rows(query):
    """The ``JobRow``s of ``query``, a select of whole jobs (``Job.select()...``)."""
    return [_row(values) for values in query.tuples()]


def _row(values):
    return JobRow(*[value if value is None else field.python_value(value)
                    for field, value in zip(FIELDS, values)])


def _parts(job_ids):
    return [job_ids[start:start + MAX_IDS_PER_STATEMENT]
            for start in range(0, len(job_ids), MAX_IDS_PER_STATEMENT)]


def _id_params(job_ids):
    return [param("id %d" % i) for i in range(len(job_ids))]


def _id_values(job_ids):
    return {"id %d" % i: job_id for i, job_id in enumerate(job_ids)}


def get(job_id):
    """The job's row, or ``NotFound``."""
    values = execute("get", lambda: Job.select().where(Job.id == param("id")),
                     {"id": job_id}).fetchone()
    if values is None:
        raise NotFound("no job with id %r" % job_id)
    return _row(values)


def needs_resolving(reference):
    """Whether ``reference`` may be a short id (else it can only be a whole one)."""
    return len(reference) == SHORT_ID_LENGTH


def resolve(reference):
    """The id of the job that ``reference`` names, by its id or its short id; ``NotFound`` or,
    when several jobs have that short id, ``Conflict`` naming them."""
    if not needs_resolving(reference) or exists(reference):
        return reference
    found = [job_id for job_id, in Job.select(Job.id).where(Job.short_id == reference)
             .order_by(Job.id.desc()).limit(MAX_AMBIGUOUS_SHOWN + 1).tuples()]
    if not found:
        raise NotFound("no job with id %r (nor one whose id ends with it)" % reference)
    if len(found) > 1:
        shown = ", ".join(found[:MAX_AMBIGUOUS_SHOWN])
        raise Conflict("%r is the short id of several jobs (%s%s): use the whole id"
                       % (reference, shown, " and more" if len(found) > MAX_AMBIGUOUS_SHOWN
                          else ""))
    return found[0]


def get_many(job_ids):
    """The rows of ``job_ids`` that exist, in the order of ``job_ids``."""
    found = {}
    for part in _parts(job_ids):
        cursor = execute(("get_many", len(part)), lambda: Job.select().where(
            Job.id.in_(_id_params(part))), _id_values(part))
        for values in cursor.fetchall():
            job = _row(values)
            found[job.id] = job
    return [found[job_id] for job_id in job_ids if job_id in found]


def _matching(query, status, worker):
    if status:
        query = query.where(Job.status == status)
    if worker:
        query = query.where(Job.worker == worker)
    return query


def page(status=None, worker=None, offset=0, limit=50):
    """Jobs newest first, optionally of one status and/or worker."""
    query = _matching(Job.select(), status, worker).order_by(Job.id.desc())
    return [_row(values) for values in query.offset(offset).limit(limit).tuples()]


def count(status=None, worker=None):
    """How many jobs ``page`` pages through (an index answers: (status, id), (worker, id))."""
    return _matching(Job.select(), status, worker).count()


def count_by_status():
    """``{status: number of jobs}`` for /metrics: one GROUP BY that the (status, id) index
    answers without reading the rows."""
    query = Job.select(Job.status, peewee.fn.COUNT(Job.id)).group_by(Job.status)
    return {status: number for status, number in query.tuples()}


def count_by_code_hash(worker, hashes):
    """``{code hash: number of jobs}`` of ``worker`` that ran one of ``hashes`` (the (worker,
    code_hash) index answers); for ``codestore``'s retention and its list of versions."""
    counts = {}
    for start in range(0, len(hashes), MAX_IDS_PER_STATEMENT):
        part = hashes[start:start + MAX_IDS_PER_STATEMENT]
        query = (Job.select(Job.code_hash, peewee.fn.COUNT(Job.id))
                 .where(Job.worker == worker, Job.code_hash.in_(part)).group_by(Job.code_hash))
        counts.update(query.tuples())
    return counts


def active_on_node(node):
    """Every job of ``node`` whose process runs (active or paused)."""
    return rows(Job.select().where(Job.status.in_(RUNNING), Job.node == node))


def an_active_job_of(worker):
    """The id of one running (active or paused) job of ``worker``, or None."""
    return Job.select(Job.id).where(Job.worker == worker, Job.status.in_(RUNNING)).scalar()


def next_attempt(job_id):
    """The row of the job that retries ``job_id`` (its ``retry_of``), or None."""
    query = Job.select().where(Job.retry_of == job_id).order_by(Job.id).limit(1)
    found = query.tuples().first()
    return None if found is None else _row(found)


def exists(job_id):
    return Job.select(Job.id).where(Job.id == job_id).exists()


# --- writing -------------------------------------------------------------------------------------

def _db_values(fields):
    """``fields`` (column name -> value) as the driver stores them (Peewee's conversion)."""
    return {name: value if value is None else getattr(Job, name).db_value(value)
            for name, value in fields.items()}


def _assignments(names):
    """SET clauses for ``names`` (one parameter each), with the revision counted up."""
    assignments = {getattr(Job, name): param(name) for name in names}
    assignments[Job.revision] = ONE_MORE
    return assignments


def insert(tx, rows):
    """Store new jobs (dicts of column values; the model's defaults fill the rest), announce
    each as created; returns their rows."""
    names = [field.name for field in FIELDS]
    jobs = []
    for row in rows:
        values = {field.name: row[field.name] if field.name in row else field.default
                  for field in FIELDS}
        values = {name: value() if callable(value) else value for name, value in values.items()}
        values["short_id"] = short_id_of(values["id"])
        execute("insert", lambda: Job.insert({getattr(Job, name): param(name) for name in names}),
                {name: getattr(Job, name).db_value(values[name]) for name in names})
        jobs.append(JobRow(**values))
    for job in jobs:
        announce(tx, "created", job)
    return jobs


def already_ended(job):
    """The refusal of a command to a job that has ended."""
    return InvalidTransition("job %s has already ended: it %s" % (job.id, describe(job.status)))


def _refusal(job, new_status, sources):
    if not sources:
        return InvalidTransition("job %s %s; no job can %s" % (
            job.id, describe(job.status), MOVES[new_status]))
    return InvalidTransition("job %s %s; only a job that is %s can %s" % (
        job.id, describe(job.status), " or ".join(sources), MOVES[new_status]))


def _check_reason(new_status, fields):
    """A move to a final status carries its ``reason`` (``states.REASONS``); any other move
    carries none. A ``ValueError`` here is a bug of the caller, never the user's."""
    if new_status in FINAL_STATES and fields.get("reason") not in REASONS:
        raise ValueError("a move to %s needs reason= one of %s, not %r"
                         % (new_status.value, ", ".join(REASONS), fields.get("reason")))
    if new_status not in FINAL_STATES and fields.get("reason") is not None:
        raise ValueError("only a move to a final status has a reason")


def _sources(new_status, only):
    """The statuses a move to ``new_status`` may come from, narrowed to ``only`` (a command's
    own: a start comes from idle, a resume from paused), as sorted values."""
    sources = allowed_sources(new_status)
    if only is not None:
        sources = sources & frozenset(JobStatus(status) for status in only)
    return sorted(s.value for s in sources)


def transition(tx, job_id, new_status, announced=True, only=None, **fields):
    """Move ``job_id`` to ``new_status`` (setting ``fields`` too) or raise ``NotFound`` or
    ``InvalidTransition``; returns the job. ``announced=False`` leaves the announcement to a
    later write of the same change (a start is announced once its pid is known); ``only``
    narrows the statuses it may come from (``states.ACTIONS[command]``)."""
    new_status = JobStatus(new_status)
    _check_reason(new_status, fields)
    sources = _sources(new_status, only)
    values = dict(_db_values(fields), status=new_status.value, **{"job id": job_id},
                  **{"source %d" % i: source for i, source in enumerate(sources)})
    changed = execute(("transition", new_status, tuple(sources), tuple(sorted(fields))), lambda: (
        Job.update(_assignments(["status", *sorted(fields)]))
        .where(Job.id == param("job id"),
               Job.status.in_([param("source %d" % i) for i in range(len(sources))]))),
        values).rowcount
    job = get(job_id)
    if not changed:
        raise _refusal(job, new_status, sources)
    if new_status in FINAL_STATES:
        tx.job_ended(job)
    if announced:
        announce(tx, "status", job)
    return job


def transition_many(tx, job_ids, new_status, announced=True, only=None, **fields):
    """Move every job of ``job_ids`` to ``new_status`` (setting ``fields`` too), or raise for
    the first that cannot move; raising rolls the whole transaction back, so it is all or
    none. Returns the jobs, in order (``announced`` and ``only`` as for ``transition``)."""
    new_status = JobStatus(new_status)
    _check_reason(new_status, fields)
    sources = _sources(new_status, only)
    job_ids = list(dict.fromkeys(job_ids))
    before = {job.id: job for job in get_many(job_ids)}
    for job_id in job_ids:  # name the first that cannot move, before anything moves
        if job_id not in before:
            raise NotFound("no job with id %r" % job_id)
        if before[job_id].status not in sources:
            raise _refusal(before[job_id], new_status, sources)
    values = dict(_db_values(fields), status=new_status.value,
                  **{"source %d" % i: source for i, source in enumerate(sources)})
    changed = 0
    for part in _parts(job_ids):
        changed += execute(
            ("transition_many", new_status, tuple(sources), tuple(sorted(fields)), len(part)),
            lambda: Job.update(_assignments(["status", *sorted(fields)])).where(
                Job.id.in_(_id_params(part)),
                Job.status.in_([param("source %d" % i) for i in range(len(sources))])),
            dict(values, **_id_values(part))).rowcount
    if changed != len(job_ids):  # another server's change came between the two statements
        raise InvalidTransition("another change of these jobs came first; none could %s"
                                % MOVES[new_status])
    jobs = get_many(job_ids)
    if new_status in FINAL_STATES:
        for job in jobs:
            tx.job_ended(job)
    if announced:
        for job in jobs:
            announce(tx, "status", job)
    return jobs


def update(tx, job_id, action="updated", **fields):
    """Set fields other than ``status`` (pid, stop intent, ...); returns the job, announced
    with ``action`` (None: not announced)."""
    if "status" in fields:
        raise ValueError("status changes go through transition()")
    names = sorted(fields)
    values = dict(_db_values(fields), **{"job id": job_id})
    changed = execute(("update", tuple(names)), lambda: Job.update(_assignments(names)).where(
        Job.id == param("job id")), values).rowcount
    if not changed:
        raise NotFound("no job with id %r" % job_id)
    job = get(job_id)
    if action:
        announce(tx, action, job)
    return job


# --- secret values -------------------------------------------------------------------------------

def appends_open(job, now, retention):
    """Whether entries may still be appended to ``job`` at ``now``: until ``retention``
    seconds (``--secret-retention``) after its end, while they can be masked with its secrets,
    and never once those are erased (by a server with a shorter retention)."""
    if job.status not in FINAL_STATES:
        return True
    if job.secret_parameters is None and had_secrets(json.loads(job.parameters)):
        return False  # it had secret values, now erased
    return job.stoptime is None or now <= job.stoptime + retention


def secrets_needed(job, now, retention):
    """Whether anything may still need the job's secret values at ``now``: the one place that
    decides when they are erased (``erase_secrets``)."""
    # Retries and schedules (later issues) plug in here: a job that a pending retry or a
    # schedule refers to keeps its secret values until that is done with them.
    return appends_open(job, now, retention)


def with_secrets(after_id, limit):
    """Up to ``limit`` jobs holding secret values, by id after ``after_id`` ("" first)."""
    return rows(Job.select().where(Job.secret_parameters.is_null(False), Job.id > after_id)
                .order_by(Job.id).limit(limit))


def set_secrets(tx, job_id, stored, was):
    """Store a job's secret values in another form (sealed anew) if they are still ``was``,
    unannounced (nothing a client sees changes); returns 1 if stored, else 0."""
    return Job.update({Job.secret_parameters: stored, Job.revision: ONE_MORE}).where(
        Job.id == job_id, Job.secret_parameters == was).execute()


def erase_secrets(tx, job_ids, now, retention):
    """Erase (NULL) the secret values of those of ``job_ids`` that ``secrets_needed`` says
    nothing needs any more, unannounced; returns the ids erased."""
    spent = [job.id for job in get_many(job_ids)
             if job.secret_parameters is not None and not secrets_needed(job, now, retention)]
    for part in _parts(spent):
        Job.update({Job.secret_parameters: None, Job.revision: ONE_MORE}).where(
            Job.id.in_(part)).execute()
    return spent


def delete(tx, job_id):
    """Delete a job whose process is not running (``Conflict`` while it is) with its
    ``job_data`` (result, usage series); returns its last row. Its entries are the log store's
    to delete."""
    job = get(job_id)
    deletable = [status.value for status in ACTIONS["delete"]]
    deleted = Job.delete().where(Job.id == job_id, Job.status.in_(deletable)).execute()
    if not deleted:
        raise Conflict("job %s %s: stop or kill it before deleting it"
                       % (job_id, describe(job.status)))
    models.JobData.delete().where(models.JobData.job == job_id).execute()
    announce(tx, "deleted", job)
    return job


def delete_finished(tx, job_ids):
    """Delete those of ``job_ids`` that are finished (stop, error, done: a status that never
    changes again) with their ``job_data``, a few statements for them all; one that is not
    finished, or is gone, is left alone. Returns the rows deleted. Their entries are the log
    store's to delete (retention: ``jobjoker.pruner``)."""
    final = [status.value for status in FINAL_STATES]
    jobs = [job for job in get_many(job_ids) if job.status in final]
    for part in _parts([job.id for job in jobs]):
        Job.delete().where(Job.id.in_(part), Job.status.in_(final)).execute()
        models.JobData.delete().where(models.JobData.job.in_(part)).execute()
    for job in jobs:
        announce(tx, "deleted", job)
    return jobs


# --- the log store's counters --------------------------------------------------------------------

def lock_counters(job_id, stream, lock):
    """(entries, log bytes, log marker seq) of a stream, locking the row (``lock``: MySQL, where
    several servers may append) until the transaction ends; ``NotFound`` if there is no job."""
    counter = getattr(Job, COUNTERS[stream])
    values = execute(("counters", stream, lock), lambda: (
        Job.select(counter, Job.log_bytes, Job.log_marker_seq)
        .where(Job.id == param("id")).for_update(lock)), {"id": job_id}).fetchone()
    if values is None:
        raise NotFound("no job with id %r" % job_id)
    return values[0], values[1] or 0, values[2]


def add_entries(job_id, stream, count, size, offsets):
    """Count ``count`` new entries (``size`` bytes of log) and set the spool ``offsets`` (Job
    offset field -> value) committed with them."""
    counter = getattr(Job, COUNTERS[stream])
    names = sorted(offsets)
    values = dict(offsets, count=count, size=size, **{"job id": job_id})
    execute(("add_entries", stream, tuple(names)), lambda: Job.update({
        counter: counter + param("count"), Job.log_bytes: Job.log_bytes + param("size"),
        Job.revision: ONE_MORE, **{getattr(Job, name): param(name) for name in names}})
        .where(Job.id == param("job id")), values)


def log_dropped(job_id):
    """How many log entries the cap has dropped so far."""
    return Job.select(Job.log_dropped).where(Job.id == job_id).scalar() or 0


def set_log_cap(job_id, marker=None, log_bytes=None, dropped=None):
    """Record the log cap's state: the marker entry's seq, the bytes kept, the entries dropped."""
    fields = {name: value for name, value in (("log_marker_seq", marker),
                                               ("log_bytes", log_bytes),
                                               ("log_dropped", dropped)) if value is not None}
    fields[Job.revision.name] = ONE_MORE
    Job.update(**fields).where(Job.id == job_id).execute()


# --- resource use --------------------------------------------------------------------------------

def record_usage(tx, job_id, cpu_seconds, rss_bytes, max_rss_bytes):
    """Set a running (active or paused) job's resource figures, unannounced (its stream carries
    them live: ``jobjoker.usage``); returns whether the job was running. One statement, no read:
    the sampler's batches write many jobs at a time."""
    values = {"cpu": cpu_seconds, "rss": rss_bytes, "max rss": max_rss_bytes, "job id": job_id,
              **{"running %d" % i: status for i, status in enumerate(RUNNING)}}
    return bool(execute("record_usage", lambda: Job.update({
        Job.cpu_seconds: param("cpu"), Job.rss_bytes: param("rss"),
        Job.max_rss_bytes: param("max rss"), Job.revision: ONE_MORE}).where(
            Job.id == param("job id"),
            Job.status.in_([param("running %d" % i) for i in range(len(RUNNING))])),
        values).rowcount)
