"""Where a job's resource use is kept: its figures in the job row, its series in ``job_data``.

Contract: every function runs on a ``Storage`` thread. The job row's ``cpu_seconds``,
``rss_bytes`` and ``max_rss_bytes`` are written through ``jobstore.record_usage`` (the job store
owns job rows), only while the job runs, so a late batch never overwrites the figures of its
end; the series is the ``JobData`` row of kind ``usage`` (``UsageSeries.to_json``), deleted with
the job by ``jobstore.delete``. ``save(tx, figures)`` writes one batch (many jobs, one
transaction); ``load(job_id)`` and ``load_many(job_ids)`` read what is stored;
``record_end(tx, job, final, exit_record)`` writes the figures a job ends with: the sampled ones
or, where the supervisor's exit record has exact ones (``cpu_seconds``: user + system time of the
job's process and the descendants it reaped; ``max_rss_bytes``: the largest of their peaks),
the higher of the two.
"""
from jobjoker import jobstore, models
from jobjoker.usage_series import encode

JobData = models.JobData
KIND = "usage"


class Figures:
    """One job's figures to store (``series``: its ``UsageSeries.snapshot()``, or None to leave
    the stored one)."""

    __slots__ = ("job_id", "cpu_seconds", "rss_bytes", "max_rss_bytes", "series")

    def __init__(self, job_id, cpu_seconds, rss_bytes, max_rss_bytes, series=None):
        self.job_id = job_id
        self.cpu_seconds = cpu_seconds
        self.rss_bytes = rss_bytes
        self.max_rss_bytes = max_rss_bytes
        self.series = series


def save(tx, batch):
    """Writer thread: every ``Figures`` of ``batch`` of a job that still runs."""
    for figures in batch:
        if jobstore.record_usage(tx, figures.job_id, figures.cpu_seconds, figures.rss_bytes,
                                 figures.max_rss_bytes) and figures.series is not None:
            _put_series(figures.job_id, encode(figures.series))


def _put_series(job_id, text):
    # Delete then insert: the one upsert every backend runs alike (MySQL counts an UPDATE that
    # changes nothing as no row, so "update, else insert" would insert a duplicate there).
    JobData.delete().where(JobData.job == job_id, JobData.kind == KIND).execute()
    JobData.insert(job=job_id, kind=KIND, value=text).execute()


def stored_series(job_id):
    """The stored series' JSON, or None."""
    return (JobData.select(JobData.value)
            .where(JobData.job == job_id, JobData.kind == KIND).scalar())


def load(job_id):
    """Reader thread: ``(job row, series JSON or None)``; ``NotFound`` for no such job."""
    return jobstore.get(job_id), stored_series(job_id)


def load_many(job_ids):
    """Reader thread: ``{job id: (job row, series JSON or None)}`` of the jobs that exist."""
    series = dict(JobData.select(JobData.job, JobData.value).where(
        JobData.job.in_(job_ids), JobData.kind == KIND).tuples()) if job_ids else {}
    return {job.id: (job, series.get(job.id)) for job in jobstore.get_many(list(job_ids))}


def _higher(*values):
    present = [value for value in values if value is not None]
    return max(present) if present else None


def record_end(tx, job, final, exit_record):
    """Writer thread, in the transaction that records the job's end (before its final
    status, whose announced copy then carries these figures): ``final`` is the sampled
    ``Figures`` (None when nothing was sampled), ``exit_record`` the supervisor's."""
    exact_cpu = exit_record.get("cpu_seconds")
    exact_peak = exit_record.get("max_rss_bytes")
    sampled = final or Figures(job.id, None, None, None)
    cpu = _higher(job.cpu_seconds, sampled.cpu_seconds,
                  exact_cpu if isinstance(exact_cpu, (int, float)) else None)
    peak = _higher(job.max_rss_bytes, sampled.max_rss_bytes,
                   exact_peak if isinstance(exact_peak, int) else None)
    if cpu is None and peak is None:
        return
    rss = sampled.rss_bytes if final is not None else job.rss_bytes  # the last sample's
    save(tx, [Figures(job.id, None if cpu is None else round(cpu, 3), rss, peak,
                      sampled.series)])
