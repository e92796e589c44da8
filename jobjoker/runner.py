"""What runs inside a job's process, between the supervisor's fork and ``os._exit``.

Contract: ``run_job(spec)`` loads the worker's *current* file, runs it, and returns the exit code
that tells the server how it ended (``jobjoker.outcome``: done, an uncaught exception with its
traceback logged, the code of a ``sys.exit(N)``, or stopped after SIGTERM asked it to); the
run-end record in the job's folder (``jobdir.RUN_END``) says the same in words (``outcome`` done,
error or stopped, the exception, and the ``time`` it ended), so the server need not guess from a
number. Log and
response entries are buffered in this process and appended in blocks to the job's log and
response spools (``jobjoker.jobdir``), so the job writes to files of its own and never depends
on the server being alive to read them. It writes them, and its run-end record, through the
descriptors the supervisor handed it (``spec["fds"]``): it cannot reach its folder otherwise.
``print()`` and ``sys.stderr`` go to the log as entries too; raw writes to fds 1 and 2 (a child
command, a C library) land in ``log.spool`` as well (the supervisor made it the job's stdout and
stderr), and buffered entries are written before any child process starts, so the log keeps the
true order.
A worker's progress and result are control records in ``log.spool`` (``control_writer``).
Imports only the standard library and our lean worker modules.
"""
import errno
import inspect
import io
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
from time import time as _time

from jobjoker import controls, jobdir, spool
from jobjoker import worker as worker_api
from jobjoker.control_writer import ControlWriter
from jobjoker.outcome import EXIT_DONE, EXIT_ERROR, EXIT_STOPPED, SYS_EXIT
from jobjoker.parameters import Masker

FLUSH_BYTES = 64 * 1024  # write a block as soon as about this much is buffered (characters)
FLUSH_DELAY = 0.005  # else at most this long after the first buffered entry
HELD_BYTES = 1024 * 1024  # held while the disk is full; entries beyond are lost (and counted)
RETRY_DELAY = 0.5  # seconds between attempts to write what a full disk refused


class BlockWriter:
    """Buffers the entries of one spool file and appends them in whole blocks.

    A write after a quiet spell goes out at once (a lone line is seen without delay); during a
    burst, entries gather for up to ``FLUSH_DELAY`` or ``FLUSH_BYTES`` and go out in one write.
    ``headed`` blocks carry the header that sets them apart from raw output in a shared file.

    A full disk never fails the worker: entries are held (up to ``HELD_BYTES``) and written
    when there is room again; past that they are counted, and a marker entry says how many
    were lost where they would have been. A block gets its disk space before it is written
    (``jobdir.allocate``), so the disk takes a whole block or none of it: no entry is torn (a
    block cut short all the same, when a child's raw output took the space meanwhile, is
    completed first). At the job's end ``close`` counts what still cannot be written and
    writes the marker in the room the job's reserve file gives back.
    """

    def __init__(self, fd, flusher, headed, mask=None):
        """``fd``: the spool file's descriptor, or a function that opens it when first needed;
        ``mask``: a ``Masker`` of the job's secret values, never written out."""
        self._fd = fd if isinstance(fd, int) else None
        self._open = None if isinstance(fd, int) else fd
        self._mask = mask or Masker(())
        self._flusher = flusher
        self._headed = headed
        self._lines = []
        self._size = 0
        self._lock = threading.Lock()
        self._clock = 0.0
        self._stamp = ""
        self._last_flush = 0.0
        self._woken = False  # the flusher was told about the buffered entries
        self._refused = False  # the last write failed: entries are held
        self._owed = b""  # the rest of a block that a full disk cut short
        self._lost = 0  # entries lost to a full disk since the last block written
        self._lost_bytes = 0
        self._marker_at = 0  # while entries are lost: how many held lines come before them

    def write(self, message):
        """Buffer one entry (``message`` is text); cheap, safe from any thread.

        This is the cost of every ``self.log()``: lines stay text until a block is written
        (one join and one encode per block), and the flusher is woken once per block. A message
        longer than ``spool.MAX_ENTRY_BYTES`` is stored as several entries by the server.
        """
        now = _time()
        if now - self._clock >= 0.001:  # formatting a float per entry costs more than the rest
            self._clock, self._stamp = now, spool.stamp(now)
        if self._mask:
            message = self._mask.text(message)
        if "\\" in message or "\n" in message:
            message = spool.escape(message)
        line = self._stamp + message
        with self._lock:
            if self._size >= HELD_BYTES:
                if now - self._last_flush >= FLUSH_DELAY:
                    self._flush_locked()  # is there room again?
                if self._size >= HELD_BYTES:  # the disk is full and the buffer too
                    if not self._lost:
                        self._marker_at = len(self._lines)
                    self._lost += 1
                    self._lost_bytes += len(line) + 1
                    self._flusher.wake()  # it tries again shortly
                    return
            self._lines.append(line)
            self._size += len(line) + 1
            if self._size >= FLUSH_BYTES or now - self._last_flush >= FLUSH_DELAY:
                self._flush_locked()
            elif not self._woken:
                self._woken = True
                self._flusher.wake()

    @property
    def holding(self):
        """Whether entries wait for disk space (read without the lock: a hint)."""
        return self._refused

    due = None  # a time.monotonic() at which the flusher must flush it even if not woken

    def write_control(self, record):
        """Append a framed control record (``spool.frame_control``) after the entries buffered
        so far, so it keeps its place in the log; False when the disk refuses (the caller
        keeps it and tries again)."""
        with self._lock:
            self._flush_locked()
            if self._lines or self._owed or self._lost:
                return False  # entries before it wait for room: so does it
            return self._write_out(record, whole=True)

    def flush(self):
        """Append what is buffered to the spool file."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self):
        self._last_flush = _time()
        self._woken = False
        if self._owed and not self._write_out(self._owed):
            return
        while self._lines:
            # Blocks of about FLUSH_BYTES: on a disk with a little room, what fits goes out.
            count, size = 0, 0
            limit = self._marker_at if self._lost else len(self._lines)
            if limit == len(self._lines) and self._size < 2 * FLUSH_BYTES:
                count, size = limit, self._size  # the usual case: one block of all of them
            while count < limit and (not count or size < FLUSH_BYTES):
                size += len(self._lines[count]) + 1
                count += 1
            lines = self._lines[:count]
            marked = bool(self._lost) and count == self._marker_at
            if marked:  # they were lost after the held entries, before any newer one
                lines.append(self._marker())
            if not self._write_lines(lines):
                return
            del self._lines[:count]
            self._size -= size
            if self._lost:
                self._marker_at -= count
            if marked:
                self._lost = self._lost_bytes = 0
        if self._lost:  # lost with nothing held before them: the marker alone
            if self._write_lines([self._marker()]):
                self._lost = self._lost_bytes = 0

    def _marker(self):
        return spool.stamp(_time()) + "[JobJoker] %d entries (%d bytes) were lost here: the " \
            "disk was full" % (self._lost, self._lost_bytes)

    def _write_lines(self, lines):
        """Write entry lines as one block; True once written (or begun: the rest is owed)."""
        text = "\n".join(lines) + "\n"
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate: keep the rest of the text
            data = text.encode("utf-8", "replace")
        if self._headed:
            data = spool.frame_block(data)
        return self._write_out(data, whole=True) or bool(self._owed)

    def _write_out(self, data, whole=False):
        """Write ``data``; True once all of it is in the file. A ``whole`` block gets its disk
        space first (``jobdir.allocate``): on a full disk nothing of it is written and the
        caller keeps its entries, so no entry is ever torn. If the disk still takes only part
        (a child's raw output took the space meanwhile), the rest is owed (written before
        anything else)."""
        view = memoryview(data)
        try:
            if self._fd is None:
                self._fd = self._open()
            if whole and not _room_for(self._fd, len(data)):
                self._refused = True
                return False
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            self._refused = True
            if whole and len(view) == len(data):
                return False
            self._owed = bytes(view)
            return not self._owed
        self._owed = b""
        self._refused = False
        return True

    def close(self, reserve=None):
        """The job ends: write what is buffered. What a full disk still refuses is counted as
        lost, and the marker saying so is written in the room ``reserve`` (the descriptor of
        the job's reserve file, emptied here) gives back. Returns whether all went out."""
        with self._lock:
            self._flush_locked()
            if not self._lines and not self._lost and not self._owed:
                return True
            _release(reserve)
            if self._owed:
                self._write_out(self._owed)
            for line in self._lines:
                self._lost += 1
                self._lost_bytes += len(line) + 1
            self._lines, self._size, self._marker_at = [], 0, 0
            if self._lost and not self._owed and self._write_lines([self._marker()]):
                self._lost = self._lost_bytes = 0
            return not self._lost and not self._owed


RESERVE_BYTES = 64 * 1024  # the room a job's last words need on a full disk: two markers and
# the run-end record, with file-system blocks to spare


ROOMY_BYTES = 16 * 1024 * 1024  # free space past which a block surely fits


def _room_for(fd, length):
    """Whether ``length`` more bytes fit at the end of the file. On a disk with plenty of room
    that is one cheap ``fstatvfs``; on a nearly full one the blocks are taken now (``fallocate``,
    which costs a journal transaction on most file systems: too dear for every block). Unknown
    (no ``fallocate`` there) counts as yes: the write will tell."""
    try:
        stat = os.fstatvfs(fd)
        if stat.f_bavail * stat.f_frsize > ROOMY_BYTES + length:
            return True
        jobdir.allocate(fd, os.fstat(fd).st_size, length)
    except OSError as e:
        return e.errno not in (errno.ENOSPC, errno.EDQUOT)
    return True


def open_reserve(spec):
    """The job's reserve file with ``RESERVE_BYTES`` of disk taken (its descriptor), or None
    when the disk is already too full for it."""
    try:
        fd = _spool(spec, "reserve")
        fd = fd() if callable(fd) else fd
    except OSError:
        return None
    try:
        jobdir.allocate(fd, 0, RESERVE_BYTES)
    except OSError:
        pass  # full already, or no fallocate here: the file still holds whatever it got
    return fd


def _release(reserve):
    if reserve is not None:
        try:
            os.ftruncate(reserve, 0)
        except OSError:
            pass


class Flusher:
    """One thread that writes buffered entries shortly after they were logged.

    It sleeps on an event while nothing is buffered, so an idle job costs no CPU. It starts when
    an entry first has to wait for it: a job that logs little (each entry then goes out at once)
    never pays for a thread, its start or its stack.
    """

    def __init__(self):
        self.writers = []
        self._event = threading.Event()
        self._thread_pid = None  # the process whose thread this is (threads do not survive fork)

    def start(self):
        self._thread_pid = os.getpid()
        threading.Thread(target=self._loop, name="jobjoker-flusher", daemon=True).start()

    def wake(self):
        if self._thread_pid != os.getpid():
            self.start()
        if not self._event.is_set():
            self._event.set()

    def flush_all(self):
        for writer in self.writers:
            writer.flush()

    def _timeout(self):
        """How long the flusher may sleep: until a writer's ``due`` time (a progress record
        held back), or ``RETRY_DELAY`` while one holds entries, else until woken."""
        timeout = RETRY_DELAY if any(w.holding for w in self.writers) else None
        dues = [w.due for w in self.writers if w.due is not None]
        if dues:
            wait = max(min(dues) - time.monotonic(), 0.0)
            timeout = wait if timeout is None else min(timeout, wait)
        return timeout

    def _loop(self):
        while True:
            # Entries held for want of disk space are retried now and then, even if the
            # worker logs nothing more.
            self._event.wait(self._timeout())
            time.sleep(FLUSH_DELAY)  # let a burst of entries gather into one block
            self._event.clear()
            try:
                self.flush_all()
            except OSError:
                pass  # the spool is gone: the job keeps running


class LineStream(io.TextIOBase):
    """A text stream (for ``sys.stdout``/``sys.stderr``) that logs each complete line."""

    def __init__(self, writer, fileno):
        super().__init__()
        self._writer = writer
        self._fileno = fileno
        self._partial = ""

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def fileno(self):
        # Code that hands sys.stdout to a child process gets the raw output file.
        return self._fileno

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            # A CRLF line (text read from a Windows file, a network reply) without its \r;
            # a bare \r (a progress rewrite) stays.
            self._writer.write(line[:-1] if line.endswith("\r") else line)
        return len(text)

    def flush(self):
        """Log the line begun so far. A line being rewritten with \r (a progress bar printed
        with ``end="\\r"`` or ``"\\r" + bar``, flushed each time) goes out up to its last \r,
        which tells the page to let the next entry overwrite its row; what follows that \r waits
        for the next flush (or ``drain``)."""
        cut = self._partial.rfind("\r") + 1
        if 0 < cut < len(self._partial):
            self._writer.write(self._partial[:cut])
            self._partial = self._partial[cut:]
        else:
            self.drain()

    def drain(self):
        """Log whatever is begun (the job is ending)."""
        if self._partial:
            self._writer.write(self._partial)
            self._partial = ""


def load_worker_class(name, path, source=None):
    """Compile and execute the worker file afresh and return its class ``name``."""
    if source is None:
        with open(path, "rb") as f:
            source = f.read()
    code = compile(source, path, "exec")
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # pickle, dataclasses and friends look classes up here
    exec(code, module.__dict__)
    cls = module.__dict__.get(name)
    if not (isinstance(cls, type) and issubclass(cls, worker_api.Worker)):
        raise TypeError("%s does not define class %s(jobjoker.Worker)" % (path, name))
    return cls


def flush_before_children(flusher):
    """Write buffered entries before a child process starts, so its output comes after them."""
    original = subprocess.Popen._execute_child

    def _execute_child(self, *args, **kwargs):
        flusher.flush_all()
        return original(self, *args, **kwargs)

    subprocess.Popen._execute_child = _execute_child
    for name in ("system", "posix_spawn", "posix_spawnp"):
        function = getattr(os, name, None)
        if function is not None:
            setattr(os, name, _flushing(function, flusher))
    # os.fork, multiprocessing and os.spawn*: flush in the parent; a forked child gets a flusher
    # thread of its own (threads do not survive fork).
    os.register_at_fork(before=flusher.flush_all, after_in_child=flusher.start)


def _flushing(function, flusher):
    def wrapper(*args, **kwargs):
        flusher.flush_all()
        return function(*args, **kwargs)
    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def _spool(spec, key):
    """The descriptor of a spool the supervisor handed over (``spec["fds"]``, see
    ``jobdir.JOB_FILES``), or a function that opens it by path when first needed (a runner
    started without a supervisor, as in tests)."""
    fds = spec.get("fds") or {}
    if key in fds:
        return fds[key]
    name, flags = jobdir.JOB_FILES[key]
    return lambda: jobdir.open_file(spec["job_dir"], name, flags | os.O_CREAT)


def run_job(spec):
    """Run one job described by ``spec`` (job_id, worker, worker_file, params, job_dir).

    Returns the process exit code; never raises.
    """
    flusher = Flusher()
    mask = Masker(spec.get("mask") or ())
    log = BlockWriter(_spool(spec, "log"), flusher, headed=True, mask=mask)
    response = BlockWriter(_spool(spec, "response"), flusher, headed=False, mask=mask)
    control = ControlWriter(log, flusher, mask,
                            spec.get("max_result_bytes") or controls.DEFAULT_MAX_RESULT_BYTES,
                            log.write)
    flusher.writers.extend([log, response, control])
    flush_before_children(flusher)
    reserve = open_reserve(spec)

    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())

    log.write("STARTED job %s: worker %s, pid %d" % (spec["job_id"], spec["worker"], os.getpid()))
    # That went out at once; so must the worker's first entry, which would otherwise count as
    # part of a burst begun by STARTED and wait FLUSH_DELAY.
    log._last_flush = 0.0
    streams = sys.stdout, sys.stderr = LineStream(log, 1), LineStream(log, 2)
    worker_api._job_context = worker_api.JobContext(
        job_id=spec["job_id"], params=spec.get("params"), log_sink=log, response_sink=response,
        is_active=lambda: not stop_requested.is_set(), control_sink=control)
    error = None
    try:
        cls = load_worker_class(spec["worker"], spec["worker_file"], spec.get("worker_source"))
        result = cls().run()
        if inspect.iscoroutine(result):  # ``async def run``: give it an event loop
            import asyncio
            asyncio.run(result)
        code = EXIT_DONE
    except SystemExit as e:
        code, error = _system_exit(e, log, mask)
    except BaseException as e:  # the worker's failure is the job's result, whatever it was
        log.write(traceback.format_exc().rstrip("\n"))
        code = EXIT_ERROR
        error = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
    if error is not None:  # shown as the job's error to every viewer: never a secret
        error = mask.text(error)
    outcome = "error" if code != EXIT_DONE else "stopped" if stop_requested.is_set() else "done"
    if outcome == "stopped":
        code = EXIT_STOPPED
    try:
        for stream in streams:  # ours, even if the worker replaced sys.stdout
            stream.drain()
    except OSError:
        pass
    control.close()  # the last progress, held back, is never lost
    for writer in (log, response):  # on a full disk: what was lost, said in the reserve's room
        writer.close(reserve)
    _release(reserve)  # the run-end record's room
    write_run_end(spec, {"outcome": outcome, "returncode": code, "error": error,
                         "time": time.time()})
    return code


def write_run_end(spec, record):
    """Leave how the run ended in the run-end record: it tells the server what an exit code
    alone cannot (an exception's name, a stop honoured) even when no supervisor saw the exit."""
    try:
        fds = spec.get("fds") or {}
        if "run_end" in fds:  # in place: the server reads it once the process has exited
            jobdir.rewrite_record(fds["run_end"], record)
        else:
            jobdir.write_record(spec["job_dir"], jobdir.RUN_END, record)
    except OSError:
        pass  # the exit code still tells the essentials


def _system_exit(exc, log, mask):
    """(exit code, error) for a worker's ``sys.exit(...)`` (masked before ``repr`` escapes it)."""
    if exc.code is None or exc.code == 0:
        return EXIT_DONE, None
    if isinstance(exc.code, int):
        return (exc.code & 0xFF or EXIT_ERROR), "%s%d)" % (SYS_EXIT, exc.code)
    log.write(str(exc.code))
    return EXIT_ERROR, "%s%r)" % (SYS_EXIT, mask.text(str(exc.code)))
