"""The process manager: starts, stops, kills and watches this node's job processes.

Contract: one ``ProcessManager`` per server owns a ``RunningJob`` for every active job of this
node. ``launch_many(jobs, worker_files)`` asks the supervisor to fork jobs (already ``active``:
the caller won their idle -> active transition) and records each pid, which is the job's start
event. ``stop(job_id)`` records the intent durably (a deadline in the job row), sends SIGTERM
to the job's process group and escalates to SIGKILL when the deadline passes, even across a
server restart; ``kill(job_id)`` sends SIGKILL at once. Output is stored by the ``Ingester``. A
job becomes final only after the supervisor reaped its process *and* its spools were drained:
the ingester stores its backlog in its usual short passes (a big one never holds the database
for long), then its closing entry and final status are stored in one small transaction, which
is retried until it succeeds. ``adopt_jobs()`` (``jobjoker.adoption``, mixed in) runs on start,
after every reconnection to the supervisor and when an older supervisor has gone: running jobs
are watched again, jobs that ended meanwhile are finished from their exit record, orphans of a
dead supervisor are watched through a pidfd, vanished ones end ``error``. Time limits and
pause/resume (``pause(job_id)``, ``resume(job_id)``) are ``jobjoker.jobcontrol``'s, mixed in.

New jobs go to the supervisor of this installation's code; one started from older code (before an
upgrade) keeps its jobs, which are stopped, killed and finished through it, and exits after the
last (``jobjoker.supervisors``). ``describe_supervisors()`` is what ``/health`` shows of them;
``reopen_supervisor_logs()`` has each open its log anew (the server's SIGHUP, after a rotation).
"""
import asyncio
import contextvars
import json
import logging
import os
import signal
import time

from tornado.ioloop import IOLoop

from jobjoker import codestore, jobdir, jobstore
from jobjoker.adoption import Adoption, has_exited
from jobjoker.jobcontrol import JobControl
from jobjoker.errors import InvalidTransition, NotFound, Unavailable
from jobjoker.ingest import RETRY_DELAY, Ingester, spools_for, store_spools
from jobjoker.outcome import end_time, ended_message, final_outcome
from jobjoker.parameters import mask_values
from jobjoker.secretbox import SecretsUnreadable
from jobjoker.states import FINAL_STATES, JobStatus, describe
from jobjoker.storage import detached
from jobjoker.supervisors import Supervisors
from jobjoker.usage import UsageMonitor

log = logging.getLogger(__name__)


class RunningJob:
    """What the manager knows of one active job of this node."""

    def __init__(self, job_id, job_dir, spools):
        self.job_id = job_id
        self.job_dir = job_dir
        self.spools = spools  # the ingester's, touched only on the writer thread
        self.escalation = None
        self.deadline_timer = None  # stops it at its time limit (jobjoker.jobcontrol)
        # Done once its start is recorded (True) or has failed (False): an exit that comes
        # first waits for it, so a job's end is never recorded before its start.
        self.launched = asyncio.get_running_loop().create_future()
        self.pidfd = None  # only for an orphan adopted without the supervisor
        self.supervisor = None  # the SupervisorClient of the supervisor that runs it
        self.pid = None
        self.finishing = False
        # The exit record it ends with when its live process was not proven to be this data
        # dir's (jobjoker.adoption): it is then never signalled, its supervisor's events ignored.
        self.disowned = None


class ProcessManager(JobControl, Adoption):
    """Owns the processes of this node's active jobs."""

    def __init__(self, config, storage, logstore, secrets, audit=None):
        self.config = config
        self.audit = audit  # the AuditLog: the server's own actions (a time limit's stop)
        self.storage = storage
        self.logstore = logstore
        self.secrets = secrets  # the SecretBox that opens the jobs' stored secret values
        self.jobs_dir = os.fspath(config.jobs_dir)
        self.owners = jobdir.owners_for(config.run_as)  # whose files a job folder may hold
        self.running = {}
        self._tasks = set()
        self.ingester = Ingester(storage, logstore, config.max_result_bytes)
        self.supervisors = Supervisors(config.run_dir, self._on_supervisor_event,
                                       self.adopt_jobs, self._on_supervisor_gone)
        self.usage = UsageMonitor(storage, config.usage_interval)  # jobjoker.usage

    @property
    def supervisor(self):
        """The supervisor that starts new jobs (a ``SupervisorClient``)."""
        return self.supervisors.current

    def describe_supervisors(self):
        """For ``/health``: each supervisor's pid, protocol, code hash, jobs, and whether it
        drains (runs the jobs it has, then exits)."""
        return self.supervisors.describe(lambda client: sum(
            1 for running in self.running.values() if running.supervisor is client))

    async def reopen_supervisor_logs(self):
        """Have every connected supervisor open its log anew by name (logrotate renamed it)."""
        try:
            await self.supervisors.reopen_logs()
        except Exception:
            log.exception("asking the supervisors to reopen their logs failed")

    @property
    def disk_full(self):
        return self.ingester.disk_full

    async def start(self):
        """Connect to (or start) the supervisor and re-adopt this node's active jobs."""
        jobdir.create(self.jobs_dir)
        self.ingester.start()
        self.usage.start()
        await self.supervisors.connect()
        await self.adopt_jobs()
        await self.supervisors.drain_others()

    async def close(self, kill_jobs=False):
        """Let go of the jobs (they keep running) or, with ``kill_jobs``, end them all."""
        for running in self.running.values():
            if running.escalation is not None:
                IOLoop.current().remove_timeout(running.escalation)
            self._forget_deadline(running)
        self.ingester.close()
        await self.supervisors.close(shutdown=kill_jobs, kill_jobs=kill_jobs)
        # Ends being recorded finish first: the storage closes after us.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.usage.close()
        for running in self.running.values():
            self._forget_pidfd(running)

    # --- starting ---------------------------------------------------------------------------

    def _track(self, job, secret_values):
        spools = spools_for(job, self.jobs_dir, mask_values(secret_values), self.owners)
        jobdir.create(spools.job_dir)
        running = self.running[job.id] = RunningJob(job.id, spools.job_dir,
                                                    self.ingester.track(spools))
        return running

    async def launch(self, job, worker_file, also=None):
        """Fork the process of ``job`` (already ``active``); returns the job with its pid.

        When the supervisor cannot fork it, the job ends ``error`` and ``Unavailable`` is raised.
        """
        [(job, problem)] = await self.launch_many([job], {job.id: worker_file}, also)
        if problem is not None:
            raise Unavailable("job %s could not start: %s" % (job.id, problem))
        return job

    async def launch_many(self, jobs, worker_files, also=None, worker_sources=None):
        """Fork the processes of ``jobs`` (each already ``active``; ``worker_files`` maps a job
        id to its worker's file, ``worker_sources`` a job id to the code it runs, read by the
        caller: ``jobjoker.codestore``) with one supervisor request (or a few, for a batch carrying
        much source); returns ``[(job, problem)]`` in
        order: the job with its pid and None, or, for one the supervisor could not fork (or whose
        secret values no key opens), the job ended ``error`` and what went wrong. The pids are
        stored in one transaction, each the one event of a job's start; ``also(tx, started
        jobs)`` may add to that transaction."""
        opened, failed = {}, {}
        for job in jobs:  # a job whose secrets no key opens is not forked: it fails, saying why
            try:
                opened[job.id] = self.secrets.open(job.secret_parameters, job.id)
            except SecretsUnreadable as e:
                failed[job.id] = e.message
                log.error("job %s: could not start its process: %s", job.id, e.message)
        forked = [job for job in jobs if job.id in opened]
        runs = [self._track(job, opened[job.id]) for job in forked]
        # Secrets travel to the job over the supervisor's socket, never in argv or the env.
        specs = [{"job_id": job.id, "worker": job.worker, "worker_file": worker_files[job.id],
                  "params": dict(json.loads(job.parameters), **opened[job.id]),
                  "mask": running.spools.masker.values, "job_dir": running.job_dir,
                  "run_as": self.config.run_as, "cwd": os.fspath(self.config.workers_dir),
                  "max_result_bytes": self.config.max_result_bytes,
                  # the code recorded as the job's (job.code_hash), not the file's now
                  "worker_source": (worker_sources or {}).get(job.id)}
                 for job, running in zip(forked, runs)]
        supervisor = self.supervisor
        for running in runs:
            running.supervisor = supervisor
        results = []
        for part in codestore.bounded_by_source(specs):  # a big worker's batch: in parts
            try:
                results += await supervisor.start_many(part)
            except Unavailable as e:
                results += [{"error": e.message}] * len(part)
        started = {}
        for job, result in zip(forked, results):
            if "pid" in result:
                log.info("job %s: started worker %s as pid %s", job.id, job.worker,
                         result["pid"])
                started[job.id] = {"pid": result["pid"],
                                   "pid_start_time": result.get("start_time")}
            else:
                failed[job.id] = result.get("error") or "the supervisor gave no reason"
                log.error("job %s: could not start its process: %s", job.id, failed[job.id])
        try:
            # Never given up on, even for a request that is: the processes exist now.
            recorded = await detached(self.storage.transaction, self._record_starts, started,
                                      failed, also)
        except BaseException:
            for running in runs:
                if not running.launched.done():
                    running.launched.set_result(True)  # running: its end will be recorded
            raise
        for running in runs:
            if running.job_id in failed:
                self.running.pop(running.job_id, None)
                self.ingester.untrack(running.job_id)
            running.launched.set_result(running.job_id not in failed)
            if running.job_id in started:
                self.usage.watch(running.job_id, started[running.job_id]["pid"])
            if running.job_id not in failed and running.job_id in self.running:
                self._arm_deadline(running, recorded[running.job_id].deadline)
        return [(recorded[job.id], failed.get(job.id)) for job in jobs]

    def _record_starts(self, tx, started, failed, also):
        """Writer thread: each started job's pid (its start event), each failed one's end."""
        jobs = {job_id: jobstore.update(tx, job_id, action="status", **fields)
                for job_id, fields in started.items()}
        if also is not None and jobs:
            also(tx, list(jobs.values()))
        for job_id, problem in failed.items():
            self.logstore.append_message(tx, job_id, "log", "FAILED to start: %s" % problem)
            jobs[job_id] = jobstore.transition(tx, job_id, JobStatus.ERROR, stoptime=time.time(),
                                               error="could not start: %s" % problem,
                                               reason="start_failed")
            folder = jobdir.path_of(self.jobs_dir, job_id)
            tx.on_commit(lambda folder=folder: jobdir.remove(folder))
        return jobs

    # --- stopping ---------------------------------------------------------------------------

    async def stop(self, job_id, also=None):
        """SIGTERM the job's group now and SIGKILL it when the grace period is over; the intent
        and its deadline are stored first (``also(tx, job)`` may add to that transaction)."""
        running = await self._launched(job_id)
        job = await self.storage.transaction(self._record_stop, job_id, False, also)
        await self._signal(job_id, signal.SIGTERM)
        self._arm_escalation(running, job.stop_deadline)
        return job

    async def kill(self, job_id, also=None):
        """SIGKILL the job's whole process group at once."""
        await self._launched(job_id)
        job = await self.storage.transaction(self._record_stop, job_id, True, also)
        await self._signal(job_id, signal.SIGKILL)
        return job

    def _record_stop(self, tx, job_id, kill, also):
        """Writer thread: the stop request and its deadline (a kill's is now; a stop already
        requested keeps its own). A job whose end was committed a moment ago is still in
        ``running`` until that commit's callbacks have run: its stored status decides."""
        job = jobstore.get(job_id)
        if job.status in FINAL_STATES:
            raise jobstore.already_ended(job)
        now = time.time()
        if kill:
            job = jobstore.update(tx, job_id, stop_requested=job.stop_requested or now,
                                  stop_deadline=now)
        elif job.stop_requested is None:
            job = jobstore.update(tx, job_id, stop_requested=now,
                                  stop_deadline=now + self.config.stop_grace)
        if also is not None:
            also(tx, job)
        return job

    async def _launched(self, job_id):
        running = self.running.get(job_id)
        if running is None or not await running.launched or job_id not in self.running:
            raise InvalidTransition("job %s is not running on this server" % job_id)
        return running

    async def _signal(self, job_id, signum):
        running = self.running.get(job_id)
        if running is not None and running.disowned:
            return  # another data dir's process (jobjoker.adoption): never ours to signal
        if running is not None and running.pidfd is not None:
            self._signal_orphan(running, signum)
            return
        supervisor = (running and running.supervisor) or self.supervisor
        try:
            await supervisor.request("signal", job_id=job_id, signal=int(signum))
        except Unavailable as e:
            if "not running" not in e.message:  # it has just exited: its exit event follows
                raise

    @staticmethod
    def _signal_orphan(running, signum):
        """Signal the group of a job adopted without its supervisor.

        The pidfd was opened after proving the pid's start time, so while it does not report an
        exit, the pid is still the job's leader and so its group id is the job's group.
        """
        if has_exited(running.pidfd):
            return  # the pidfd handler finishes the job
        try:
            os.killpg(running.pid, signum)
            if signum == signal.SIGTERM:
                os.killpg(running.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def _arm_escalation(self, running, deadline):
        if running.escalation is not None or deadline is None:
            return
        delay = max(0.0, deadline - time.time())
        running.escalation = IOLoop.current().call_later(delay, self._escalate, running.job_id)

    def _escalate(self, job_id):
        running = self.running.get(job_id)
        if running is None:
            return
        running.escalation = None
        log.warning("job %s: did not stop within the grace period; sending SIGKILL", job_id)
        asyncio.ensure_future(self._escalate_now(job_id))

    async def _escalate_now(self, job_id):
        try:
            await self._signal(job_id, signal.SIGKILL)
        except Exception:
            log.exception("job %s: SIGKILL after the grace period failed", job_id)

    # --- endings ----------------------------------------------------------------------------

    def _on_supervisor_event(self, event):
        running = self.running.get(event.get("job_id"))
        if event.get("event") == "exit" and running is not None and not running.disowned:
            self._in_background(self.finish(event["job_id"], event))
        elif event.get("event") in ("stopped", "continued"):
            self._on_run_state_event(event)

    def _in_background(self, coroutine):
        # The loop keeps only weak references to tasks: these keep them until they are done.
        # A context of its own: whatever request led here, its time limit is not the task's.
        task = asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, job_id, exit_record):
        """The job's process has ended: once its start is recorded, record its end (returns
        when it is recorded, or when the first attempt failed and a retry is scheduled)."""
        running = self.running.get(job_id)
        if running is None or running.finishing:
            return
        running.finishing = True
        await asyncio.shield(running.launched)
        await self._finish(running, exit_record)

    async def _finish(self, running, exit_record):
        """Let the ingester store what the spools hold, then write the closing entry and set
        the final status, in one transaction. When the database refuses (full disk, away),
        the job stays ``active`` in it and this is tried again a second later: its status
        never says it ended before its end is stored."""
        job_id = running.job_id
        if running.escalation is not None:
            IOLoop.current().remove_timeout(running.escalation)
            running.escalation = None
        self._forget_deadline(running)
        self._forget_pidfd(running)
        await self.ingester.drain_ended(job_id)
        try:
            status, how = await self.storage.transaction(self._record_end, running, exit_record)
        except NotFound:
            self.running.pop(job_id, None)
            self.usage.forget(job_id)
        except Exception as e:
            self.ingester.failed(job_id, e, "recording its end")
            IOLoop.current().call_later(RETRY_DELAY, lambda: self._in_background(
                self._finish(running, exit_record)))
        else:
            self.running.pop(job_id, None)
            self.usage.forget(job_id)
            self.ingester.recovered(job_id)
            log.info("job %s: %s (%s)", job_id, describe(status), how)

    def _record_end(self, tx, running, exit_record):
        """Writer thread: ``ENDED`` and the final status (the ingester stored the spools;
        whatever came after its last pass is bounded by a read and stored first)."""
        job_id = running.job_id
        job = jobstore.get(job_id)
        if job.status in FINAL_STATES:  # an attempt whose commit went through unanswered
            tx.on_commit(lambda: jobdir.remove(running.job_dir))
            return JobStatus(job.status), "recorded by an earlier attempt"
        store_spools(tx, self.logstore, running.spools, final=True)
        run_end = jobdir.read_run_end(running.job_dir, self.owners)
        status, reason, error, how = final_outcome(job.stop_requested is not None, exit_record,
                                                   run_end, job.stop_reason, job.timeout)
        if error is not None and running.spools.masker:
            # The run-end record is the job's own words (an old runner's, or written by the
            # worker itself): shown to every viewer and on /events, it is masked here too.
            error = running.spools.masker.text(error)
        stoptime, evidence = self._end_time(running, job, exit_record, run_end)
        # Stamped with the end itself, not with when it was recorded (a restart, maybe).
        self.logstore.append_message(tx, job_id, "log", ended_message(
            status, how, stoptime - (job.starttime or stoptime), evidence), stoptime)
        self.usage.record_end(tx, job, exit_record)  # its resource figures, before the status
        try:
            jobstore.transition(tx, job_id, status, stoptime=stoptime,
                                exit_code=exit_record.get("returncode"),
                                exit_signal=exit_record.get("signal"), error=error,
                                reason=reason, stop_deadline=None)
        except InvalidTransition:
            log.exception("job %s: could not record its end", job_id)
        tx.on_commit(lambda: jobdir.remove(running.job_dir))
        return status, how

    def _end_time(self, running, job, exit_record, run_end):
        """Writer thread: ``(stoptime, evidence)`` of an ended job (``outcome.end_time``),
        never before its start. Its files are looked at only when the exit was not seen."""
        last_output = None
        if exit_record.get("time") is None:
            last_output = jobdir.last_modified(running.job_dir, jobdir.OUTPUT_FILES, self.owners)
        when, evidence = end_time(exit_record, run_end, last_output, time.time())
        return max(when, job.starttime or when), evidence

    def _forget_pidfd(self, running):
        if running.pidfd is not None:
            IOLoop.current().remove_handler(running.pidfd)
            os.close(running.pidfd)
            running.pidfd = None
