"""What goes with a deleted job once its row is gone: its entries and its folder.

Contract: ``await remove_leftovers(storage, logstore, jobs_dir, job_ids)`` deletes the log and
response chunks of jobs whose rows were deleted (``jobstore.delete``), in transactions of at
most ``logstore.DELETE_BATCH`` chunks and ``JOBS_PER_TRANSACTION`` jobs each, so that neither a
10-million-entry log nor 100,000 small ones ever holds the writer for long; then it removes
their job folders (``jobdir.remove``) in an executor, never on the loop. Both a user's
``DELETE /jobs/ID`` (``JobService.delete_job``) and retention (``jobjoker.pruner``) use it. A
crash in between leaves chunks without a job, which the next server start removes
(``LogStore.jobs_with_orphaned_entries``); a folder left behind holds nothing a job needs.
"""
import asyncio

from jobjoker import jobdir
from jobjoker.logstore import DELETE_BATCH

# Jobs whose chunks one transaction may go through: each costs a few statements even when it
# has no chunk, so a batch of many tiny jobs is bounded by this rather than by the chunk count.
JOBS_PER_TRANSACTION = 100


async def remove_leftovers(storage, logstore, jobs_dir, job_ids, pause=0.0):
    """Delete the chunks, then the folders, of the jobs ``job_ids`` (their rows are gone);
    ``pause``: seconds to wait between two transactions, leaving the writer to others."""
    pending = list(job_ids)
    while pending:
        pending = await storage.transaction(delete_chunks, logstore, pending)
        if pending and pause:
            await asyncio.sleep(pause)
    folders = [jobdir.path_of(jobs_dir, job_id) for job_id in job_ids]
    await asyncio.get_running_loop().run_in_executor(None, _remove_folders, folders)


def delete_chunks(tx, logstore, job_ids):
    """Writer thread: delete up to about ``DELETE_BATCH`` chunks of the first jobs of
    ``job_ids``; returns the ids whose chunks may not all be gone yet, in order."""
    budget = DELETE_BATCH
    for index, job_id in enumerate(job_ids[:JOBS_PER_TRANSACTION]):
        asked = max(1, budget)
        deleted = logstore.delete_some(tx, job_id, asked)
        budget -= deleted
        if deleted >= asked:  # there may be more of this one: it comes first next time
            return job_ids[index:]
        if budget <= 0:
            return job_ids[index + 1:]
    return job_ids[JOBS_PER_TRANSACTION:]


def _remove_folders(folders):
    for folder in folders:
        jobdir.remove(folder)
