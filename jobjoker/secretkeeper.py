"""Secret values over the jobs' lives: sealed anew at start, erased once nothing needs them.

Contract: ``SecretKeeper(box, storage, hub, retention)`` keeps the secret values stored in
``job.secret_parameters`` (sealed by ``jobjoker.secretbox``) no longer than they can be needed.
``await start()``, before the server answers, goes through every job that holds some, in
batches of ``SCAN_BATCH`` read on a reader thread: a value stored in clear by an older version,
or sealed with an old key, is sealed anew with the current key on the writer thread (a batch per
transaction; the cryptography runs there, never on the loop); values no key opens are counted
and logged (such a job fails clearly if it is started); each ended job is due for erasure at its
end plus ``retention`` (``--secret-retention``), so that jobs that ended while the server was
down are erased at the first sweep. From then on every job end this server records (a status
event) is scheduled the same way, and a sweep every ``sweep_interval(retention)`` erases the
due ones, at most ``ERASE_BATCH`` per transaction on the writer thread, through
``jobstore.erase_secrets``, whose ``secrets_needed`` has the last word. The scan runs again
every ``RESCAN_SECONDS``, in the background: it finds what no event of this server told of (a
job another server ended, then stopped before its sweep). ``stop()`` ends it all.
"""
import asyncio
import heapq
import logging
import time

from tornado.ioloop import PeriodicCallback

from jobjoker import jobstore
from jobjoker.errors import DatabaseUnavailable
from jobjoker.events import CHANGES
from jobjoker.parameters import had_secrets
from jobjoker.secretbox import SecretsUnreadable
from jobjoker.states import FINAL_STATES
from jobjoker.storage import detached

log = logging.getLogger(__name__)

SCAN_BATCH = 500  # jobs holding secret values read (and sealed anew) at once at start
ERASE_BATCH = 500  # jobs whose secret values are erased in one transaction
RESCAN_SECONDS = 3600.0


def sweep_interval(retention):
    """Seconds between sweeps: a fraction of the retention, within [0.25, 30]."""
    return min(30.0, max(0.25, retention / 4))


class SecretKeeper:
    """Seals stored secret values anew at start and erases them once they are spent."""

    def __init__(self, box, storage, hub, retention):
        self.box = box
        self.storage = storage
        self.hub = hub
        self.retention = retention
        self._due = []  # heap of (when its values may go, job id)
        self._unsubscribe = None
        self._timer = None
        self._sweep_task = None
        self._scan_task = None
        self._scanned_at = None  # time.monotonic() of the last scan's start

    async def start(self):
        self._unsubscribe = self.hub.subscribe(self._on_change, CHANGES)
        await self._scan()
        self._timer = PeriodicCallback(self._tick, sweep_interval(self.retention) * 1000)
        self._timer.start()
        self._tick()  # what the scan found due goes now

    async def stop(self):
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._timer is not None:
            self._timer.stop()
        if self._scan_task is not None:  # the next start scans anew
            self._scan_task.cancel()
        await asyncio.gather(*[task for task in (self._sweep_task, self._scan_task)
                               if task is not None], return_exceptions=True)

    def _schedule(self, job_id, stoptime):
        heapq.heappush(self._due, ((stoptime or time.time()) + self.retention, job_id))

    def _on_change(self, event):
        job = event.get("job")
        # A job without secret values has nothing to erase: it is not scheduled.
        if event.get("action") == "status" and job and job["status"] in FINAL_STATES and \
                had_secrets(job["parameters"]):
            self._schedule(job["id"], job["stoptime"])

    # --- at start ----------------------------------------------------------------------------

    async def _scan(self):
        self._scanned_at = time.monotonic()
        after, unreadable = "", []
        while True:
            jobs = await self.storage.read(jobstore.with_secrets, after, SCAN_BATCH)
            if not jobs:
                break
            after = jobs[-1].id
            unreadable += await self.storage.transaction(self._reseal, jobs)
            for job in jobs:
                if job.status in FINAL_STATES:
                    self._schedule(job.id, job.stoptime)
        if unreadable:
            log.error("%d jobs hold secret parameters that the key in %s cannot read (e.g. job "
                      "%s): they were sealed with another key; such a job fails if it is "
                      "started. Put that key back (after the current one, to keep both)",
                      len(unreadable), self.box.where, unreadable[0])

    def _reseal(self, tx, jobs):
        """Writer thread: seal anew what is in clear or sealed with an old key (unless it
        changed since it was read); returns the ids of those no key opens."""
        unreadable, resealed = [], 0
        for job in jobs:
            try:
                stored = self.box.reseal(job.secret_parameters)
            except SecretsUnreadable:
                unreadable.append(job.id)
                continue
            if stored is not None:
                resealed += jobstore.set_secrets(tx, job.id, stored, job.secret_parameters)
        if resealed:
            log.info("sealed the secret parameters of %d jobs with the current key", resealed)
        return unreadable

    # --- the sweep ---------------------------------------------------------------------------

    def _tick(self):
        if time.monotonic() - self._scanned_at > RESCAN_SECONDS and (
                self._scan_task is None or self._scan_task.done()):
            self._scan_task = detached(asyncio.ensure_future, self._rescan())
        if self._due and self._due[0][0] <= time.time() and (
                self._sweep_task is None or self._sweep_task.done()):
            self._sweep_task = detached(asyncio.ensure_future, self._sweep())

    async def _rescan(self):
        try:
            await self._scan()
        except DatabaseUnavailable:  # an outage, logged once by the storage
            log.debug("going through the stored secret values waits for the database")
        except Exception:
            log.exception("going through the stored secret values failed; retried in %.0f s",
                          RESCAN_SECONDS)

    async def _sweep(self):
        now = time.time()
        while self._due and self._due[0][0] <= now:
            batch = []
            while self._due and self._due[0][0] <= now and len(batch) < ERASE_BATCH:
                batch.append(heapq.heappop(self._due)[1])
            try:
                erased = await self.storage.transaction(jobstore.erase_secrets, batch, now,
                                                        self.retention)
            except Exception as e:
                if isinstance(e, DatabaseUnavailable):  # an outage, logged once by the storage
                    log.debug("erasing secret values waits for the database")
                else:
                    log.exception("erasing the secret values of %d ended jobs failed; the "
                                  "next sweep retries", len(batch))
                for job_id in batch:
                    heapq.heappush(self._due, (now, job_id))
                return
            if erased:
                log.debug("erased the secret values of %d ended jobs", len(erased))
