"""Retries: a job's retry policy, and the next attempt of a job that failed.

Contract: a job's policy (``retries``: attempts after the first, ``retry_delay`` seconds,
``retry_backoff`` factor, ``retry_on_timeout``) is its own (``POST /jobs``, a batch's job or the
whole batch, a rerun, the CLI), else its worker's declaration (``jobjoker.worker_settings``),
else ``DEFAULTS``; ``policy(spec, worker_settings)`` checks what a body gives with
``worker_settings.check`` (the one rule of each; ``BadRequest`` naming the field) and returns
the columns stored with the new job (``attempt`` 1). The effective policy lives in the job's
row, so a later change of the worker changes no job already made, and a chain survives
restarts: it is rows.

``RetryHook(secrets, audit)`` is a storage end hook (``storage.end_hooks``, registered at server
start): in the transaction that ends a job ``error`` whose ``reason`` is not ``timeout`` (or is,
with ``retry_on_timeout``), while ``attempt <= retries``, it inserts the next attempt (same
worker, parameters, secret values re-sealed for it, timeout, policy, ``created_by`` and
``schedule_id``; ``retry_of`` the failed job, ``attempt + 1``) and moves it to ``scheduled``
with ``start_at`` = the end + ``retry_delay * retry_backoff ** (attempt - 1)``, announced on the
hub, with a ``job.retry`` audit entry by the server. The clock that starts scheduled jobs at
their time is not here (the scheduled-start part of the server). A job stopped through
JobJoker ends ``stop`` and is never retried; ``done`` neither. ``chain(job_id)`` (a storage
read) is every attempt of a job's chain, first first.
"""
import json
import logging
import time

from jobjoker import admission, jobstore, worker_settings
from jobjoker.errors import BadRequest, NotFound
from jobjoker.secretbox import SecretsUnreadable
from jobjoker.states import JobStatus

log = logging.getLogger(__name__)

# What a job may set of its retry policy (the keys of the bodies that create jobs), and what a
# job that sets none, of a worker that declares none, gets.
KEYS = ("retries", "retry_delay", "retry_backoff", "retry_on_timeout")
DEFAULTS = {"retries": 0, "retry_delay": 10.0, "retry_backoff": 1.0, "retry_on_timeout": False}
NOT_RETRIED = "timeout"  # the reason that is retried only with retry_on_timeout


def given(body):
    """The retry settings ``body`` gives (null: not given), each checked by its one rule;
    ``BadRequest`` naming the first field that breaks it."""
    found = {}
    for name in KEYS:
        value = body.get(name) if isinstance(body, dict) else None
        try:
            checked = worker_settings.check(name, value)
        except ValueError as e:
            error = BadRequest('"%s" must be %s (or null for the worker\'s), not %s'
                               % (name, e, json.dumps(value)[:40]))
            error.field = name
            raise error
        if checked is not None:
            found[name] = checked
    return found


def with_batch_policy(specs, body):
    """The batch's specs with the retry settings given beside ``jobs`` (for the whole batch)
    added to each spec that sets none of its own."""
    batch = given(body)
    if not batch:
        return specs
    return [dict(spec, **{name: value for name, value in batch.items()
                          if spec.get(name) is None}) if isinstance(spec, dict) else spec
            for spec in specs]


def policy(spec, declared):
    """The retry columns of a new job (a first attempt) from its spec's own settings, else its
    worker's (``declared``: the worker's settings dict), else ``DEFAULTS``."""
    own = given(spec)
    columns = {name: own.get(name, declared.get(name, DEFAULTS[name])) for name in KEYS}
    return dict(columns, attempt=1)


def delay_of(job):
    """Seconds from the end of ``job`` (a failed attempt) to the start of its retry."""
    delay = job.retry_delay if job.retry_delay is not None else DEFAULTS["retry_delay"]
    backoff = job.retry_backoff if job.retry_backoff is not None else DEFAULTS["retry_backoff"]
    return delay * backoff ** ((job.attempt or 1) - 1)


def retried(job):
    """Whether the ended ``job`` (a row) gets a next attempt."""
    if job.status != JobStatus.ERROR.value or not job.retries:
        return False
    if job.reason == NOT_RETRIED and not job.retry_on_timeout:
        return False
    return (job.attempt or 1) <= job.retries


class RetryHook:
    """The end hook that makes a failed job's next attempt (see the module's docstring)."""

    def __init__(self, secrets, audit):
        self.secrets = secrets  # the SecretBox: the retry's secret values are sealed for it
        self.audit = audit

    def __call__(self, tx, job):
        if not retried(job):
            return
        start_at = (job.stoptime or time.time()) + delay_of(job)
        [new] = jobstore.insert(tx, [{
            "id": jobstore.new_job_id(), "worker": job.worker, "status": JobStatus.IDLE.value,
            "parameters": job.parameters, "secret_parameters": self._resealed(job),
            "created": time.time(), "created_by": job.created_by, "timeout": job.timeout,
            "schedule_id": job.schedule_id, "retry_of": job.id, "attempt": (job.attempt or 1) + 1,
            **{name: getattr(job, name) for name in KEYS}}])
        new = jobstore.transition(tx, new.id, JobStatus.SCHEDULED, start_at=start_at)
        self.audit.record(tx, None, "job.retry", new.id, "attempt %d of %d of worker %s, a "
                          "retry of %s (%s); starts at %.3f" % (
                              new.attempt, job.retries + 1, job.worker, job.id, job.reason,
                              start_at))
        log.info("job %s: ended error (%s); attempt %d is job %s, at %.3f", job.id, job.reason,
                 new.attempt, new.id, start_at)

    def _resealed(self, job):
        """The failed job's secret values sealed anew for its retry (a token is never shared
        by two jobs: erasing one job's leaves the other's); one no key opens is copied as it is,
        and the retry fails to start saying why."""
        if job.secret_parameters is None:
            return None
        try:
            values = self.secrets.open(job.secret_parameters, job.id)
        except SecretsUnreadable:
            return job.secret_parameters
        return self.secrets.seal(values) if values else None


def chain(job_id):
    """Storage read: every attempt of the chain ``job_id`` belongs to, first first (it walks
    ``retry_of`` up to the first, then the retries down; a deleted attempt cuts the chain
    there); ``NotFound`` for an unknown job."""
    job = jobstore.get(job_id)
    for _ in range(worker_settings.MAX_RETRIES + 1):
        if job.retry_of is None:
            break
        try:
            job = jobstore.get(job.retry_of)
        except NotFound:
            break
    attempts = [job]
    while len(attempts) <= worker_settings.MAX_RETRIES:
        following = jobstore.next_attempt(attempts[-1].id)
        if following is None:
            break
        attempts.append(following)
    return attempts


async def attempts(storage, job_id):
    """The chain of ``job_id`` as the API shows jobs (``chain``, read on the storage), each
    with its ``queue_position`` (``admission.position``)."""
    return await storage.read(lambda: [
        dict(jobstore.job_to_dict(job), queue_position=admission.position(job))
        for job in chain(job_id)])


def planned(attempts):
    """How many attempts the chain (job dicts, first first) may take: its first's
    ``retries + 1`` (the policy is copied down the chain)."""
    return (attempts[0].get("retries") or 0) + 1


def attempt_message(attempts, job_id):
    """``attempt 2 of 4``: where job ``job_id`` stands in its chain (job dicts, first first)."""
    mine = next((job for job in attempts if job["id"] == job_id), attempts[-1])
    return "attempt %d of %d" % (mine.get("attempt") or 1, planned(attempts))
