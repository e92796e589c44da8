"""Job records and the one function that changes a job's status.

Contract: ``Lifecycle.transition(job_id, new_status, **fields)`` moves a job to ``new_status``
with a single conditional UPDATE (``... WHERE id = ? AND status IN (allowed sources)``) whose row
count decides: two racing starts cannot both win, and nothing reads then writes. It raises
``NotFound`` or ``InvalidTransition`` (with a message that says what the job's status is and what
it would have needed) and publishes a ``job``/``status`` event on success;
``transition_many(job_ids, ...)`` does the same for many jobs in one UPDATE, all or none. No other
code writes ``Job.status``. ``job_to_dict`` is the job as the API shows it. ``get_job`` and
``get_jobs`` read job rows, and every statement here runs as SQL that Peewee built once per
database dialect: starting and ending a job reads and writes its row several times, and building
a Peewee query costs more than running it.
"""
import json
import secrets
import time

import peewee

from jobjoker import models
from jobjoker.errors import InvalidTransition, NotFound
from jobjoker.states import JobStatus, allowed_sources

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


def encode_job_id(value):
    """A job id's 100-bit value (milliseconds << 50 | 50 more bits) as its 20 characters."""
    chars = []
    for _ in range(20):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def job_to_dict(job):
    """The job as the API shows it."""
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
    }


# Statements with a list of ids bind one parameter per id: SQLite allows 32,766 parameters
# (999 before 3.32), so long lists go in parts.
MAX_IDS_PER_STATEMENT = 500

_statements = {}  # (database class, key) -> (SQL text, parameter names in order)


def param(name):
    """A named parameter of a query given to ``run_statement``."""
    return peewee.Value(name, converter=False)


def run_statement(key, build, values):
    """Run the query ``build()`` with ``values`` (name -> value) for its ``param(name)``s;
    returns the cursor.

    Peewee takes 100-300 us to turn a query into SQL, several times what SQLite takes to run a
    lookup by primary key, and the start and end of every job read and write its row several
    times. The SQL depends only on the dialect (quoting, placeholders), so it is built once per
    database class and ``key``; the values are still bound by the driver, never formatted in.
    """
    db = models.database.obj
    cache_key = (type(db), key)
    cached = _statements.get(cache_key)
    if cached is None:
        cached = _statements[cache_key] = build().sql()
    sql, names = cached
    return models.database.execute_sql(sql, [values[name] for name in names])


def _db_values(fields):
    """``fields`` (column name -> value) as the driver stores them (Peewee's conversion)."""
    return {name: value if value is None else getattr(models.Job, name).db_value(value)
            for name, value in fields.items()}


def _job_from_row(row):
    """A ``Job`` from a row of ``SELECT job.*`` (columns in the model's field order)."""
    job = models.Job(__no_default__=True)
    job.__data__ = {field.name: value if value is None else field.python_value(value)
                    for field, value in zip(models.Job._meta.sorted_fields, row)}
    return job


def get_job(job_id):
    """The job row, or ``NotFound``."""
    row = run_statement("get_job", lambda: models.Job.select().where(
        models.Job.id == param("id")), {"id": job_id}).fetchone()
    if row is None:
        raise NotFound("no job with id %r" % job_id)
    return _job_from_row(row)


def get_jobs(job_ids):
    """The rows of ``job_ids`` that exist, in the order of ``job_ids``."""
    found = {}
    for part in _parts(job_ids):
        rows = run_statement(("get_jobs", len(part)), lambda: models.Job.select().where(
            models.Job.id.in_(_id_params(part))), _id_values(part)).fetchall()
        for row in rows:
            job = _job_from_row(row)
            found[job.id] = job
    return [found[job_id] for job_id in job_ids if job_id in found]


def _parts(job_ids):
    """``job_ids`` in lists of at most ``MAX_IDS_PER_STATEMENT``."""
    return [job_ids[start:start + MAX_IDS_PER_STATEMENT]
            for start in range(0, len(job_ids), MAX_IDS_PER_STATEMENT)]


def _id_params(job_ids):
    return [param("id %d" % i) for i in range(len(job_ids))]


def _id_values(job_ids):
    return {"id %d" % i: job_id for i, job_id in enumerate(job_ids)}


class _NotAllMoved(Exception):
    """Rolls back a ``transition_many`` that could not move every job."""


class Lifecycle:
    """Owns every change of a job's status; publishes each one."""

    def __init__(self, hub):
        self.hub = hub

    def transition(self, job_id, new_status, **fields):
        """Move ``job_id`` to ``new_status`` (setting ``fields`` too) or raise; returns the job."""
        new_status = JobStatus(new_status)
        sources = [s.value for s in allowed_sources(new_status)]
        values = _db_values(fields)
        values.update({"status": new_status.value, "job id": job_id},
                      **{"source %d" % i: source for i, source in enumerate(sources)})
        changed = run_statement(("transition", new_status, tuple(sorted(fields))), lambda: (
            models.Job.update({getattr(models.Job, name): param(name)
                               for name in ["status", *fields]})
            .where(models.Job.id == param("job id"), models.Job.status.in_(
                [param("source %d" % i) for i in range(len(sources))]))), values).rowcount
        job = get_job(job_id)
        if not changed:
            raise InvalidTransition(
                "job %s is %s; it can become %s only from %s"
                % (job_id, job.status, new_status.value, " or ".join(sources) or "nothing"))
        self.hub.publish({"type": "job", "action": "status", "job": job_to_dict(job)})
        return job

    def transition_many(self, job_ids, new_status, **fields):
        """Move every job of ``job_ids`` to ``new_status`` (setting ``fields`` too) in one
        transaction, or none of them (``InvalidTransition`` naming the first that could not
        move, ``NotFound`` if one does not exist); returns the jobs, in order."""
        new_status = JobStatus(new_status)
        sources = [s.value for s in allowed_sources(new_status)]
        job_ids = list(dict.fromkeys(job_ids))
        values = dict(_db_values(fields), status=new_status.value,
                      **{"source %d" % i: source for i, source in enumerate(sources)})
        try:
            with models.database.atomic():
                changed = 0
                for part in _parts(job_ids):
                    changed += run_statement(
                        ("transition_many", new_status, tuple(sorted(fields)), len(part)),
                        lambda: models.Job.update(
                            {getattr(models.Job, name): param(name)
                             for name in ["status", *fields]})
                        .where(models.Job.id.in_(_id_params(part)), models.Job.status.in_(
                            [param("source %d" % i) for i in range(len(sources))])),
                        dict(values, **_id_values(part))).rowcount
                if changed != len(job_ids):  # the row count decides: roll back, all or none
                    raise _NotAllMoved()
                jobs = get_jobs(job_ids)
        except _NotAllMoved:
            self._refuse_many(job_ids, new_status, sources)
        for job in jobs:
            self.hub.publish({"type": "job", "action": "status", "job": job_to_dict(job)})
        return jobs

    @staticmethod
    def _refuse_many(job_ids, new_status, sources):
        """Raise for the first of ``job_ids`` that could not move to ``new_status``."""
        jobs = {job.id: job for job in get_jobs(job_ids)}
        for job_id in job_ids:
            job = jobs.get(job_id)
            if job is None:
                raise NotFound("no job with id %r" % job_id)
            if job.status not in sources:
                raise InvalidTransition(
                    "job %s is %s; it can become %s only from %s"
                    % (job_id, job.status, new_status.value, " or ".join(sources) or "nothing"))
        raise InvalidTransition("another change of these jobs came first; none moved to %s"
                                % new_status.value)

    def update(self, job_id, **fields):
        """Set fields other than ``status`` (pid, stop intent, ...); returns the job."""
        self._update_row(job_id, fields)
        job = get_job(job_id)
        self.hub.publish({"type": "job", "action": "updated", "job": job_to_dict(job)})
        return job

    def update_many(self, changes):
        """Set fields other than ``status`` of many jobs in one transaction: ``changes`` maps a
        job id to its fields; returns the jobs, in order."""
        if not changes:
            return []
        with models.database.atomic():
            for job_id, fields in changes.items():
                self._update_row(job_id, fields)
        jobs = get_jobs(list(changes))
        for job in jobs:
            self.hub.publish({"type": "job", "action": "updated", "job": job_to_dict(job)})
        return jobs

    @staticmethod
    def _update_row(job_id, fields):
        if "status" in fields:
            raise ValueError("status changes go through transition()")
        values = dict(_db_values(fields), **{"job id": job_id})
        run_statement(("update", tuple(sorted(fields))), lambda: (
            models.Job.update({getattr(models.Job, name): param(name) for name in fields})
            .where(models.Job.id == param("job id"))), values)
