"""A job's structured result: the one module that reads and writes ``job_data`` rows of kind
``result``.

Contract: runs on ``Storage`` threads. ``store(tx, job_id, text)`` replaces the job's result
(JSON text, already checked and masked: ``jobjoker.controls``) within the caller's transaction;
the caller sets ``job.result_size`` in the same transaction (``jobstore.update``). ``read(job_id)``
is the stored JSON text, or None; ``job_with_result(job_id)`` the job's row and its result,
parsed (off the loop: a result may be a megabyte). The rows go with their job
(``jobstore.delete``).
"""
import json

from jobjoker import jobstore, models

KIND = "result"


def store(tx, job_id, text):
    """Replace the result of ``job_id`` with ``text`` (a delete and an insert: every backend
    alike, and the primary key (job, kind) keeps one)."""
    JobData = models.JobData
    JobData.delete().where(JobData.job == job_id, JobData.kind == KIND).execute()
    JobData.insert(job=job_id, kind=KIND, value=text).execute()


def read(job_id):
    """The stored result of ``job_id`` as JSON text, or None."""
    JobData = models.JobData
    return JobData.select(JobData.value).where(JobData.job == job_id,
                                               JobData.kind == KIND).scalar()


def job_with_result(job_id):
    """Reader thread: ``(job row, its result parsed, or None)``; ``NotFound`` for no job."""
    job = jobstore.get(job_id)
    text = read(job_id) if job.result_size is not None else None
    return job, (json.loads(text) if text is not None else None)
