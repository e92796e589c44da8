"""Pruning: retention's deletions, done in small batches without stalling the server.

Contract: ``await prune(storage, logstore, jobs_dir, policy, ...)`` deletes what
``jobjoker.retention`` says is due at one moment (``now``, fixed for the whole run): jobs in
transactions of ``JOB_BATCH`` (then their entries and folders through ``jobremoval``), the other
kinds ``ROW_BATCH`` rows at a time, then the code versions no job refers to any more. Every
transaction is short, and the prune waits between two of them three times as long as the last
one took (``YIELD_SHARE``; ``PAUSE`` at least), so requests and job output are written in between (a
10-million-entry log goes ``logstore.DELETE_BATCH`` chunks at a time). It returns a ``Report`` (counts per kind, the first ``shown`` job ids) and,
when something went, records one ``retention.prune`` audit entry saying how much. ``await
plan(storage, policy, ...)`` is the same ``Report`` for what would go, changing nothing (the
code versions are counted by running ``codestore.prune`` in a transaction rolled back: as of
now, before the due jobs went, so it may be fewer than a real run deletes).

``Pruner(storage, logstore, jobs_dir, policy, interval, audit, metrics)`` runs ``prune`` on the
server every ``interval`` seconds (``--prune-interval``; 0: never), the first time
``min(FIRST_DELAY, interval)`` after ``start()``, logs what it removed and counts it in
``jobjoker_pruned_total{kind}``. Several servers on one database may prune at once: a row
another one deleted meanwhile is skipped, never an error.
"""
import asyncio
import dataclasses
import logging
import time

import prometheus_client

from jobjoker import jobremoval, retention
from jobjoker.errors import DatabaseUnavailable, Unavailable

log = logging.getLogger(__name__)

JOB_BATCH = 50  # jobs deleted per transaction
JOB_PASS = 5000  # due jobs read at once; a run reads again until none is left
ROW_BATCH = 1000  # rows of the other kinds deleted per transaction
PAUSE = 0.002  # seconds the loop gives to others between two transactions, at least ...
YIELD_SHARE = 3.0  # ... and this share of the time the last one took: at most a quarter of the writer's
FIRST_DELAY = 60.0  # seconds after start before the first run: the start has work of its own
SHOWN = 50  # job ids a report lists


@dataclasses.dataclass
class Report:
    """What a prune removed (or, ``dry_run``, would remove)."""

    dry_run: bool = False
    counts: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(retention.KINDS, 0))
    job_ids: list = dataclasses.field(default_factory=list)  # the first ``shown`` of them
    shown: int = SHOWN

    def add_jobs(self, job_ids):
        self.counts["jobs"] += len(job_ids)
        self.job_ids.extend(job_ids[:max(0, self.shown - len(self.job_ids))])

    @property
    def total(self):
        return sum(self.counts.values())

    def summary(self):
        """One line: the count of each kind that has some ("nothing" when none)."""
        parts = ["%d %s" % (count, kind.replace("_", " "))
                 for kind, count in self.counts.items() if count]
        return ", ".join(parts) or "nothing"

    def to_dict(self):
        return {"dry_run": self.dry_run, "counts": dict(self.counts),
                "job_ids": list(self.job_ids)}


class _RolledBack(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value


def _count_code_versions(tx):
    raise _RolledBack(retention.prune_code_versions(tx))


async def plan(storage, policy, now=None, shown=SHOWN):
    """The ``Report`` of what ``prune`` would remove at ``now``; nothing changes."""
    now = time.time() if now is None else now
    report = Report(dry_run=True, shown=shown)
    report.add_jobs(await storage.read(retention.jobs_due, policy, now))
    for kind in retention.ROW_KINDS:
        report.counts[kind] = await storage.read(retention.count_rows_due, kind, policy, now)
    try:
        await storage.transaction(_count_code_versions)
    except _RolledBack as counted:
        report.counts["code_versions"] = counted.value
    return report


def pacer(pause):
    """The wait between two of a prune's transactions, given how long the last one took."""
    async def pace(took):
        await asyncio.sleep(max(pause, took * YIELD_SHARE))
    return pace


async def prune(storage, logstore, jobs_dir, policy, now=None, audit=None, by=None,
                shown=SHOWN, pause=PAUSE):
    """Delete what is due at ``now`` under ``policy``, in short transactions; returns the
    ``Report``. The audit entry (actor null: the server's own) says ``by`` whom, if given."""
    now = time.time() if now is None else now
    report = Report(shown=shown)
    pace = pacer(pause)
    await _prune_jobs(storage, logstore, jobs_dir, policy, now, report, pace)
    for kind in retention.ROW_KINDS:
        while True:
            keys = await storage.read(retention.rows_due, kind, policy, now, ROW_BATCH)
            if not keys:
                break
            began = time.monotonic()
            report.counts[kind] += await storage.transaction(retention.delete_rows, kind, keys)
            if len(keys) < ROW_BATCH:
                break
            await pace(time.monotonic() - began)
    report.counts["code_versions"] = await storage.transaction(retention.prune_code_versions)
    if report.total and audit is not None:
        detail = report.summary() + ("; by %s" % by if by else "")
        await storage.transaction(lambda tx: audit.record(
            tx, None, "retention.prune", None, detail))
    return report


async def _prune_jobs(storage, logstore, jobs_dir, policy, now, report, pace):
    while True:
        due = await storage.read(retention.jobs_due, policy, now, JOB_PASS)
        went = 0
        for start in range(0, len(due), JOB_BATCH):
            began = time.monotonic()
            gone = await storage.transaction(retention.delete_jobs, due[start:start + JOB_BATCH])
            report.add_jobs(gone)
            went += len(gone)
            await pace(time.monotonic() - began)
            await jobremoval.remove_leftovers(storage, logstore, jobs_dir, gone, pace=pace)
        # A short pass was the last; a pass of which nothing went (another server deleted it
        # all meanwhile) ends the run rather than read the same ids again.
        if len(due) < JOB_PASS or not went:
            return


class Pruner:
    """The server's periodic prune."""

    def __init__(self, storage, logstore, jobs_dir, policy, interval, audit, metrics=None):
        self.storage = storage
        self.logstore = logstore
        self.jobs_dir = jobs_dir
        self.policy = policy
        self.interval = interval
        self.audit = audit
        self._task = None
        self.pruned = None
        if metrics is not None:
            self.pruned = prometheus_client.Counter(
                "jobjoker_pruned", "Rows this server's retention deleted, by kind.", ["kind"],
                registry=metrics.registry)
            for kind in retention.KINDS:
                self.pruned.labels(kind=kind)  # shown at 0 before the first prune

    def start(self):
        if self.interval:
            self._task = asyncio.ensure_future(self._run())
        return self

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self):
        await asyncio.sleep(min(FIRST_DELAY, self.interval))
        while True:
            await self.prune_once()
            await asyncio.sleep(self.interval)

    async def prune_once(self):
        """One prune, logged; a failure is logged and left for the next one."""
        started = time.monotonic()
        try:
            report = await prune(self.storage, self.logstore, self.jobs_dir, self.policy,
                                 audit=self.audit)
        except (DatabaseUnavailable, Unavailable) as e:
            log.warning("retention: prune skipped, the database is unavailable (%s); the next "
                        "one in %g s", e, self.interval)
            return None
        except Exception:
            log.exception("retention: prune failed; the next one in %g s", self.interval)
            return None
        if report.total:
            log.info("retention: removed %s in %.1f s", report.summary(),
                     time.monotonic() - started)
        if self.pruned is not None:
            for kind, count in report.counts.items():
                if count:
                    self.pruned.labels(kind=kind).inc(count)
        return report
