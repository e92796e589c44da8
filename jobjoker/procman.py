"""The process manager: starts, stops, kills and watches job processes from the IOLoop.

Contract: one ``ProcessManager`` per server owns a ``RunningJob`` record for every active job of
this node. ``launch(job)`` asks the supervisor to fork it (the job is already ``active``: the
caller won the idle -> active transition); ``stop(job_id)`` records the intent durably (a
deadline in the job row), sends SIGTERM to the job's process group and escalates to SIGKILL when
the deadline passes, even across a server restart; ``kill(job_id)`` sends SIGKILL at once. Log,
output and response spool files are ingested into the log store as they grow (inotify, no
polling), resuming from offsets committed with the entries. A job becomes final only after the
supervisor reaped its process *and* its spools were drained: then the closing log entry is
written and its status set through ``Lifecycle.transition``. On start, and whenever the
supervisor connection is re-established, active jobs are re-adopted: running ones are watched
again, ended ones finalized from their exit record, vanished ones marked ``error``.
"""
import asyncio
import ctypes
import errno
import json
import logging
import os
import select
import shutil
import signal
import time

from tornado.ioloop import IOLoop, PeriodicCallback

from jobjoker import models, spool
from jobjoker import parameters as params
from jobjoker.errors import InvalidTransition, NotFound, Unavailable
from jobjoker.inotify import Inotify
from jobjoker.lifecycle import get_job
from jobjoker.runner import EXIT_DONE
from jobjoker.states import JobStatus
from jobjoker.supervisor import process_start_time
from jobjoker.supervisor_client import SupervisorClient

log = logging.getLogger(__name__)

def _parse_response_spool(data, final):
    block = spool.complete_part(data)
    if final and len(block) < len(data):  # torn by a SIGKILL mid-write: keep what is there
        return len(data), data + b"\n"
    return len(block), block


# (stream, spool file, Job offset field, parser of the file's bytes -> (consumed, block))
SPOOLS = (
    ("log", "log.spool", "log_offset", lambda data, final: spool.parse_log_spool(data, final)),
    ("response", "response.spool", "response_offset", _parse_response_spool),
)
READ_BYTES = 4 * 1024 * 1024  # per spool per pass, so one chatty job cannot hog the loop
PUNCH_BYTES = 1024 * 1024  # free the disk blocks of stored spool bytes in steps this large
INGEST_GAP = 0.02  # seconds between a job's ingestion passes while its entries keep coming
# A pass over the dirty jobs runs in slices of about this many seconds, so a request or a
# stream waits for one slice, not for a whole pass over hundreds of busy jobs.
INGEST_SLICE = 0.01
QUICK_PASSES = 3  # a job's first passes are not held back: its first lines show at once
RETRY_DELAY = 1.0  # seconds before storing again after the database refused (full, locked)

_libc = ctypes.CDLL(None, use_errno=True)
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2


def punch_hole(path, start, end):
    """Give the disk blocks of bytes ``start`` .. ``end`` of ``path`` back to the file system,
    keeping the file's size and offsets (its spool readers' offsets stay true). Best effort:
    False where the file system cannot (the bytes then stay until the job's directory goes)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return _libc.fallocate(fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE,
                               ctypes.c_longlong(start), ctypes.c_longlong(end - start)) == 0
    finally:
        os.close(fd)


JOB_FILES = ("log.spool", "response.spool", "result.json", "result.json.tmp", "exit.json")


def remove_job_dir(path):
    """Remove an ended job's folder: its known files, then the folder (``rmtree`` only if the
    job left something else there). On the path of every job's end: ``rmtree`` alone costs
    a directory scan and a stat per file."""
    for name in JOB_FILES:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
        except OSError:
            break
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def is_disk_full(error):
    """Whether a database or file error says the disk (or a quota) is full."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    return "disk is full" in text or "no space left" in text or "disk full" in text \
        or "table is full" in text or "quota" in text


def signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "signal %d" % signum


class RunningJob:
    """What the manager knows of one active job of this node."""

    def __init__(self, job_id, job_dir, offsets):
        self.job_id = job_id
        self.job_dir = job_dir
        self.offsets = offsets  # Job offset field -> bytes already stored
        self.read_size = READ_BYTES
        self.watch = None
        self.escalation = None
        self.launched = asyncio.get_running_loop().create_future()
        self.mask = []  # secret parameter values, masked in whatever the job's output holds
        self.pidfd = None  # only for an orphan adopted without the supervisor
        self.pid = None
        self.punched = dict(offsets)  # Job offset field -> spool bytes given back to the disk
        self.exit_record = None  # set once its process has ended: finishing is under way
        self.last_ingest = 0.0  # time.monotonic() of its last pass that stored entries
        self.passes = 0  # passes that stored entries (the first QUICK_PASSES never wait)


class ProcessManager:
    """Owns the processes of this node's active jobs."""

    def __init__(self, config, lifecycle, logstore):
        self.config = config
        self.lifecycle = lifecycle
        self.logstore = logstore
        self.jobs_dir = os.fspath(config.jobs_dir)
        self.running = {}
        self.supervisor = SupervisorClient(config.run_dir, self._on_supervisor_event,
                                           self.adopt_jobs)
        self._inotify = None
        self._watches = {}  # inotify watch descriptor -> job id
        self._poller = None
        self._dirty = set()
        self._pass = []  # the jobs the current ingestion pass has yet to visit
        self._ingest_scheduled = False
        self.disk_full = None  # (since, what failed) while storing fails for want of space
        self._deferred = set()  # dirty jobs ingested less than INGEST_GAP ago
        self._deferred_timer = None

    # --- lifecycle of the manager -------------------------------------------------------------

    async def start(self):
        """Connect to (or start) the supervisor and re-adopt this node's active jobs."""
        os.makedirs(self.jobs_dir, mode=0o700, exist_ok=True)
        try:
            self._inotify = Inotify()
            IOLoop.current().add_handler(self._inotify.fileno(), self._on_inotify, IOLoop.READ)
        except OSError as e:
            log.warning("inotify unavailable (%s): polling spool files every 100 ms", e)
            self._poller = PeriodicCallback(self._poll_all, 100)
            self._poller.start()
        await self.supervisor.connect()
        await self.adopt_jobs()

    async def close(self, kill_jobs=False):
        """Let go of the jobs (they keep running) or, with ``kill_jobs``, end them all."""
        for running in self.running.values():
            if running.escalation is not None:
                IOLoop.current().remove_timeout(running.escalation)
        if self._deferred_timer is not None:
            IOLoop.current().remove_timeout(self._deferred_timer)
            self._deferred_timer = None
        await self.supervisor.close(shutdown=kill_jobs, kill_jobs=kill_jobs)
        if self._inotify is not None:
            IOLoop.current().remove_handler(self._inotify.fileno())
            self._inotify.close()
        if self._poller is not None:
            self._poller.stop()
        for running in self.running.values():
            if running.pidfd is not None:
                IOLoop.current().remove_handler(running.pidfd)
                os.close(running.pidfd)

    # --- starting -------------------------------------------------------------------------------

    def job_dir(self, job_id):
        return os.path.join(self.jobs_dir, job_id)

    def _track(self, job):
        running = RunningJob(job.id, self.job_dir(job.id), {
            "log_offset": job.log_offset, "response_offset": job.response_offset})
        if job.secret_parameters:
            running.mask = params.mask_values(json.loads(job.secret_parameters))
        os.makedirs(running.job_dir, mode=0o700, exist_ok=True)
        self.running[job.id] = running
        self._watch(running)
        return running

    async def launch(self, job, worker_file):
        """Fork the process of ``job`` (already ``active``); returns the job with its pid.

        When the supervisor cannot fork it, the job ends ``error`` and ``Unavailable`` is raised.
        """
        [(job, problem)] = await self.launch_many([job], {job.id: worker_file})
        if problem is not None:
            raise Unavailable("job %s could not start: %s" % (job.id, problem))
        return job

    async def launch_many(self, jobs, worker_files):
        """Fork the processes of ``jobs`` (each already ``active``; ``worker_files`` maps a job
        id to its worker's file) with one supervisor request; returns ``[(job, problem)]`` in
        order: the job with its pid and None, or, for one the supervisor could not fork, the job
        ended ``error`` and what went wrong."""
        runs = [self._track(job) for job in jobs]
        # Secrets travel to the job over the supervisor's socket, never in argv or the env.
        specs = [{"job_id": job.id, "worker": job.worker, "worker_file": worker_files[job.id],
                  "params": dict(json.loads(job.parameters), **(
                      json.loads(job.secret_parameters) if job.secret_parameters else {})),
                  "mask": running.mask, "job_dir": running.job_dir,
                  "run_as": self.config.run_as, "cwd": os.fspath(self.config.workers_dir)}
                 for job, running in zip(jobs, runs)]
        try:
            results = await self.supervisor.start_many(specs)
        except Unavailable as e:
            results = [{"error": e.message}] * len(jobs)
        started, failed = {}, {}
        for job, running, result in zip(jobs, runs, results):
            if "pid" in result:
                running.launched.set_result(True)
                log.info("job %s: started worker %s as pid %s", job.id, job.worker, result["pid"])
                started[job.id] = {"pid": result["pid"], "pid_start_time": result.get("start_time")}
                continue
            problem = failed[job.id] = result.get("error") or "the supervisor gave no reason"
            log.error("job %s: could not start its process: %s", job.id, problem)
            self.running.pop(job.id, None)
            self._unwatch(running)
            running.launched.set_result(False)
            self.logstore.append_message(job.id, "log", "FAILED to start: %s" % problem)
            self.lifecycle.transition(job.id, JobStatus.ERROR, stoptime=time.time(),
                                      error="could not start: %s" % problem)
        ended = {job.id: job for job in (get_job(job_id) for job_id in failed)}
        updated = {job.id: job for job in self.lifecycle.update_many(started)}
        return [(updated.get(job.id) or ended[job.id], failed.get(job.id)) for job in jobs]

    # --- stopping -------------------------------------------------------------------------------

    async def stop(self, job_id):
        """SIGTERM the job's group now and SIGKILL it when the grace period is over."""
        running = await self._launched(job_id)
        job = get_job(job_id)
        if job.stop_requested is None:
            now = time.time()
            job = self.lifecycle.update(job_id, stop_requested=now,
                                        stop_deadline=now + self.config.stop_grace)
        await self._signal(job_id, signal.SIGTERM)
        self._arm_escalation(running, job.stop_deadline)
        return job

    async def kill(self, job_id):
        """SIGKILL the job's whole process group at once."""
        await self._launched(job_id)
        job = get_job(job_id)
        now = time.time()
        job = self.lifecycle.update(job_id, stop_requested=job.stop_requested or now,
                                    stop_deadline=now)
        await self._signal(job_id, signal.SIGKILL)
        return job

    async def _launched(self, job_id):
        running = self.running.get(job_id)
        if running is None or not await running.launched or job_id not in self.running:
            raise InvalidTransition("job %s is not running on this server" % job_id)
        return running

    async def _signal(self, job_id, signum):
        running = self.running.get(job_id)
        if running is not None and running.pidfd is not None:
            self._signal_orphan(running, signum)
            return
        try:
            await self.supervisor.request("signal", job_id=job_id, signal=int(signum))
        except Unavailable as e:
            if "not running" not in e.message:  # it has just exited: its exit event follows
                raise

    @staticmethod
    def _signal_orphan(running, signum):
        """Signal the group of a job adopted without its supervisor.

        The pidfd was opened after proving the pid's start time, so while it does not report an
        exit, the pid is still the job's leader and so its group id is the job's group.
        """
        poller = select.poll()
        poller.register(running.pidfd, select.POLLIN)
        if poller.poll(0):
            return  # it has exited; the pidfd handler finishes the job
        pid = running.pid
        try:
            os.killpg(pid, signum)
            if signum == signal.SIGTERM:
                os.killpg(pid, signal.SIGCONT)
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

    # --- watching and ingesting -------------------------------------------------------------------

    def _watch(self, running):
        if self._inotify is None:
            return
        running.watch = self._inotify.add_watch(running.job_dir)
        self._watches[running.watch] = running.job_id

    def _unwatch(self, running):
        if running.watch is not None and self._inotify is not None:
            self._watches.pop(running.watch, None)
            try:
                self._inotify.rm_watch(running.watch)
            except OSError:
                pass
            running.watch = None

    def _on_inotify(self, fd, events):
        for watch in self._inotify.read_watches():
            job_id = self._watches.get(watch)
            if job_id is not None:
                self._dirty.add(job_id)
        self._schedule_ingest()

    def _poll_all(self):
        self._dirty.update(self.running)
        self._schedule_ingest()

    def _schedule_ingest(self):
        if (self._dirty or self._pass) and not self._ingest_scheduled:
            self._ingest_scheduled = True
            IOLoop.current().add_callback(self._ingest_dirty)

    def _ingest_dirty(self):
        """Store what the dirty jobs spooled, in slices of about INGEST_SLICE seconds.

        A job's first entries, and its entries after a quiet spell, are stored at once; while
        it keeps logging, its passes come at most every INGEST_GAP, so that each pass commits
        more than one block and each subscriber gets one message per pass, not one per block
        the job wrote (hundreds of subscribers may follow it)."""
        self._ingest_scheduled = False
        now = time.monotonic()
        if not self._pass:  # a new pass: every job dirty now, each once, none starved
            self._pass, self._dirty = list(self._dirty), set()
        deadline = now + INGEST_SLICE
        soonest = None
        while self._pass and time.monotonic() < deadline:
            job_id = self._pass.pop()
            running = self.running.get(job_id)
            if running is None:
                continue
            wait = running.last_ingest + INGEST_GAP - now
            if wait > 0 and running.passes >= QUICK_PASSES:
                self._deferred.add(job_id)
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            try:
                if self._ingest(running):
                    self._deferred.add(job_id)  # more than one pass's worth: come back soon
                    soonest = INGEST_GAP if soonest is None else min(soonest, INGEST_GAP)
            except Exception as e:
                self._storing_failed(job_id, e)
        if soonest is not None and self._deferred_timer is None:
            self._deferred_timer = IOLoop.current().call_later(soonest, self._undefer)
        self._schedule_ingest()

    def _undefer(self):
        self._deferred_timer = None
        self._dirty |= self._deferred
        self._deferred.clear()
        self._schedule_ingest()

    def _storing_failed(self, job_id, error):
        """Log it once per kind, note a full disk for ``/health``, and retry in a while: the
        entries wait in the job's spool, which nothing removes before they are stored."""
        if is_disk_full(error):
            if self.disk_full is None:
                log.error("the disk is full: job entries cannot be stored (%s); they wait in "
                          "the jobs' spool files until there is room", error)
                self.disk_full = (time.time(), str(error))
        else:
            log.exception("job %s: storing its spooled entries failed; will retry", job_id)
        IOLoop.current().call_later(RETRY_DELAY, self._retry_ingest, job_id)

    def _retry_ingest(self, job_id):
        running = self.running.get(job_id)
        if running is not None and running.exit_record is not None:
            self._finish(job_id, running.exit_record)  # its end could not be recorded yet
            return
        self._dirty.add(job_id)
        self._schedule_ingest()

    def _ingest(self, running, final=False):
        """Store what the spools hold beyond their offsets; True if more is waiting."""
        more = False
        for stream, name, field, parse in SPOOLS:
            offset = running.offsets[field]
            data = self._read_spool(os.path.join(running.job_dir, name), offset,
                                    running.read_size)
            if not data:
                continue
            at_end = len(data) < running.read_size
            consumed, block = parse(data, final and at_end)
            if not at_end:
                more = True
                if not consumed:  # one entry larger than a read: read more next time
                    running.read_size *= 2
            if block and running.mask:
                block = self._masked(block, running.mask)
            if consumed:
                if block:
                    self.logstore.append_blocks(running.job_id, stream, [block],
                                                {field: offset + consumed})
                    running.last_ingest = time.monotonic()
                    running.passes += 1
                running.offsets[field] = offset + consumed
                self.disk_full = None  # it stored: there is room again
                self._give_back(running, name, field)
        return more

    @staticmethod
    def _give_back(running, name, field):
        """Free the disk blocks of what is stored: a job logging gigabytes keeps a spool of
        only what the server has not read yet (its size on disk, not its length)."""
        stored = running.offsets[field] // 4096 * 4096
        if stored - running.punched[field] >= PUNCH_BYTES:
            punch_hole(os.path.join(running.job_dir, name), running.punched[field], stored)
            running.punched[field] = stored

    @staticmethod
    def _masked(block, mask):
        # The runner masks what the worker logs; raw output of its children only passes here.
        for secret in mask:
            block = block.replace(spool.escape(secret).encode("utf-8", "surrogateescape"),
                                  params.MASK.encode())
        return block

    @staticmethod
    def _read_spool(path, offset, size):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return b""
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    # --- endings ----------------------------------------------------------------------------------

    def _on_supervisor_event(self, event):
        if event.get("event") == "exit" and event.get("job_id") in self.running:
            self._finish(event["job_id"], event)

    def _finish(self, job_id, exit_record):
        """Drain the spools, write the closing entry and set the final status.

        When the database refuses (full disk, away), the job stays ``active`` in it and this is
        tried again a second later: its status never says it ended before its end is stored.
        """
        running = self.running[job_id]
        running.exit_record = exit_record
        self._unwatch(running)
        if running.escalation is not None:
            IOLoop.current().remove_timeout(running.escalation)
            running.escalation = None
        if running.pidfd is not None:
            IOLoop.current().remove_handler(running.pidfd)
            os.close(running.pidfd)
            running.pidfd = None
        try:
            self._record_end(running, exit_record)
        except NotFound:
            self.running.pop(job_id, None)
        except Exception as e:
            self._storing_failed(job_id, e)
        else:
            self.running.pop(job_id, None)
            remove_job_dir(running.job_dir)

    def _record_end(self, running, exit_record):
        job_id = running.job_id
        while self._ingest(running, final=True):
            pass
        job = get_job(job_id)
        status, error = self._outcome(job, exit_record, self._read_json(running, "result.json"))
        now = time.time()
        duration = now - (job.starttime or now)
        code = exit_record.get("returncode")
        signum = exit_record.get("signal")
        if signum is not None:
            how = "killed by %s" % signal_name(signum)
        elif code is not None:
            how = "exit code %s" % code
        else:
            how = "exit status unknown"
        with models.database.atomic():  # both or neither: a retry must not log it twice
            self.logstore.append_message(job_id, "log", "ENDED %s (%s) after %.3f s"
                                         % (status.value, how, duration))
            try:
                self.lifecycle.transition(job_id, status, stoptime=now, exit_code=code,
                                          exit_signal=signum, error=error, stop_deadline=None)
            except InvalidTransition:
                log.exception("job %s: could not record its end", job_id)
        log.info("job %s: ended %s (%s)", job_id, status.value, how)

    @staticmethod
    def _outcome(job, exit_record, result):
        """(final status, error message) from the exit and the runner's own account of it."""
        code, signum = exit_record.get("returncode"), exit_record.get("signal")
        if result is not None and code is None and signum is None:
            code = result.get("returncode")  # no supervisor saw the exit; the runner said it
        if job.stop_requested is not None:
            return JobStatus.STOP, None
        if signum is not None:
            return JobStatus.ERROR, "killed by %s" % signal_name(signum)
        if code is None:
            return JobStatus.ERROR, exit_record.get("lost") or "its exit status is unknown"
        told = result if result is not None and result.get("returncode") == code else {}
        if code == EXIT_DONE:
            return JobStatus.DONE, None
        if told.get("outcome") == "stopped":
            return JobStatus.STOP, "stopped by a SIGTERM from outside JobJoker"
        if told.get("error"):
            return JobStatus.ERROR, "%s (the log has the details)" % told["error"]
        return JobStatus.ERROR, "exit code %s" % code

    # --- adoption ---------------------------------------------------------------------------

    async def adopt_jobs(self):
        """Watch this node's running jobs again; finalize those that ended meanwhile."""
        status = await self.supervisor.request("status")
        alive = {r["job_id"]: r for r in status["running"]}
        active = models.Job.select().where(models.Job.status == JobStatus.ACTIVE.value,
                                           models.Job.node == self.config.node)
        for job in list(active):
            running = self.running.get(job.id)
            if running is not None and not running.launched.done():
                continue  # being launched right now
            if running is None:
                running = self._track(job)
                running.launched.set_result(True)
            self._dirty.add(job.id)
            if job.id in alive:
                self._arm_escalation(running, job.stop_deadline)
                log.info("job %s: adopted running pid %s", job.id, alive[job.id]["pid"])
                continue
            record = self._read_json(running, "exit.json")
            if record is not None:
                self._finish(job.id, record)
            elif not self._adopt_orphan(job, running):
                self._finish(job.id, {"returncode": None, "signal": None, "lost":
                                      "its process was lost while the server was away "
                                      "(pid %s is gone; its exit status is unknown)" % job.pid})
        self._schedule_ingest()

    @staticmethod
    def _read_json(running, name):
        try:
            with open(os.path.join(running.job_dir, name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _adopt_orphan(self, job, running):
        """Watch a job whose supervisor died but whose process lives on (pidfd, identity
        checked)."""
        if not job.pid or not job.pid_start_time or not hasattr(os, "pidfd_open"):
            return False
        try:
            pidfd = os.pidfd_open(job.pid)
        except OSError:
            return False
        # The pid might be reused by now: the start time proves it is still the job's process.
        if process_start_time(job.pid) != job.pid_start_time:
            os.close(pidfd)
            return False
        running.pidfd = pidfd
        running.pid = job.pid
        IOLoop.current().add_handler(pidfd, lambda fd, events: self._orphan_exited(job.id),
                                     IOLoop.READ)
        self._arm_escalation(running, job.stop_deadline)
        log.warning("job %s: adopted orphan pid %s without its supervisor", job.id, job.pid)
        return True

    def _orphan_exited(self, job_id):
        running = self.running.get(job_id)
        if running is None:
            return
        record = self._read_json(running, "exit.json") or {
            "returncode": None, "signal": None,
            "lost": "its exit status is unknown: the supervisor that started it was gone"}
        self._finish(job_id, record)
