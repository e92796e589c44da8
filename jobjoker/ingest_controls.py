"""Ingestion's half of control records: a job's progress and result, applied on the writer
thread in the transaction of the pass that read them (``jobjoker.ingest``).

Contract: ``apply_controls(tx, logstore, spools, records, offsets)`` reads each record with
``controls.read_record`` (nothing the job wrote is trusted: a record that is malformed, of an
unknown kind or over the cap is a ``[JobJoker] WARNING: ... (skipped)`` entry in the job's
log, and the job goes on); the last progress of the pass sets ``job.progress`` and
``job.progress_message`` and is announced as a ``progress`` event (``progress_event``: the
hub coalesces them), not as a job change; the last result replaces the job's stored result
(``jobjoker.results``), sets ``job.result_size`` and is announced as ``updated``. The spool
``offsets`` the records were read up to are stored in the same update, so a restart resumes
past them exactly.
"""
from jobjoker import controls, jobstore, results


def apply_controls(tx, logstore, spools, records, offsets):
    """Writer thread, within ``tx``: the job's control records (``(length, bytes or None)``,
    in spool order) applied; the last progress and the last result win, anything refused is a
    warning entry in the log. ``offsets`` (the spool offset they were read up to) is stored
    with them."""
    job_id = spools.job_id
    progress = result = None
    for length, payload in records:
        record = controls.read_record(payload, length, spools.max_result_bytes, spools.masker)
        if isinstance(record, controls.Progress):
            progress = record
        elif isinstance(record, controls.Result):
            result = record
        else:
            logstore.append_message(tx, job_id, "log", "[JobJoker] WARNING: %s (skipped)"
                                    % record.why)
    fields = dict(offsets)
    if progress is not None:
        fields.update(progress=progress.progress, progress_message=progress.message)
    if result is not None:
        results.store(tx, job_id, result.text)
        fields["result_size"] = len(result.text.encode("utf-8", "surrogateescape"))
    job = jobstore.update(tx, job_id, action="updated" if result is not None else None,
                          **fields)
    if progress is not None:
        tx.publish(progress_event(job))


def progress_event(job):
    """The event that tells a job's progress (``job``: its row)."""
    return {"type": "progress", "job": job.id, "progress": job.progress,
            "message": job.progress_message, "revision": job.revision}
