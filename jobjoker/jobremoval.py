"""What goes with a deleted job once its row is gone: its entries and its folder.

Contract: ``await remove_leftovers(storage, logstore, jobs_dir, job_ids)`` deletes the log and
response chunks of jobs whose rows were deleted (``jobstore.delete``), in transactions of at
most about ``logstore.DELETE_BATCH`` chunks and ``JOBS_PER_TRANSACTION`` jobs each (the whole
logs that fit go in one statement), so that neither a 10-million-entry log nor 100,000 small
ones ever holds the writer for long; then it removes
their job folders (``jobdir.remove``) in an executor, never on the loop. Both a user's
``DELETE /jobs/ID`` (``JobService.delete_job``) and retention (``jobjoker.pruner``) use it. A
crash in between leaves chunks without a job, which the next server start removes
(``LogStore.jobs_with_orphaned_entries``); a folder left behind holds nothing a job needs.
"""
import asyncio
import os
import time

from jobjoker import jobdir

# Jobs whose chunks one transaction may go through (at most jobstore.MAX_IDS_PER_STATEMENT): the
# statements list their ids.
JOBS_PER_TRANSACTION = 100


async def remove_leftovers(storage, logstore, jobs_dir, job_ids, pace=None):
    """Delete the chunks, then the folders, of the jobs ``job_ids`` (their rows are gone);
    ``pace``, if given, is awaited between two transactions with the seconds the last one took
    (the pruner's way of leaving the writer and the loop to others)."""
    pending = list(job_ids)
    while pending:
        began = time.monotonic()
        pending = await storage.transaction(delete_chunks, logstore, pending)
        if pending and pace is not None:
            await pace(time.monotonic() - began)
    folders = [jobdir.path_of(jobs_dir, job_id) for job_id in job_ids]
    await asyncio.get_running_loop().run_in_executor(None, _remove_folders, folders)


def delete_chunks(tx, logstore, job_ids):
    """Writer thread: delete up to about ``DELETE_BATCH`` chunks of the first jobs of
    ``job_ids`` (``LogStore.delete_of_jobs``); returns the ids whose chunks may not all be
    gone yet, in order."""
    first = job_ids[:JOBS_PER_TRANSACTION]
    return logstore.delete_of_jobs(tx, first) + list(job_ids[len(first):])


def _remove_folders(folders):
    for folder in folders:
        # A finished job's folder is usually gone already (removed at its end): one lstat
        # then, rather than an unlink attempt per file a folder may hold.
        if os.path.lexists(folder):
            jobdir.remove(folder)
