"""Job records and the one function that changes a job's status.

Contract: ``Lifecycle.transition(job_id, new_status, **fields)`` moves a job to ``new_status``
with a single conditional UPDATE (``... WHERE id = ? AND status IN (allowed sources)``) whose row
count decides: two racing starts cannot both win, and nothing reads then writes. It raises
``NotFound`` or ``InvalidTransition`` (with a message that says what the job's status is and what
it would have needed) and publishes a ``job``/``status`` event on success. No other code writes
``Job.status``. ``job_to_dict`` is the job as the API shows it.
"""
import json
import secrets
import time

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


def get_job(job_id):
    """The job row, or ``NotFound``."""
    job = models.Job.get_or_none(models.Job.id == job_id)
    if job is None:
        raise NotFound("no job with id %r" % job_id)
    return job


class Lifecycle:
    """Owns every change of a job's status; publishes each one."""

    def __init__(self, hub):
        self.hub = hub

    def transition(self, job_id, new_status, **fields):
        """Move ``job_id`` to ``new_status`` (setting ``fields`` too) or raise; returns the job."""
        new_status = JobStatus(new_status)
        sources = [s.value for s in allowed_sources(new_status)]
        changed = (models.Job.update(status=new_status.value, **fields)
                   .where(models.Job.id == job_id, models.Job.status.in_(sources))
                   .execute())
        job = get_job(job_id)
        if not changed:
            raise InvalidTransition(
                "job %s is %s; it can become %s only from %s"
                % (job_id, job.status, new_status.value, " or ".join(sources) or "nothing"))
        self.hub.publish({"type": "job", "action": "status", "job": job_to_dict(job)})
        return job

    def update(self, job_id, **fields):
        """Set fields other than ``status`` (pid, stop intent, ...); returns the job."""
        if "status" in fields:
            raise ValueError("status changes go through transition()")
        models.Job.update(**fields).where(models.Job.id == job_id).execute()
        job = get_job(job_id)
        self.hub.publish({"type": "job", "action": "updated", "job": job_to_dict(job)})
        return job
