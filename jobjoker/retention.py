"""Retention: which stored things have outlived their use, and their deletion in small batches.

Contract: a ``Policy`` holds the operator's choices (``--keep-days``, ``--keep-per-worker``,
``--keep-audit-days``: each None, i.e. off, or a positive whole number). The reader functions
(run on the storage's reader threads) say what is due; the writer functions (on the writer
thread, inside the caller's transaction) delete one batch of what they are given. The batching,
the pauses and the reports are ``jobjoker.pruner``'s.

What is due:

- **jobs**: finished ones (stop, error, done) that ended (``stoptime``, else ``created``) more
  than ``keep_days`` ago, or that are beyond the ``keep_per_worker`` newest finished jobs of
  their worker (newest by end time). Never a job that is not finished: idle (it has not run:
  someone made it to start it later), scheduled, queued, active or paused. Never the jobs a
  schedule's last-runs display needs: those of its newest ``models.RUNS_SHOWN`` runs
  (``schedule_run``) and its newest ``RUNS_SHOWN`` jobs by ``schedule_id``. A job goes with its
  ``job_data`` (result, resource usage series), its entries and its folder. Without
  ``keep_days`` and ``keep_per_worker``, no job is ever deleted.
- **audit entries** older than ``keep_audit_days`` (none without it).
- **sessions** expired or revoked more than ``SESSION_GRACE_DAYS`` ago, and **tokens** expired or
  revoked more than ``TOKEN_GRACE_DAYS`` ago: neither lets anyone in any more (a missing row is
  refused as a revoked one is); the grace keeps a token listed as expired or revoked for a while,
  so that its owner learns why a script stopped working. Always on: they are spent credentials,
  not history (sign-ins stay in the audit trail).
- **webhook deliveries** finished (delivered or given up) more than ``keep_days`` ago, or
  ``HISTORY_DAYS`` without it; one still being sent or retried is never due.
- **schedule runs** beyond the ``RUNS_SHOWN`` newest of their schedule that fired more than
  ``keep_days`` (or ``HISTORY_DAYS``) ago: the display and a schedule's recent history stay.
- **code versions** no job refers to any more, beyond each worker's newest ones: exactly what
  ``codestore.prune`` deletes, run for every worker after the jobs went.

Jobs are deleted through ``jobstore.delete_finished``, which checks again that each is finished
(a final status never changes, so a job read as due is still due when its batch is written).
"""
import dataclasses

import peewee

from jobjoker import codestore, jobstore, models
from jobjoker.states import FINAL_STATES

DAY = 86400.0
SESSION_GRACE_DAYS = 1
TOKEN_GRACE_DAYS = 30
HISTORY_DAYS = 30  # webhook deliveries and schedule runs when --keep-days is not given
ROW_KINDS = ("audit_entries", "sessions", "tokens", "webhook_deliveries", "schedule_runs")
KINDS = ("jobs",) + ROW_KINDS + ("code_versions",)
_FINAL = sorted(status.value for status in FINAL_STATES)
_MODELS = {"audit_entries": models.AuditEntry, "sessions": models.Session,
           "tokens": models.Token, "webhook_deliveries": models.WebhookDelivery,
           "schedule_runs": models.ScheduleRun}


@dataclasses.dataclass(frozen=True)
class Policy:
    """What the operator asked to keep (None: no limit of that kind)."""

    keep_days: int = None
    keep_per_worker: int = None
    keep_audit_days: int = None

    @classmethod
    def of(cls, config):
        return cls(config.keep_days, config.keep_per_worker, config.keep_audit_days)

    @property
    def history_days(self):
        """The age past which finished deliveries and old schedule runs go."""
        return self.keep_days or HISTORY_DAYS


# --- reader threads: what is due -------------------------------------------------------------

def schedule_shown_jobs():
    """Reader: the ids of the jobs some schedule's last-runs display needs."""
    Run, Job = models.ScheduleRun, models.Job
    shown = set()
    schedules = {s for s, in Run.select(Run.schedule).distinct().tuples()}
    for schedule in sorted(schedules):
        shown.update(job for job, in Run.select(Run.job).where(Run.schedule == schedule)
                     .order_by(Run.scheduled_for.desc(), Run.id.desc())
                     .limit(models.RUNS_SHOWN).tuples() if job is not None)
    # only a schedule that still exists shows its jobs: a deleted one's are ordinary jobs
    for schedule, in (Job.select(Job.schedule_id).distinct()
                      .where(Job.schedule_id.in_(models.Schedule.select(models.Schedule.id)))
                      .tuples()):
        shown.update(job for job, in Job.select(Job.id).where(Job.schedule_id == schedule)
                     .order_by(Job.id.desc()).limit(models.RUNS_SHOWN).tuples())
    return shown


def _ended():
    Job = models.Job
    return peewee.fn.COALESCE(Job.stoptime, Job.created)


def jobs_due(policy, now, limit=None):
    """Reader: the ids of finished jobs due under ``policy`` at ``now``, oldest id first, at
    most ``limit`` of them (None: all)."""
    Job = models.Job
    if not policy.keep_days and not policy.keep_per_worker:
        return []
    spared = schedule_shown_jobs()
    extra = None if limit is None else limit + len(spared)
    due = set()
    if policy.keep_days:
        query = (Job.select(Job.id).where(Job.status.in_(_FINAL),
                                          _ended() < now - policy.keep_days * DAY)
                 .order_by(Job.id))
        due.update(job for job, in (query if extra is None else query.limit(extra)).tuples())
    if policy.keep_per_worker:
        workers = [w for w, in Job.select(Job.worker).distinct()
                   .where(Job.status.in_(_FINAL)).tuples()]
        for worker in sorted(workers):
            query = (Job.select(Job.id).where(Job.worker == worker, Job.status.in_(_FINAL))
                     .order_by(_ended().desc(), Job.id.desc())
                     .offset(policy.keep_per_worker))
            # SQLite and MySQL want a LIMIT with an OFFSET: "all" is a number past any count.
            due.update(job for job, in query.limit(extra or 2 ** 62).tuples())
    ordered = sorted(due - spared)
    return ordered if limit is None else ordered[:limit]


def _row_query(kind, policy, now):
    """(model, its key field, the condition of its due rows), or None when none can be due."""
    if kind == "audit_entries":
        if not policy.keep_audit_days:
            return None
        Entry = models.AuditEntry
        return Entry, Entry.id, Entry.time < now - policy.keep_audit_days * DAY
    if kind == "sessions":
        Session, gone = models.Session, now - SESSION_GRACE_DAYS * DAY
        return Session, Session.id, (Session.expires < gone) | (Session.revoked < gone)
    if kind == "tokens":
        Token, gone = models.Token, now - TOKEN_GRACE_DAYS * DAY
        return Token, Token.id, (Token.expires < gone) | (Token.revoked < gone)
    if kind == "webhook_deliveries":
        Delivery = models.WebhookDelivery
        return Delivery, Delivery.id, Delivery.finished < now - policy.history_days * DAY
    raise ValueError(kind)


def rows_due(kind, policy, now, limit=None):
    """Reader: the keys of the rows of ``kind`` (one of ``ROW_KINDS``) due at ``now``, at most
    ``limit`` (None: all)."""
    if kind == "schedule_runs":
        return _runs_due(policy, now, limit)
    found = _row_query(kind, policy, now)
    if found is None:
        return []
    model, key, condition = found
    query = model.select(key).where(condition).order_by(key)
    return [value for value, in (query if limit is None else query.limit(limit)).tuples()]


def _runs_due(policy, now, limit):
    Run = models.ScheduleRun
    due = []
    for schedule, in Run.select(Run.schedule).distinct().order_by(Run.schedule).tuples():
        older = (Run.select(Run.id, Run.fired).where(Run.schedule == schedule)
                 .order_by(Run.scheduled_for.desc(), Run.id.desc())
                 .offset(models.RUNS_SHOWN).limit(2 ** 62))
        due.extend(run for run, fired in older.tuples()
                   if fired < now - policy.history_days * DAY)
        if limit is not None and len(due) >= limit:
            return due[:limit]
    return due


def count_rows_due(kind, policy, now):
    """Reader: how many rows of ``kind`` are due at ``now``."""
    if kind == "schedule_runs":
        return len(_runs_due(policy, now, None))
    found = _row_query(kind, policy, now)
    if found is None:
        return 0
    model, _, condition = found
    return model.select().where(condition).count()


# --- writer thread: one batch ------------------------------------------------------------------

def delete_jobs(tx, job_ids):
    """Writer: delete the finished jobs ``job_ids`` with their ``job_data``
    (``jobstore.delete_finished``; their entries and folders are ``jobremoval``'s); returns the
    ids that went (one deleted meanwhile, by a user or another server, is skipped)."""
    return [job.id for job in jobstore.delete_finished(tx, job_ids)]


def delete_rows(tx, kind, keys):
    """Writer: delete the rows of ``kind`` whose keys are ``keys``; returns how many went."""
    model = _MODELS[kind]
    key = model._meta.primary_key
    deleted = 0
    for start in range(0, len(keys), jobstore.MAX_IDS_PER_STATEMENT):
        deleted += model.delete().where(
            key.in_(keys[start:start + jobstore.MAX_IDS_PER_STATEMENT])).execute()
    return deleted


def prune_code_versions(tx):
    """Writer: ``codestore.prune`` for every worker that has versions; returns how many went."""
    Version = models.WorkerVersion
    workers = [w for w, in Version.select(Version.worker).distinct().order_by(Version.worker)
               .tuples()]
    return sum(codestore.prune(tx, worker) for worker in workers)
