"""``jobjoker prune [--dry-run]``: retention now, from the command line, on the server's data.

Contract: ``run_prune(config, dry_run, shown)`` opens the database of ``config`` (the server's
options, ``jobjoker.offline``, with the retention options ``--keep-days``,
``--keep-per-worker``, ``--keep-audit-days``), and runs ``pruner.plan`` (with
``dry_run``: nothing changes) or ``pruner.prune`` on a ``Storage`` of its own; it returns the
``Report``, or raises ``StartupError`` saying what to fix. It is safe while the server runs:
every deletion is a short transaction of its own, a row the server deleted meanwhile is
skipped, and only finished jobs, whose processes and spools are gone, lose their folders.
``describe(report)`` is the report as the command prints it.
"""
import asyncio

from jobjoker import pruner
from jobjoker.audit import AuditLog
from jobjoker.logstore import LogStore
from jobjoker.offline import server_storage
from jobjoker.retention import Policy


def run_prune(config, dry_run=False, shown=pruner.SHOWN):
    """Prune (or, ``dry_run``, plan) under the options of ``config``; returns the Report."""
    return asyncio.run(_run(config, dry_run, shown))


async def _run(config, dry_run, shown):
    async with server_storage(config) as storage:
        policy = Policy.of(config)
        if dry_run:
            return await pruner.plan(storage, policy, shown=shown)
        return await pruner.prune(storage, LogStore(config.max_log_bytes), config.jobs_dir,
                                  policy, audit=AuditLog(storage), shown=shown,
                                  by="jobjoker prune on the server's machine")


def describe(report, policy):
    """The lines ``jobjoker prune`` prints."""
    verb = "would remove" if report.dry_run else "removed"
    lines = ["%s (keep days: %s, keep per worker: %s, keep audit days: %s):" % (
        verb, policy.keep_days or "all", policy.keep_per_worker or "all",
        policy.keep_audit_days or "all")]
    for kind, count in report.counts.items():
        lines.append("  %-19s %d" % (kind.replace("_", " "), count))
    if report.job_ids:
        more = report.counts["jobs"] - len(report.job_ids)
        lines.append("jobs: " + " ".join(report.job_ids) + (
            " (and %d more)" % more if more > 0 else ""))
    return lines
