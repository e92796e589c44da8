"""The supervisor: a lean fork server that is the parent of every job process.

Contract: started by the server (``python -m jobjoker.supervisor --socket PATH --data-dir DIR
--log FILE --daemon``, its stdout and stderr appending to FILE), it detaches, listens on a Unix socket (mode 0600) and speaks newline-delimited JSON:

  -> {"id": N, "op": "ping"}
  <- {"id": N, "ok": true, "pid": PID, "protocol": PROTOCOL, "ops": [the ops it knows],
      "code_hash": HEX, "draining": bool}
  -> {"id": N, "op": "start", "spec": {job_id, worker, worker_file, params, job_dir, cwd}}
  <- {"id": N, "ok": true, "pid": PID, "start_time": TICKS}
  -> {"id": N, "op": "start_many", "specs": [spec, ...]}
  <- {"id": N, "ok": true, "started": [{"pid", "start_time"} or {"error"}, ... one per spec]}
  -> {"id": N, "op": "signal", "job_id": J, "signal": 15}       (to the job's process group;
                                  SIGSTOP: to its leader, then to the group once it stopped)
  -> {"id": N, "op": "status"}
  <- {"id": N, "ok": true, "running": [{job_id, pid, start_time, log_spool, stopped}],
      "exited": [exit record]}          (log_spool: [st_dev, st_ino] of the spool it was given;
                                         stopped: the signal that stopped it, or null)
  -> {"id": N, "op": "shutdown", "kill_jobs": bool}
  -> {"id": N, "op": "drain", "drain": bool}   (exit once the last job has ended; or not)
  -> {"id": N, "op": "reopen_log"}             (open FILE anew: logrotate renamed it; SIGHUP too)
  <- {"event": "exit", "job_id": J, "pid": P, "returncode": C|null, "signal": S|null,
      "time": T, "cpu_seconds": F, "max_rss_bytes": B}                        (pushed)
  <- {"event": "stopped", "job_id": J, "pid": P, "signal": S}    (pushed: SIGSTOP, ^Z, ...)
  <- {"event": "continued", "job_id": J, "pid": P}               (pushed: SIGCONT)

A job's main process is reaped with ``WUNTRACED | WCONTINUED`` (``waitid``'s ``WSTOPPED |
WCONTINUED``): whoever stops or continues it (a pause, or ``kill -STOP`` from a shell), the
connected servers are told, as the kernel told its parent; the last state is kept for
``status``. Its exit is reaped with ``wait4``, so the record tells the CPU time (user and
system) and the peak resident size of the process and the descendants it waited for.

A start forks this small, preloaded process (about a fork's cost, not an interpreter's); the child
becomes the job's process (``jobjoker.jobprocess``: a session and process group of its own,
/dev/null as stdin, its ``log.spool`` as stdout and stderr, no descriptor but those of the files it
writes, made here before the fork and given to the ``--run-as`` user if any, the folder staying
ours: see ``jobjoker.jobdir``; the environment of ``jobjoker.jobenv``, whose base is our own, so
nothing else of ours reaches it; the process title ``jobjoker job <id> <worker>``) and runs
``jobjoker.runner.run_job``, which loads the worker's file afresh (nothing of a worker is kept here
between jobs). The reply comes once the child has called
``setsid()``, so its pid already names its process group; ``start_many`` forks all its jobs before
it waits for them. The objects preloaded here are frozen out of the garbage collector
(``gc.freeze``), so a child's collections never touch, and so never copy, the memory it shares with
this process; that keeps a sleeping job's own memory near 2 MB. Because the supervisor, not the
server, is the parent, jobs keep running when the server stops or dies, and the pid it signals
cannot have been reused (it reaps its own children). When a job's main process exits, the rest of
its process group is SIGKILLed, the exit is written to ``exit.json`` in the job's directory (so a
server that was away learns it later) and then pushed to connected servers. It is a child subreaper,
so orphaned grandchildren are reaped here and never linger as zombies. It exits on its own once it
has no job and no server for a few seconds, and once its last job has ended after a ``drain``:
the server drains a supervisor that runs other code than a new one would (``code_hash``, see
``jobjoker.codehash``; ``jobjoker.supervisors``). Its own process title is ``jobjoker supervisor
<data dir> on <socket>`` (`` (draining)`` added while it drains). Standard library only, plus
``setproctitle`` and the lean runner it preloads.

SIGHUP (or ``reopen_log``, which the server sends every supervisor on its own SIGHUP) opens its
log anew by name, after logrotate renamed it; SIGTERM ends it (its jobs are left to init).

No I/O error stops it (a full disk above all, which is also where its own log is): every failure
in its loop is reported to its log if the log takes it and the loop goes on. An exit record the
disk refuses is kept in memory, written again every second until it is, and told in every
``status`` reply (``exited``) meanwhile, so a server that was away still learns how the job
ended.
"""
import argparse
import ctypes
import gc
import json
import os
import pwd
import selectors
import signal
import socket
import subprocess  # noqa: F401 -- preloaded: workers commonly run commands
import sys
import time
import traceback

import setproctitle

from jobjoker import codehash, jobdir, jobenv, jobprocess, proc

# What this supervisor and the runner preloaded in it can do, told in every ping: a server meets
# the supervisor of an older version after each upgrade (it outlives the server while it has
# jobs). 1: ping, start, signal, status, shutdown (and from a later release start_many, listed in
# "ops"); 2: the version is told, and runners leave jobdir.RUN_END (not "result.json"); 3: a
# job's folder stays ours (never the --run-as user's), the job gets descriptors of the files it
# writes (jobdir.open_job_files) and none of its folder; 4: the ping tells the code hash and
# whether it drains, "drain" is known, it listens on a socket named after its code hash
# (supervisor_client.socket_path_for), jobs start with jobjoker.jobenv's environment and a title;
# 5: "status" tells each job's log spool by device and inode (so a server proves a job writes its
# own data dir's spool, not a copy's: jobjoker.adoption), "reopen_log" and SIGHUP reopen its log.
# 6: a job's main process stopped or continued by any signal is pushed ("stopped", "continued")
# and "status" tells each running job's "stopped" signal (or null); exit records tell
# "cpu_seconds" and "max_rss_bytes"; a SIGSTOP stops the leader, then its group once it stopped.
# The spec sent is the same in all six.
PROTOCOL = 6
IDLE_EXIT_SECONDS = 3.0
MAX_UNSETTLED = 64  # new jobs whose setsid() a start has not yet seen, each holding a pipe
PR_SET_CHILD_SUBREAPER = 36
MAX_UNWRITTEN = 10000  # exit records kept in memory while the disk refuses them
RETRY_SECONDS = 1.0  # between attempts to write them


class Supervisor:
    """Forks, signals and reaps job processes on behalf of the server(s) connected to it."""

    def __init__(self, socket_path, data_dir=None, log_path=None):
        self.socket_path = socket_path
        self.data_dir = data_dir
        self.log_path = log_path  # our stdout and stderr, reopened on SIGHUP (None: not ours)
        self.reopen_requested = False
        self.code_hash = codehash.code_hash()  # of the files just imported
        self.user = pwd.getpwuid(os.getuid())  # whose HOME a job gets without --run-as
        self.draining = False
        self.selector = selectors.DefaultSelector()
        self.listener = None
        self.clients = {}  # socket -> bytearray of unparsed input
        # pid -> {"job_id", "pid", "start_time", "job_dir", "log_spool", "stopped"}
        self.jobs = {}
        self.unsettled = []  # read ends of the pipes new children announce setsid() on
        self.pids = {}  # job_id -> pid
        self.wake_r = self.wake_w = None
        self.unwritten = {}  # job_dir -> exit record the disk refused (written again later)
        self.last_retry = 0.0
        self.running = True
        self.shutting_down = False
        self.idle_since = time.monotonic()

    # --- the loop -------------------------------------------------------------------------

    def serve(self):
        self._set_subreaper()
        self._set_title()
        # Every job starts from this, so a fork inherits it: a start only adds the job's own.
        base = jobenv.base_environment(os.environ, self.user)
        os.environ.clear()
        os.environ.update(base)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)  # the server only starts us when nobody answers there
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self.listener.bind(self.socket_path)
        finally:
            os.umask(old_umask)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)

        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
        signal.signal(signal.SIGTERM, self._request_exit)
        signal.signal(signal.SIGHUP, self._request_reopen)  # logrotate's; its default kills
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C in the server's terminal is not for us
        self.selector.register(self.wake_r, selectors.EVENT_READ, self._on_signal)

        # Everything loaded so far lives as long as we do: keep it out of every collection, ours
        # and (above all) the children's, whose collections would otherwise write to every
        # object's header and so copy the pages they share with us.
        gc.collect()
        gc.freeze()
        while self.running:
            try:
                ready = self.selector.select(timeout=0.1 if self.shutting_down else 1.0)
            except OSError:
                ready = []
                report("waiting for events failed")
            for key, _ in ready:
                try:
                    key.data(key.fileobj)
                except Exception:
                    report("handling %r failed" % (key.fileobj,))
            try:
                self._reap()
                self._write_unwritten()
            except Exception:
                report("reaping failed")
            if self.reopen_requested:
                self.reopen_requested = False
                self._reopen_log("SIGHUP")
            if self._idle_too_long() or (self.shutting_down and not self.jobs) or (
                    self.draining and not self.jobs and not self.unwritten):
                break
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass

    def _set_title(self):
        """``ps`` and ``top`` tell which data dir we serve, and whether we drain."""
        where = "%s on %s" % (self.data_dir, self.socket_path) if self.data_dir \
            else self.socket_path
        setproctitle.setproctitle("jobjoker supervisor %s%s" % (
            where, " (draining)" if self.draining else ""))
        setproctitle.setthreadtitle("jj supervisor")  # the 15 characters top shows

    def _request_exit(self, *_):
        self.running = False

    def _request_reopen(self, *_):
        self.reopen_requested = True  # the wakeup fd wakes the loop, which reopens

    def _reopen_log(self, why):
        """Send our stdout and stderr to a freshly opened ``log_path`` (logrotate renamed the
        old one), saying so in the new file; on failure keep writing to the old one."""
        if not self.log_path:
            return False
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except OSError as e:
            report("cannot reopen the log %s (%s); writing on to the old one"
                   % (self.log_path, e), trace=False)
            return False
        _flush_output()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        report("reopened the log %s (%s)" % (self.log_path, why), trace=False)
        return True

    def _idle_too_long(self):
        if self.clients or self.jobs or self.unwritten:
            self.idle_since = time.monotonic()
            return False
        return time.monotonic() - self.idle_since > IDLE_EXIT_SECONDS

    def _set_subreaper(self):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # not Linux: orphans go to init, which reaps them too

    def _on_signal(self, fd):
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass

    # --- clients ----------------------------------------------------------------------------

    def _accept(self, listener):
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        conn.settimeout(10.0)  # a server that stops reading must not stall every job's exit
        self.clients[conn] = bytearray()
        self.selector.register(conn, selectors.EVENT_READ, self._read)

    def _drop(self, conn):
        self.selector.unregister(conn)
        self.clients.pop(conn, None)
        conn.close()

    def _read(self, conn):
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buffer = self.clients[conn]
        if b"\n" not in data:
            buffer += data
            return
        # Whole lines are handled at once; only the tail of an unfinished line stays buffered
        # (pipelined requests must not be copied once per line).
        data = bytes(buffer) + data
        del buffer[:]
        *lines, rest = data.split(b"\n")
        buffer += rest
        for line in lines:
            self._handle(conn, line)
            if conn not in self.clients:
                return

    def _send(self, conn, message):
        try:
            conn.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            self._drop(conn)

    def _broadcast(self, message):
        for conn in list(self.clients):
            self._send(conn, message)

    def _handle(self, conn, line):
        request = {}
        try:
            request = json.loads(line)
            op = request.get("op")
            handler = getattr(self, "op_" + str(op), None)
            if handler is None:
                raise ValueError("unknown op %r" % op)
            reply = handler(request)
            reply.update(ok=True)
        except Exception as e:
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        reply["id"] = request.get("id") if isinstance(request, dict) else None
        self._send(conn, reply)

    # --- operations ---------------------------------------------------------------------------

    def op_ping(self, request):
        return {"pid": os.getpid(), "protocol": PROTOCOL,
                "ops": sorted(name[3:] for name in dir(self) if name.startswith("op_")),
                "code_hash": self.code_hash, "draining": self.draining}

    def op_drain(self, request):
        # Drained, we exit once no job runs (and every exit record is written); jobs that
        # still run keep their parent, the only process that can reap them. Starts are still
        # served: the server sends them elsewhere, and a downgrade may want us back (drain
        # false).
        self.draining = bool(request.get("drain", True))
        self._set_title()
        return {"draining": self.draining}

    def op_status(self, request):
        return {"pid": os.getpid(), "running": [
            {"job_id": j["job_id"], "pid": pid, "start_time": j["start_time"],
             "log_spool": j["log_spool"], "stopped": j.get("stopped")}
            for pid, j in self.jobs.items()], "exited": list(self.unwritten.values())}

    def op_reopen_log(self, request):
        return {"reopened": self._reopen_log("asked by the server")}

    def op_signal(self, request):
        pid = self.pids.get(request["job_id"])
        if pid is None:
            raise LookupError("job %s is not running here" % request["job_id"])
        signum = int(request["signal"])
        job = self.jobs.get(pid, {})
        try:
            if signum == signal.SIGSTOP and job.get("stopped") is None:
                # The leader first, the rest of its group once it has stopped (_reap): a leader
                # waiting for a child it vfork()ed (subprocess does) cannot stop before that
                # child has exec'd, so stopping both at once would freeze the pair with the
                # leader never stopped (and so never told).
                job["stop_group"] = True
                os.kill(pid, signum)
            else:
                job.pop("stop_group", None)
                os.killpg(pid, signum)
            if signum == signal.SIGTERM:
                os.killpg(pid, signal.SIGCONT)  # a stopped (^Z) job must wake to see SIGTERM
        except ProcessLookupError:
            pass  # it is exiting; the exit event follows
        return {"pid": pid}

    def op_shutdown(self, request):
        # With kill_jobs the loop goes on until every killed job is reaped and its exit
        # recorded; without, jobs that still run are left to init.
        if request.get("kill_jobs"):
            for pid in list(self.jobs):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.shutting_down = True
        return {}

    def op_start(self, request):
        [started] = self._start_jobs([request["spec"]])
        if "error" in started:
            raise started["exception"]
        return started

    def op_start_many(self, request):
        started = self._start_jobs(request["specs"])
        for result in started:
            result.pop("exception", None)
        return {"started": started}

    def _start_jobs(self, specs):
        """Fork a job per spec; one result each: ``{"pid", "start_time"}`` or ``{"error"}``.

        The reply waits until every new leader has called setsid(), so its pid names its
        process group by then and a stop sent right after the start reaches the whole job. All
        are forked first and waited for after (each child signs on its own, on another core),
        so a batch does not pay a switch to each child in turn.
        """
        started = []
        for spec in specs:
            try:
                started.append(self._fork_job(spec))
            except Exception as e:  # this job could not start; the others still may
                started.append({"error": "%s: %s" % (type(e).__name__, e), "exception": e})
            # Each unsettled child holds a pipe: keep their number bounded.
            while len(self.unsettled) > MAX_UNSETTLED:
                self._await_setsid(self.unsettled.pop(0))
        while self.unsettled:
            self._await_setsid(self.unsettled.pop(0))
        return started

    @staticmethod
    def _await_setsid(ready):
        """Block until the child says it called setsid() (a byte) or died (end of file)."""
        try:
            os.read(ready, 1)
        finally:
            os.close(ready)

    def _fork_job(self, spec):
        if spec["job_id"] in self.pids:
            raise RuntimeError("job %s is already running" % spec["job_id"])
        jobdir.create(spec["job_dir"])
        fds = jobdir.open_job_files(spec["job_dir"])
        opened = list(fds.values())
        try:
            null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            opened.append(null_fd)
            _flush_output()
            ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
            opened += [ready_r, ready_w]
            pid = os.fork()
        except OSError:  # out of processes or descriptors: this job fails, we go on
            for fd in opened:
                os.close(fd)
            raise
        if pid == 0:
            os.close(ready_r)
            self._become_job(spec, null_fd, fds, ready_w)  # never returns
        os.close(ready_w)
        spool = os.fstat(fds["log"])
        for fd in [*fds.values(), null_fd]:
            os.close(fd)
        self.unsettled.append(ready_r)
        start_time = proc.start_time(pid)
        self.jobs[pid] = {"job_id": spec["job_id"], "pid": pid, "start_time": start_time,
                          "job_dir": spec["job_dir"],
                          "log_spool": [spool.st_dev, spool.st_ino], "stopped": None}
        self.pids[spec["job_id"]] = pid
        return {"pid": pid, "start_time": start_time}

    def _become_job(self, spec, null_fd, fds, ready_w):
        """The child: ``jobprocess.become_job`` once it has let go of what is ours."""
        jobprocess.become_job(spec, null_fd, fds, ready_w, self._let_go)

    def _let_go(self):
        """In a new job: close every descriptor of ours by its object (the job closes the rest
        by number), and give back the signals we handle."""
        for ready in self.unsettled:  # other new jobs' pipes are not this one's
            os.close(ready)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        self.selector.close()
        self.listener.close()
        for conn in self.clients:
            conn.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    # --- reaping ------------------------------------------------------------------------------

    def _reap(self):
        while True:
            try:
                # Peek without reaping, so the exited leader's pid still names its group while
                # the rest of the group is killed: no chance of hitting a reused pid.
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WSTOPPED | os.WCONTINUED
                                 | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            if info.si_code in (os.CLD_STOPPED, os.CLD_CONTINUED, os.CLD_TRAPPED):
                self._stopped_or_continued(pid)
                continue
            job = self.jobs.pop(pid, None)
            if job is not None:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            _, status, usage = os.wait4(pid, 0)
            if job is not None:
                self._record_exit(job, status, usage)

    def _stopped_or_continued(self, pid):
        """Take a child's stop or continuation (so the next peek sees past it) and tell the
        servers of a job's main process: its state now, which is the last one if it changed
        twice since (a stop and a continuation in between are one continuation)."""
        try:
            info = os.waitid(os.P_PID, pid, os.WSTOPPED | os.WCONTINUED | os.WNOHANG)
        except ChildProcessError:
            return
        job = self.jobs.get(pid)
        if info is None or job is None:
            return  # it moved on meanwhile (the next peek tells), or not a job's main process
        if info.si_code == os.CLD_CONTINUED:
            job["stopped"] = None
            self._broadcast({"event": "continued", "job_id": job["job_id"], "pid": pid})
        elif info.si_code in (os.CLD_STOPPED, os.CLD_TRAPPED):
            job["stopped"] = info.si_status
            if job.pop("stop_group", False):  # a pause: now the rest of its group (op_signal)
                try:
                    os.killpg(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            self._broadcast({"event": "stopped", "job_id": job["job_id"], "pid": pid,
                             "signal": info.si_status})

    def _record_exit(self, job, status, usage=None):
        self.pids.pop(job["job_id"], None)
        record = {"event": "exit", "job_id": job["job_id"], "pid": job["pid"],
                  "returncode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                  "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  "time": time.time()}
        if usage is not None:  # of the process and the descendants it waited for
            record["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 6)
            record["max_rss_bytes"] = int(usage.ru_maxrss) * 1024  # Linux counts KiB
        try:
            jobdir.write_record(job["job_dir"], jobdir.EXIT_RECORD, record)
        except OSError as e:  # the event below still tells a connected server; status too
            report("job %s: writing its exit record failed (%s); kept until it can be"
                   % (job["job_id"], e), trace=False)
            if len(self.unwritten) < MAX_UNWRITTEN:
                self.unwritten[job["job_dir"]] = record
        self._broadcast(record)

    def _write_unwritten(self):
        """Write the exit records a full disk refused, once a second."""
        if not self.unwritten or time.monotonic() - self.last_retry < RETRY_SECONDS:
            return
        self.last_retry = time.monotonic()
        for job_dir, record in list(self.unwritten.items()):
            try:
                jobdir.write_record(job_dir, jobdir.EXIT_RECORD, record)
            except FileNotFoundError:
                pass  # the server recorded the end and removed the folder: nobody needs it
            except OSError:
                continue
            del self.unwritten[job_dir]


def report(what, trace=True):
    """Tell the supervisor's log (its stderr) about a failure. Unbuffered and never raising:
    the log is on a disk that may be full, and that is no reason to stop serving jobs."""
    text = "%s jobjoker.supervisor: %s\n%s" % (
        time.strftime("%Y-%m-%d %H:%M:%S"), what, traceback.format_exc() if trace else "")
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


def _flush_output():
    """Flush our buffered output before a fork (a child must not write it again); a full disk
    refusing it loses it, nothing more."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def daemonize():
    """Detach from the starting server: a second fork, so init (not the server) adopts us."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)


def forget_import_path():
    """Take PYTHONPATH out of the environment and its folders off ``sys.path``.

    A server run from a checkout sets it so that this process can import jobjoker at all
    (``supervisor_client.supervisor_environment``). Jobs need no more: they are forked with the
    package already imported, and find the rest of it through ``jobjoker.__path__``. Left in, the
    checkout's root would let every job import its ``tests``, ``bench`` or ``setup``.
    """
    given = {os.path.abspath(entry)
             for entry in os.environ.pop("PYTHONPATH", "").split(os.pathsep) if entry}
    sys.path[:] = [entry for entry in sys.path
                   if not entry or os.path.abspath(entry) not in given]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="jobjoker.supervisor", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--daemon", action="store_true", help="detach from the parent")
    parser.add_argument("--data-dir", help="the data dir served (for the process title)")
    parser.add_argument("--log", help="the file our stdout and stderr append to, reopened by "
                                      "name on SIGHUP")
    args = parser.parse_args(argv)
    forget_import_path()
    if args.daemon:
        daemonize()
    Supervisor(args.socket, args.data_dir, args.log and os.path.abspath(args.log)).serve()


if __name__ == "__main__":
    main()
