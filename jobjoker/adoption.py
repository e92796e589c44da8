"""Adoption: the process manager's jobs found again after a restart, a reconnection to the
supervisor, or the end of an older supervisor.

Contract: ``Adoption`` is mixed into ``jobjoker.procman.ProcessManager`` and uses its state
(``running``, ``supervisors``, ``storage``, ``secrets``, ``owners``) and its ``_track``,
``finish``, ``_arm_escalation``, ``_forget_pidfd`` and ``_in_background``, and
``jobjoker.jobcontrol``'s ``_arm_deadline`` and ``adopt_run_state``. ``adopt_jobs()`` asks
every connected supervisor what it runs and goes through this node's running (active or paused)
jobs: running ones are watched again (through the supervisor that runs them, their stop
deadline and time limit re-armed, a limit already past firing at once, and their status set
from whether their process is stopped: paused, or active), jobs
that ended meanwhile are finished from their exit record (or the exit a supervisor could not
write), orphans of a dead supervisor are watched through a pidfd once their start time proves
them, vanished ones end ``error``. The pids a server did not live to store are stored then.

A live process is adopted only once it is proven to write *this* data dir's log spool of the job
(the same device and inode, ``spool_identity``): as its supervisor tells (protocol 5 says which
spool it gave each job) or else as ``/proc/PID/fd`` shows. A pid and start time prove the
process is the one the database recorded, not that the database is this process's only one: a
copy of the data dir (a restored backup, on the same machine and node name) holds the same pids
while the original's jobs run on, writing into the original's files. A job not proven so is
*disowned*: never signalled, not watched, and ended ``error`` here with why; its process runs
on, for the data dir it writes to. ``has_exited(pidfd)`` tells whether a pidfd's process has
exited.
"""
import asyncio
import logging
import os
import select
import time

from tornado.ioloop import IOLoop

from jobjoker import jobdir, jobstore, proc
from jobjoker.errors import NotFound, Unavailable
from jobjoker.secretbox import SecretsUnreadable

log = logging.getLogger(__name__)


class Adoption:
    """The ``ProcessManager``'s methods that find its jobs again."""

    def _on_supervisor_gone(self):
        """An older supervisor has gone: whatever jobs it left (it died) are adopted."""
        async def adopt():
            try:
                await self.adopt_jobs()
            except Exception:
                log.exception("adopting the jobs of a supervisor that has gone failed")
        self._in_background(adopt())

    async def _statuses(self):
        """``(alive, exited)`` over every supervisor: each running job's record with the
        client of its supervisor, and the exits they could not write to the jobs' folders
        (their disk was full). The current supervisor must answer; an older one that does
        not counts as gone (its jobs are then adopted as orphans)."""
        alive, exited = {}, {}
        for client in self.supervisors.connected():
            try:
                status = await client.request("status")
            except Unavailable:
                if client is self.supervisor:
                    raise
                continue
            alive.update((r["job_id"], (r, client)) for r in status["running"])
            exited.update((r.get("job_id"), r) for r in status.get("exited") or ())
        return alive, exited

    async def adopt_jobs(self):
        """Watch this node's running jobs again; finish those that ended meanwhile."""
        alive, exited = await self._statuses()
        ended, unrecorded, states = [], {}, []
        for job in await self.storage.read(jobstore.active_on_node, self.config.node):
            running = self.running.get(job.id)
            if running is not None and (not running.launched.done() or running.pidfd is not None
                                        or running.disowned):
                continue  # being launched right now, an orphan watched already, or disowned
            if running is None:
                running = self._track(job, self._secrets_of_adopted(job))
                running.launched.set_result(True)
            self.ingester.mark_dirty(job.id)
            if job.id in alive:
                record, supervisor = alive[job.id]
                why = self._unproven(running, record["pid"], record.get("log_spool"))
                if why is not None:
                    ended.append(self.finish(job.id, self._disown(job.id, running,
                                                                  record["pid"], why)))
                    continue
                running.supervisor = supervisor
                self._arm_escalation(running, job.stop_deadline)
                self._arm_deadline(running, job.deadline)
                # A supervisor before protocol 6 does not say whether it is stopped: /proc does.
                stopped = record["stopped"] is not None if "stopped" in record else None
                states.append(self.adopt_run_state(job, running, record["pid"], stopped))
                log.info("job %s: adopted running pid %s", job.id, record["pid"])
                self.usage.watch(job.id, record["pid"], resume=True)
                if job.pid is None:  # started, but the server died before it stored the pid
                    unrecorded[job.id] = record
                continue
            record = (jobdir.read_record(running.job_dir, jobdir.EXIT_RECORD, self.owners)
                      or exited.get(job.id))
            if record is not None and job.pid is None and record.get("pid"):
                unrecorded[job.id] = {"pid": record["pid"], "start_time": None}
            if record is None and self._adopt_orphan(job, running):
                states.append(self.adopt_run_state(job, running, job.pid))
            elif record is None:
                record = running.disowned or {
                    "returncode": None, "signal": None,
                    "lost": "its process was lost while the server was away (pid %s is gone; "
                            "its exit status is unknown)" % job.pid}
            if record is not None:
                ended.append(self.finish(job.id, record))
        if unrecorded:
            await self._record_pids(unrecorded)
        # The jobs that ended meanwhile are final before the server says it is ready, and the
        # paused ones are shown paused.
        await asyncio.gather(*ended)
        await asyncio.gather(*states)

    def _secrets_of_adopted(self, job):
        """The secret values of a job found running, to mask its children's raw output; none
        when no key opens them (the job already has its values, and its own entries are masked
        by its runner: ending it would lose its work for the server's mistake)."""
        try:
            return self.secrets.open(job.secret_parameters, job.id)
        except SecretsUnreadable as e:
            log.error("job %s: %s; the raw output of its child processes is stored unmasked",
                      job.id, e.message)
            return {}

    async def _record_pids(self, learned):
        """Store the pids of jobs whose start the server did not live to record (learned from
        the supervisor: ``{job id: {"pid", "start_time"}}``), each as their start event."""
        def record(tx):
            for job_id, found in learned.items():
                try:
                    jobstore.update(tx, job_id, action="status", pid=found["pid"],
                                    pid_start_time=found.get("start_time"))
                except NotFound:
                    continue
                log.warning("job %s: its pid %s was not stored before the server stopped; "
                            "learned it from the supervisor", job_id, found["pid"])
        try:
            await self.storage.transaction(record)
        except Exception:
            log.exception("storing the pids learned from the supervisor failed")

    def spool_identity(self, running):
        """``(st_dev, st_ino)`` of the job's log spool in this data dir (opened the safe way),
        or None when there is none."""
        try:
            fd = jobdir.open_safely(running.job_dir, jobdir.LOG_SPOOL, os.O_RDONLY, self.owners)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
        return info.st_dev, info.st_ino

    def _unproven(self, running, pid, told=None):
        """None when process ``pid`` writes this data dir's log spool of the job (``told``: the
        spool its supervisor gave it, ``[st_dev, st_ino]``; else its open files in /proc), else
        why it is not taken for this data dir's job."""
        ours = self.spool_identity(running)
        if ours is None:
            return "this data dir holds no log spool of it"
        holds = list(told) == list(ours) if told is not None else proc.holds_file(pid, ours)
        if holds:
            return None
        if holds is None:
            return ("the server may not look into /proc/%d/fd to prove that it writes this data "
                    "dir's log spool" % pid)
        return ("it writes the log spool of another data dir, not this one's (this data dir was "
                "copied or restored while the job ran)")

    @staticmethod
    def _disown(job_id, running, pid, why):
        """Mark a job whose live process is not proven to be this data dir's: it is neither
        watched nor signalled (see the module's docstring). Returns the exit record it ends
        with here."""
        running.disowned = {
            "returncode": None, "signal": None,
            "lost": "not adopted: its process (pid %s) still runs, but %s; it was left running "
                    "and never signalled, and what it writes is not stored here" % (pid, why)}
        log.warning("job %s: %s", job_id, running.disowned["lost"])
        return running.disowned

    def _adopt_orphan(self, job, running):
        """Watch a job whose supervisor died but whose process lives on (pidfd, identity
        checked); True if it is watched. One that is not this data dir's is disowned (its
        ``disowned`` then says how it ends here)."""
        if not job.pid or not job.pid_start_time or not hasattr(os, "pidfd_open"):
            return False
        try:
            pidfd = os.pidfd_open(job.pid)
        except OSError:
            return False
        # The pid might be reused by now: the start time proves it is still the job's process.
        # One that has exited already (a zombie nobody reaped yet) ended while nobody watched:
        # it is not watched, so that its end is not taken to be now.
        if proc.start_time(job.pid) != job.pid_start_time or has_exited(pidfd):
            os.close(pidfd)
            return False
        why = self._unproven(running, job.pid)
        if why is not None:
            os.close(pidfd)
            self._disown(job.id, running, job.pid, why)
            return False
        running.pidfd, running.pid = pidfd, job.pid
        IOLoop.current().add_handler(pidfd, lambda fd, events: self._orphan_exited(job.id),
                                     IOLoop.READ)
        self._arm_escalation(running, job.stop_deadline)
        self.usage.watch(job.id, job.pid, resume=True)
        self._arm_deadline(running, job.deadline)
        log.warning("job %s: adopted orphan pid %s without its supervisor", job.id, job.pid)
        return True

    def _orphan_exited(self, job_id):
        running = self.running.get(job_id)
        if running is None:
            return
        self._forget_pidfd(running)
        # The pidfd reports the exit as it happens: now is when it ended.
        self._in_background(self.finish(job_id, jobdir.read_record(
            running.job_dir, jobdir.EXIT_RECORD, self.owners) or {
                "returncode": None, "signal": None, "time": time.time(),
                "lost": "its exit status is unknown: the supervisor that started it was gone"}))


def has_exited(pidfd):
    """Whether the process of ``pidfd`` has exited (reaped or not)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))
