"""Job control in the process manager: time limits, and pause and resume.

Contract: ``JobControl`` is mixed into ``jobjoker.procman.ProcessManager`` and uses its state
(``running``, ``storage``, ``logstore``, ``config``, ``audit``) and its ``_launched``,
``_signal``, ``_arm_escalation`` and ``_in_background``.

**Time limits.** A job's effective ``timeout`` is stored when it is created
(``jobjoker.jobspec``) and its ``deadline`` (start + timeout) when it starts, so the limit lives
in the database: ``_arm_deadline`` sets a timer on the loop when a job is launched or adopted
(a restarted server re-arms it; one already past fires at once). At the deadline the job is
stopped as a stop request stops it (``stop_requested``, ``stop_deadline`` after
``--stop-grace``, SIGTERM and SIGCONT to its group, SIGKILL at the stop deadline), with
``stop_reason`` ``"timeout"`` and a ``job.timeout`` audit entry by the server (actor null), and
``jobjoker.outcome`` ends it ``error``, ``timed out after N s``. A job with a stop already
requested, or ended, is left alone. Only the server that runs a job arms its timer (a server
holds the running jobs of its own node), so servers sharing a database never race for one.

**Pause and resume.** ``pause(job_id)`` / ``resume(job_id)`` store the request
(``pause_requested`` = now, or NULL) with its audit entry, then send SIGSTOP / SIGCONT to the
job's process group. The status follows what the operating system says, not the request: the
supervisor (protocol 6) tells when a job's main process stopped or continued, by our signal
or anyone's (``kill -STOP`` from a shell), and ``record_run_state`` moves the job active <->
paused through ``jobstore.transition``, with a ``PAUSED``/``RESUMED`` log entry. Those status
events carry ``"previous"`` (the status left), so a resume is never taken for a start. A job
whose supervisor is older than protocol 6 (it drains after an upgrade) or which was adopted
without its supervisor is confirmed by ``/proc/PID/stat`` instead, polled for a moment after
the signal. After a restart, ``adopt_run_state`` sets the status from the process's state
(the supervisor's ``status``, else ``/proc``) and sends SIGSTOP again to a job whose pause was
requested but which runs. A paused job's time limit keeps running.
"""
import asyncio
import logging
import signal
import time

from tornado.ioloop import IOLoop

from jobjoker import jobstore, proc
from jobjoker.errors import InvalidTransition, NotFound
from jobjoker.outcome import TIMEOUT, seconds_text, timed_out_message
from jobjoker.states import ACTIONS, FINAL_STATES, JobStatus, describe

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # a time limit the database could not record is tried again this much later
CONFIRM_SECONDS = 5.0  # how long /proc is polled for a stop or continuation without events
CONFIRM_INTERVAL = 0.02
EVENTS_PROTOCOL = 6  # the first supervisor protocol that tells stops and continuations


class JobControl:
    """The ``ProcessManager``'s time limits, and pause and resume."""

    # --- time limits ------------------------------------------------------------------------

    def _arm_deadline(self, running, deadline):
        """Stop the job at ``deadline`` (epoch seconds; None: it has no time limit)."""
        if deadline is None or running.deadline_timer is not None:
            return
        delay = max(0.0, deadline - time.time())
        running.deadline_timer = IOLoop.current().call_later(
            delay, self._deadline_reached, running.job_id)

    def _forget_deadline(self, running):
        if running.deadline_timer is not None:
            IOLoop.current().remove_timeout(running.deadline_timer)
            running.deadline_timer = None

    def _deadline_reached(self, job_id):
        running = self.running.get(job_id)
        if running is None:
            return
        running.deadline_timer = None
        if not running.finishing:
            self._in_background(self._time_out(running))

    async def _time_out(self, running):
        """Stop a job that reached its time limit, as a stop request does."""
        job_id = running.job_id
        try:
            await self._launched(job_id)
            job = await self.storage.transaction(self._record_time_out, job_id)
        except (InvalidTransition, NotFound):
            return  # it ended meanwhile
        except Exception:
            log.exception("job %s: recording that it reached its time limit failed; trying "
                          "again in %g s", job_id, RETRY_SECONDS)
            if job_id in self.running and not running.finishing:
                running.deadline_timer = IOLoop.current().call_later(
                    RETRY_SECONDS, self._deadline_reached, job_id)
            return
        if job is None:
            return
        log.warning("job %s: %s; stopping it (SIGTERM, SIGKILL after %g s)",
                    job_id, timed_out_message(job.timeout), self.config.stop_grace)
        try:
            await self._signal(job_id, signal.SIGTERM)
        except Exception:
            log.exception("job %s: SIGTERM at its time limit failed", job_id)
        self._arm_escalation(running, job.stop_deadline)

    def _record_time_out(self, tx, job_id):
        """Writer thread: the time limit's stop request, audited; None when the job has ended
        or a stop is already under way (that one decides how it ends)."""
        job = jobstore.get(job_id)
        if job.status in FINAL_STATES or job.stop_requested is not None:
            return None
        now = time.time()
        job = jobstore.update(tx, job_id, stop_requested=now,
                              stop_deadline=now + self.config.stop_grace, stop_reason=TIMEOUT)
        if self.audit is not None:
            self.audit.record(tx, None, "job.timeout", job_id, "time limit %s s reached"
                              % seconds_text(job.timeout))
        return job

    # --- pause and resume --------------------------------------------------------------------

    async def pause(self, job_id, also=None):
        """Store the pause request (``also(tx, job)`` may add to that transaction), then send
        SIGSTOP to the job's group; it becomes ``paused`` once its process has stopped."""
        return await self._pause_or_resume(job_id, True, also)

    async def resume(self, job_id, also=None):
        """Clear the pause request, then send SIGCONT to the job's group; it becomes
        ``active`` once its process has continued."""
        return await self._pause_or_resume(job_id, False, also)

    async def _pause_or_resume(self, job_id, pausing, also):
        running = await self._launched(job_id)
        job = await self.storage.transaction(self._record_pause, job_id, pausing, also)
        await self._signal(job_id, signal.SIGSTOP if pausing else signal.SIGCONT)
        self._confirm_without_events(running, job.pid)
        return job

    def _record_pause(self, tx, job_id, pausing, also):
        """Writer thread: the pause request (now) or its end (NULL), refused (409, saying the
        job's state) for a job that is not active (pause) or not paused (resume)."""
        job = jobstore.get(job_id)
        if job.status in FINAL_STATES:
            raise jobstore.already_ended(job)
        command = "pause" if pausing else "resume"
        if JobStatus(job.status) not in ACTIONS[command]:
            raise InvalidTransition("job %s %s; only %s job can %s" % (
                job_id, describe(job.status), "an active" if pausing else "a paused", command))
        if pausing and job.stop_requested is not None:
            raise InvalidTransition("job %s is being stopped (asked at %s); a job being stopped "
                                    "cannot pause" % (job_id, time.strftime(
                                        "%H:%M:%S", time.localtime(job.stop_requested))))
        job = jobstore.update(tx, job_id, pause_requested=time.time() if pausing else None)
        if also is not None:
            also(tx, job)
        return job

    def _on_run_state_event(self, event):
        """A supervisor's ``stopped`` or ``continued`` event: the job's status follows."""
        running = self.running.get(event.get("job_id"))
        if running is None or running.disowned:
            return
        self._in_background(self.record_run_state(running, event["event"] == "stopped",
                                                  event.get("signal")))

    async def record_run_state(self, running, stopped, signum=None):
        """The job's process has stopped (``stopped``) or continued: once its start is
        recorded, move it active -> paused or paused -> active (nothing when it is already
        there, or has ended)."""
        await asyncio.shield(running.launched)
        try:
            await self.storage.transaction(self._record_run_state, running.job_id, stopped,
                                           signum)
        except NotFound:
            pass
        except Exception:
            log.exception("job %s: recording that its process %s failed", running.job_id,
                          "stopped" if stopped else "continued")

    def _record_run_state(self, tx, job_id, stopped, signum):
        """Writer thread: see ``record_run_state``; the status event says the status left."""
        job = jobstore.get(job_id)
        new, old = (JobStatus.PAUSED, JobStatus.ACTIVE) if stopped else \
            (JobStatus.ACTIVE, JobStatus.PAUSED)
        if job.status != old.value:
            return job
        fields = {} if stopped else {"pause_requested": None}
        try:
            job = jobstore.transition(tx, job_id, new, announced=False,
                                      only=ACTIONS["pause" if stopped else "resume"], **fields)
        except InvalidTransition:
            return jobstore.get(job_id)
        why = "requested" if job.pause_requested is not None else "from outside JobJoker"
        if stopped:
            message = "PAUSED (its process was stopped by %s, %s)" % (
                _signal_name(signum), why)
        else:
            message = "RESUMED (its process continued)"
        self.logstore.append_message(tx, job_id, "log", message)
        tx.publish({"type": "job", "action": "status", "previous": old.value,
                    "job": jobstore.job_to_dict(job)})
        log.info("job %s: %s", job_id, message)
        return job

    def _tells_run_state(self, running):
        """Whether the supervisor of ``running`` pushes stops and continuations."""
        return running.pidfd is None and running.supervisor is not None and \
            (running.supervisor.supervisor_protocol or 0) >= EVENTS_PROTOCOL

    def _confirm_without_events(self, running, pid):
        """For a job whose supervisor tells no stops (older than protocol 6) or that was
        adopted without its supervisor: watch ``/proc`` a moment for the state it reaches."""
        pid = running.pid or pid
        if self._tells_run_state(running) or not pid:
            return

        async def watch():
            loop = asyncio.get_running_loop()
            until = loop.time() + CONFIRM_SECONDS
            seen = None
            while loop.time() < until and running.job_id in self.running:
                stopped = proc.state(pid) == "T"
                if stopped != seen:
                    seen = stopped
                    await self.record_run_state(running, stopped)
                await asyncio.sleep(CONFIRM_INTERVAL)
        self._in_background(watch())

    async def adopt_run_state(self, job, running, pid, stopped=None):
        """After a restart: set the job's status from its process's state (``stopped`` as its
        supervisor told, else ``/proc``), and stop again a job whose pause was requested but
        which runs (the server stopped between the request and the signal, say)."""
        if stopped is None:
            stopped = proc.state(pid) == "T"
        if stopped != (job.status == JobStatus.PAUSED.value):
            await self.record_run_state(running, stopped)
        if job.pause_requested is not None and not stopped and job.stop_requested is None:
            log.info("job %s: its pause was requested but it runs; sending SIGSTOP again",
                     job.id)
            try:
                await self._signal(job.id, signal.SIGSTOP)
            except Exception:
                log.exception("job %s: SIGSTOP again after a restart failed", job.id)
                return
            self._confirm_without_events(running, pid)


def _signal_name(signum):
    try:
        return signal.Signals(signum).name
    except (TypeError, ValueError):
        return "a signal"
