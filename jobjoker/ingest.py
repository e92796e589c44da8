"""Ingestion: what running jobs append to their spools, stored as entries.

Contract: ``Ingester(storage, logstore, max_result_bytes)`` watches the folders of the jobs it ``track``s
(inotify, or a 100 ms poll where there is none) and stores what their spools hold beyond the
offsets already stored, resuming exactly after a restart (the offsets are committed with the
entries). The IOLoop only decides which jobs to visit; reading, parsing, masking and storing run
on the storage's writer thread, in passes of about ``SLICE`` seconds of work, each one
transaction (a savepoint per job, so one job's failure leaves the others stored): the writer
serves requests between passes, and on MySQL or PostgreSQL a pass costs one commit however many
jobs it stores. A job's first passes are immediate; while it keeps logging, its passes come at
most every ``GAP`` seconds, so that a subscriber gets one message per pass rather than one per
block the job wrote. What a job's children wrote raw has the job's secrets masked here (the
runner masked the rest). Once stored and committed, the disk blocks of the spool behind the
offsets are given back (hole punching). A job whose store fails is not visited again before its
retry, which backs off (``RETRY_DELAY`` seconds, doubling with each failure in a row up to
``RETRY_MAX``), however much it writes meanwhile; when the storage sees the database come back
after an outage, every failing job is retried at once. A failure is logged once per kind (an
outage not at all: the storage logs it), and once more when that kind is over, with how many
failures were not logged; ``disk_full`` says since when the disk refuses, for ``/health``.
``await drain_ended(job_id)``: the job's processes are gone, so its spools are read to their
very end (``final``) in the same paced passes (without the pause between them: nobody waits
for more of its entries), and it returns once everything is stored and committed, untracking
the job; only then is its end recorded. However big its backlog, no transaction takes longer
than a pass. Each job's ``Spools`` are touched only on the writer thread once tracked.

Control records in ``log.spool`` (``jobjoker.controls``: progress, result) are read in the same
passes and applied in the same transaction as the pass's entries: the last progress of a pass
sets ``job.progress`` and ``job.progress_message`` (unannounced as a job change: a
``{"type": "progress", "job", "progress", "message", "revision"}`` event goes out instead, which
the hub coalesces), the last result replaces the job's result (``jobjoker.results``), sets
``job.result_size`` and is announced as ``updated``; the log offset they were read up to is
stored with them. Nothing in a record is trusted: one that is malformed, of an unknown kind or
over the cap (``--max-result-bytes``) is skipped with a warning entry in the job's log, and
strings in a result and a progress message are masked here too.
"""
import asyncio
import contextvars
import logging
import time

from tornado.ioloop import IOLoop, PeriodicCallback

from jobjoker import controls, jobdir, jobstore, spool
from jobjoker.ingest_controls import apply_controls
from jobjoker.errors import DatabaseUnavailable, is_disk_full
from jobjoker.inotify import Inotify
from jobjoker.logthrottle import FailureLog
from jobjoker.parameters import Masker

log = logging.getLogger(__name__)

READ_BYTES = 4 * 1024 * 1024  # per spool per visit, so one chatty job cannot hog a pass
PUNCH_BYTES = 1024 * 1024  # free the disk blocks of stored spool bytes in steps this large
GAP = 0.02  # seconds between a job's passes while its entries keep coming
QUICK_PASSES = 3  # a job's first passes are not held back: its first lines show at once
SLICE = 0.01  # seconds of work in one pass (then the writer serves others)
RETRY_DELAY = 1.0  # seconds before storing again after the database refused (full, locked, away)
RETRY_MAX = 16.0  # the retry's delay doubles with each failure in a row, up to this
POLL_MS = 100  # without inotify


def _parse_response_spool(data, final, written=None):
    block = spool.complete_part(data)
    if final and len(block) < len(data):  # torn by a SIGKILL mid-write: keep what is there
        return len(data), data + b"\n"
    return len(block), block


class Spools:
    """One job's spools as the writer thread knows them: what is stored and what is punched."""

    def __init__(self, job_id, job_dir, offsets, secrets=(), owners=None):
        self.job_id = job_id
        self.job_dir = job_dir
        self.owners = owners or jobdir.owners_for()  # whose files its folder may hold
        self.offsets = dict(offsets)  # Job offset field -> spool bytes stored (committed)
        self.punched = dict(offsets)  # Job offset field -> spool bytes given back to the disk
        self.read_size = READ_BYTES
        self.masker = Masker(secrets)
        self.max_result_bytes = controls.DEFAULT_MAX_RESULT_BYTES  # set by Ingester.track
        self.controls = []  # control records read by the last parse of the log spool

    def parsers(self):
        """(stream, spool file, Job offset field, parse(data, final, written) -> (consumed,
        block)); ``written``: when the spool was last written, the latest a raw line in it can
        have come (what was written while no server read it keeps that time, not the read's).
        The log's parse leaves the control records it met in ``self.controls``."""
        masker = self.masker if self.masker else None
        return (("log", jobdir.LOG_SPOOL, "log_offset",
                 lambda data, final, written: spool.parse_log_spool(
                     data, final, min(written, time.time()), masker=masker,
                     controls=self.controls,
                     control_limit=controls.record_limit(self.max_result_bytes))),
                ("response", jobdir.RESPONSE_SPOOL, "response_offset", _parse_response_spool))


def store_spools(tx, logstore, spools, final=False, offsets=None):
    """Store what the spools hold past ``offsets`` (by default the committed ones) on the
    writer thread, within ``tx``; returns (whether anything was stored, whether more is
    waiting, the offsets reached). ``spools``' own offsets move only once ``tx`` commits."""
    stored = more = False
    offsets = dict(spools.offsets if offsets is None else offsets)
    for stream, name, field, parse in spools.parsers():
        offset = offsets[field]
        data, written = jobdir.read_spool(spools.job_dir, name, offset, spools.read_size,
                                          spools.owners)
        if not data:
            continue
        at_end = len(data) < spools.read_size
        spools.controls = []
        consumed, block = parse(data, final and at_end, written)
        if not at_end:
            more = True
            if not consumed:  # one entry larger than a read: read more next time
                spools.read_size *= 2
        if consumed:
            offsets[field] = offset + consumed
            if block:
                logstore.append_blocks(tx, spools.job_id, stream, [block],
                                       {field: offset + consumed})
                stored = True
            if spools.controls:
                apply_controls(tx, logstore, spools, spools.controls, {field: offsets[field]})
                spools.controls = []
                stored = True
    if offsets != spools.offsets:
        tx.on_commit(lambda: _committed(spools, offsets))
    return stored, more, offsets


def resync_offsets(spools):
    """Writer thread: take the offsets from the job's row. A store that failed as its commit
    was under way (the connection lost then) may have been committed all the same: its entries
    are in, while ``spools`` still has the offsets from before, and would store them twice."""
    job = jobstore.get(spools.job_id)
    spools.offsets.update(log_offset=job.log_offset, response_offset=job.response_offset)


def _committed(spools, offsets):
    # Hooks run in order: a later visit's offsets are further, never behind.
    spools.offsets.update(offsets)
    for stream, name, field, _ in spools.parsers():
        # Free the disk blocks of what is stored: a job logging gigabytes keeps a spool of
        # only what the server has not read yet (its size on disk, not its length).
        stored = spools.offsets[field] // 4096 * 4096
        if stored - spools.punched[field] >= PUNCH_BYTES:
            jobdir.punch_hole(spools.job_dir, name, spools.punched[field], stored,
                              spools.owners)
            spools.punched[field] = stored


class _Visit:
    """What the loop knows of a tracked job: its pacing and its watch."""

    def __init__(self, spools):
        self.spools = spools
        self.watch = None
        self.last_stored = 0.0  # time.monotonic() of its last visit that stored entries
        self.passes = 0  # visits that stored entries (the first QUICK_PASSES never wait)
        self.drained = None  # once the job has ended: a future, done when all is stored
        self.failures = 0  # failed stores in a row
        self.retry_at = 0.0  # time.monotonic() before which a failing job is not visited


class Ingester:
    """Stores the spooled entries of the tracked jobs, from the IOLoop's side."""

    def __init__(self, storage, logstore, max_result_bytes=controls.DEFAULT_MAX_RESULT_BYTES):
        self.storage = storage
        self.logstore = logstore
        self.max_result_bytes = max_result_bytes  # --max-result-bytes: the cap of a result
        self.disk_full = None  # (since, what failed) while storing fails for want of space
        self._visits = {}  # job id -> _Visit
        self._watches = {}  # inotify watch descriptor -> job id
        self._inotify = None
        self._poller = None
        # Jobs with news, in the order they got it (a dict as an ordered set): a pass that runs
        # out of time leaves the rest at the front, so every job gets its turn.
        self._dirty = {}
        self._deferred = set()  # dirty jobs stored less than GAP ago
        self._deferred_timer = None
        self._running = False  # a pass is on the writer thread
        self._closed = False
        # Kinds of failure, logged again only once all the jobs failing so stored again.
        self._failures = FailureLog(log)

    def start(self):
        self.storage.on_recovery(self._retry_now)
        try:
            self._inotify = Inotify()
            IOLoop.current().add_handler(self._inotify.fileno(), self._on_inotify, IOLoop.READ)
        except OSError as e:
            log.warning("inotify unavailable (%s): polling spool files every %d ms", e, POLL_MS)
            self._poller = PeriodicCallback(self._poll_all, POLL_MS)
            self._poller.start()

    def close(self):
        self._closed = True
        for visit in list(self._visits.values()):  # ends under way finish without passes
            if visit.drained is not None and not visit.drained.done():
                asyncio.ensure_future(self._drain_now(visit))
        if self._deferred_timer is not None:
            IOLoop.current().remove_timeout(self._deferred_timer)
            self._deferred_timer = None
        if self._inotify is not None:
            IOLoop.current().remove_handler(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None
        if self._poller is not None:
            self._poller.stop()

    # --- which jobs --------------------------------------------------------------------------

    def track(self, spools):
        """Watch a job's folder (which must exist) and store what it spools; returns ``spools``,
        which belong to the writer thread from now on."""
        spools.max_result_bytes = self.max_result_bytes
        visit = self._visits[spools.job_id] = _Visit(spools)
        if self._inotify is not None:
            visit.watch = self._inotify.add_watch(spools.job_dir)
            self._watches[visit.watch] = spools.job_id
        return spools

    def untrack(self, job_id):
        """Stop visiting a job (it could not start, or all it spooled is stored)."""
        visit = self._visits.pop(job_id, None)
        self._dirty.pop(job_id, None)
        self._deferred.discard(job_id)
        if visit is not None and visit.drained is not None and not visit.drained.done():
            visit.drained.set_result(None)
        if visit is not None and visit.watch is not None and self._inotify is not None:
            self._watches.pop(visit.watch, None)
            try:
                self._inotify.rm_watch(visit.watch)
            except OSError:
                pass

    async def drain_ended(self, job_id):
        """The job's processes are gone: store all its spools hold, in passes, then untrack
        it. Returns at once for a job not tracked."""
        visit = self._visits.get(job_id)
        if visit is None:
            return
        if visit.drained is None:
            visit.drained = asyncio.get_running_loop().create_future()
            if self._closed:  # the server is stopping: no more passes
                asyncio.ensure_future(self._drain_now(visit))
            else:
                self.mark_dirty(job_id)
        await asyncio.shield(visit.drained)

    async def _drain_now(self, visit):
        """Drain an ended job without passes (the server is stopping): a transaction per read,
        one after the other. Each reads from the offsets committed before it, so a pass still
        on the writer thread is never stored twice."""
        try:
            more = True
            while more:
                _, more, _ = await self.storage.transaction(store_spools, self.logstore,
                                                            visit.spools, True)
        except Exception as e:
            if not visit.drained.done():
                visit.drained.set_exception(e)
            return
        self.untrack(visit.spools.job_id)

    def mark_dirty(self, job_id):
        if job_id in self._visits:
            self._dirty.setdefault(job_id)
            self._schedule()

    def _on_inotify(self, fd, events):
        for watch in self._inotify.read_watches():
            job_id = self._watches.get(watch)
            if job_id is not None:
                self._dirty.setdefault(job_id)
        self._schedule()

    def _poll_all(self):
        self._dirty.update(dict.fromkeys(self._visits))
        self._schedule()

    # --- passes ------------------------------------------------------------------------------

    def _schedule(self):
        if self._dirty and not self._running and not self._closed:
            self._running = True
            # Never a request's time limit: a pass given up half-way would be retried while
            # it still runs.
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self._pass()), context=contextvars.Context())

    async def _pass(self):
        """One pass over the dirty jobs due now, on the writer thread."""
        now = time.monotonic()
        due, soonest = [], None
        for job_id in self._dirty:
            visit = self._visits.get(job_id)
            if visit is None or visit.retry_at > now:  # failing: its retry marks it again
                continue
            wait = visit.last_stored + GAP - now
            if wait > 0 and visit.passes >= QUICK_PASSES and visit.drained is None:
                self._deferred.add(job_id)
                soonest = wait if soonest is None else min(soonest, wait)
            else:
                due.append((visit.spools, visit.drained is not None, visit.failures > 0))
        self._dirty = {}
        try:
            if due:
                await self._store(due)
        finally:
            self._running = False
        if soonest is not None:
            self._defer(soonest)
        self._schedule()

    async def _store(self, due):
        try:
            results, rest = await self.storage.transaction(self._store_some, due)
        except Exception as e:  # the commit failed: none of it is stored, all is retried
            for spools, *_ in due:
                self._failed(spools.job_id, e)
            return
        now = time.monotonic()
        # A pass that began before the job's end was known read its spools while the job
        # could still write: only a pass that began after it (``final``) can find them done.
        finals = {spools.job_id for spools, final, _ in due if final}
        for job_id, (stored, more, error) in results.items():
            visit = self._visits.get(job_id)
            if visit is None:
                continue
            if error is not None:
                self._failed(job_id, error)
                continue
            if visit.failures:
                visit.failures, visit.retry_at = 0, 0.0
                self.recovered(job_id)
            if stored:
                visit.last_stored, visit.passes = now, visit.passes + 1
                self.disk_full = None  # it stored: there is room again
                self.recovered(job_id)
            if visit.drained is not None:  # it has ended: on to the next pass, or done
                if more or job_id not in finals:
                    self._dirty.setdefault(job_id)
                else:
                    self.untrack(job_id)
                    if not visit.drained.done():
                        visit.drained.set_result(None)
            elif more:  # more than one visit's worth: come back soon
                self._deferred.add(job_id)
                self._defer(GAP)
        if rest:  # the slice ran out first: they go before the jobs marked meanwhile
            marked, self._dirty = self._dirty, dict.fromkeys(
                spools.job_id for spools, *_ in rest)
            self._dirty.update(marked)

    def _store_some(self, tx, due):
        """Writer thread: visit jobs for about SLICE seconds; (results, not visited)."""
        deadline = time.monotonic() + SLICE
        results = {}
        for index, (spools, final, failed_before) in enumerate(due):
            if index and time.monotonic() > deadline:
                return results, due[index:]
            try:
                with tx.savepoint():
                    if failed_before:
                        resync_offsets(spools)
                    stored, more, _ = store_spools(tx, self.logstore, spools, final=final)
            except Exception as e:
                results[spools.job_id] = (False, False, e)
            else:
                results[spools.job_id] = (stored, more, None)
        return results, []

    def _defer(self, delay):
        if self._deferred_timer is None and not self._closed:
            self._deferred_timer = IOLoop.current().call_later(delay, self._undefer)

    def _undefer(self):
        self._deferred_timer = None
        self._dirty.update(dict.fromkeys(self._deferred))
        self._deferred.clear()
        self._schedule()

    def _failed(self, job_id, error):
        """Log it once per kind, note a full disk for ``/health``, and retry after a back-off:
        the entries wait in the job's spool, which nothing removes before they are stored."""
        self.failed(job_id, error, "storing its spooled entries")
        visit = self._visits.get(job_id)
        if visit is None:
            return
        delay = min(RETRY_DELAY * 2 ** min(visit.failures, 30), RETRY_MAX)
        visit.failures += 1
        visit.retry_at = time.monotonic() + delay
        IOLoop.current().call_later(delay, self.mark_dirty, job_id)

    def _retry_now(self):
        """The database is back after an outage: the failing jobs are retried now, not at the
        end of their back-off."""
        for job_id, visit in self._visits.items():
            if visit.retry_at:
                visit.retry_at = 0.0
                self._dirty.setdefault(job_id)
        self._schedule()

    def failed(self, job_id, error, doing):
        """Note a failure to store (for ``/health`` when the disk is full) and log it, once per
        kind of failure until every job that met it has stored again (``recovered``)."""
        if is_disk_full(error):
            if self.disk_full is None:
                log.error("the disk is full: job entries cannot be stored (%s); they wait in "
                          "the jobs' spool files until there is room", error)
                self.disk_full = (time.time(), str(error))
            return
        if isinstance(error, DatabaseUnavailable):  # an outage: the storage logs it, once
            log.debug("job %s: %s failed: %s", job_id, doing, error)
            return
        if not self._failures.failed(
                "%s (%s)" % (doing, type(error).__name__), job_id,
                "job %s: %s failed; retried with back-off (from %g s, doubling, up to %g s), "
                "logged again once it works: %s", job_id, doing, RETRY_DELAY, RETRY_MAX, error,
                exc_info=error):
            log.debug("job %s: %s failed again: %s", job_id, doing, error)

    def recovered(self, job_id):
        """A job stored again: its failures are over."""
        self._failures.over(job_id)

    @property
    def tracked(self):
        return len(self._visits)

    def spools_of(self, job_id):
        visit = self._visits.get(job_id)
        return visit.spools if visit is not None else None


def spools_for(job, jobs_dir, secrets=(), owners=None):
    """A job's ``Spools``, from its row (offsets stored) and the texts to mask (``secrets``:
    ``parameters.mask_values`` of its opened secret values); ``owners``: see
    ``jobdir.owners_for``."""
    return Spools(job.id, jobdir.path_of(jobs_dir, job.id),
                  {"log_offset": job.log_offset, "response_offset": job.response_offset},
                  secrets, owners)
