"""A job's folder: the names of its files, and the one way each side makes, reads and removes
them.

Contract: while a job runs, ``<jobs dir>/<job id>/`` (mode 0700, always the server's user's,
``--run-as`` or not: the job can never add, remove or rename anything there) holds:

  log.spool        entries and raw output, appended by the job's processes
  response.spool   response entries, appended by the runner
  run-end.json     how ``run()`` ended, in the runner's words, written just before it exits
  exit.json        how the process ended, written by the supervisor once it has reaped it
  reserve          a few KiB of disk the runner holds, and frees to write its last words
                   (what a full disk made it lose, run-end.json) when the disk is full

The supervisor makes the first three before the fork (``open_job_files``; under ``--run-as``
they then belong to the job's user) and the job gets them as open descriptors only: its stdout
and stderr are the log spool, and the runner writes its spools and its run-end record (in place:
the server reads it only once the process has exited) through the descriptors it was handed. The
job holds no descriptor of the folder and never needs its path (supervisor protocol 3).

The server only reads there, and removes the folder once the job is final. Every open in a job
folder, by the server or the supervisor, goes through ``_open_in``: relative to a descriptor of
the folder opened without following a link, itself without following links or blocking
(``O_NOFOLLOW | O_NONBLOCK``), then checked (``fstat``) to be a regular file with one link,
belonging to one of the given ``owners`` (``owners_for``: ours, and the ``--run-as`` user's).
Anything else is refused, logged once, and reads as absent; records are never read beyond
``MAX_RECORD_BYTES``. That holds for folders made by an older supervisor too, which gave the
folder itself to the ``--run-as`` user. ``RUN_END`` was ``result.json`` before supervisor
protocol 2: a job started by an older supervisor (which outlives an upgrade of the server) still
leaves that name, so ``read_run_end`` reads either. Records written by name go to a fresh
temporary file (``O_EXCL``) and are renamed, so a reader sees the whole file or none. Standard
library only: the supervisor and the runner use it.
"""
import ctypes
import errno
import json
import logging
import os
import shutil
import stat

log = logging.getLogger(__name__)

LOG_SPOOL = "log.spool"
RESPONSE_SPOOL = "response.spool"
RUN_END = "run-end.json"
LEGACY_RUN_END = "result.json"
EXIT_RECORD = "exit.json"
RESERVE = "reserve"  # disk space the runner holds for its last words on a full disk
TEMPORARY_SUFFIX = ".tmp"
FILES = (LOG_SPOOL, RESPONSE_SPOOL, RUN_END, LEGACY_RUN_END, EXIT_RECORD, RESERVE,
         RUN_END + TEMPORARY_SUFFIX, LEGACY_RUN_END + TEMPORARY_SUFFIX,
         EXIT_RECORD + TEMPORARY_SUFFIX)
# What the job writes as it runs, last changed at the latest when it ended.
OUTPUT_FILES = (LOG_SPOOL, RESPONSE_SPOOL, RUN_END, LEGACY_RUN_END)
# The files the job writes, made for it by the supervisor, and how each is opened.
JOB_FILES = {"log": (LOG_SPOOL, os.O_WRONLY | os.O_APPEND),
             "response": (RESPONSE_SPOOL, os.O_WRONLY | os.O_APPEND),
             "run_end": (RUN_END, os.O_WRONLY),
             "reserve": (RESERVE, os.O_WRONLY)}
MAX_RECORD_BYTES = 64 * 1024  # a record is a few hundred bytes; anything bigger is not ours
# What an open says when the name is not a plain file: a link (ELOOP), a folder (EISDIR), a FIFO
# without a reader (ENXIO), a folder that is not one (ENOTDIR).
_REFUSED_ERRNOS = (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR)
_MAX_REPORTED = 1024

_libc = ctypes.CDLL(None, use_errno=True)
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2
_reported = set()  # (folder, name) refusals already logged


class Refused(OSError):
    """A name in a job folder that is not a plain file of the job or of the server."""


def path_of(jobs_dir, job_id):
    return os.path.join(os.fspath(jobs_dir), job_id)


def owners_for(run_as=None):
    """The users whose files a job folder may hold: ours, and the ``--run-as`` user's."""
    owners = {os.geteuid()}
    if run_as:
        import pwd
        owners.add(pwd.getpwnam(run_as).pw_uid)
    return frozenset(owners)


def create(path):
    """Make the job's folder (its parents too) if it is not there yet."""
    os.makedirs(path, mode=0o700, exist_ok=True)


def _open_folder(job_dir):
    return os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _open_in(dir_fd, name, flags, owners):
    """Open ``name`` of an open folder as described in the module's docstring; raises
    ``Refused`` (or the ``OSError`` of the open) for anything but a plain file of ``owners``."""
    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(errno.EPERM, "not a regular file", name)
        if info.st_nlink != 1:
            raise Refused(errno.EPERM, "a file with %d links" % info.st_nlink, name)
        if info.st_uid not in owners:
            raise Refused(errno.EPERM, "a file of uid %d" % info.st_uid, name)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_safely(job_dir, name, flags, owners):
    """A descriptor of ``name`` in ``job_dir`` opened the safe way (``_open_in``)."""
    dir_fd = _open_folder(job_dir)
    try:
        return _open_in(dir_fd, name, flags, owners)
    finally:
        os.close(dir_fd)


def _refused(job_dir, name, error):
    """Whether ``error`` is a refusal (logged once per file); other errors are the caller's."""
    if not isinstance(error, Refused) and error.errno not in _REFUSED_ERRNOS:
        return False
    key = (os.fspath(job_dir), name)
    if key not in _reported:
        if len(_reported) >= _MAX_REPORTED:
            _reported.clear()
        _reported.add(key)
        log.warning("job %s: %s in its folder %s is not a plain file of the job or the server "
                    "(%s): not used", os.path.basename(key[0]), name, key[0],
                    error.strerror or error)
    return True


def open_job_files(job_dir):
    """Supervisor, before a fork: make the files the job writes (empty where new) and return
    ``{JOB_FILES key: descriptor}``. The folder must be ours and private (0700)."""
    dir_fd = _open_folder(job_dir)
    fds = {}
    try:
        info = os.fstat(dir_fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise Refused(errno.EPERM, "the job's folder is not private to uid %d (mode %o, "
                          "uid %d)" % (os.geteuid(), stat.S_IMODE(info.st_mode), info.st_uid),
                          os.fspath(job_dir))
        for key, (name, flags) in JOB_FILES.items():
            fds[key] = _open_in(dir_fd, name, flags | os.O_CREAT, {os.geteuid()})
            # The job's programs inherit these as stdout and stderr: no surprising flag.
            os.set_blocking(fds[key], True)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    finally:
        os.close(dir_fd)
    return fds


def open_file(job_dir, name, flags):
    """Open a file of the job's folder by path, not following a link (a runner started without
    the supervisor's descriptors, as in tests)."""
    return os.open(os.path.join(job_dir, name), flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def write_record(job_dir, name, record):
    """Write ``record`` as JSON so that a reader sees the whole file or none: a fresh temporary
    file (never one that was there: it might be a link), then a rename. Not fsynced: only a
    crash of the whole machine could lose it, and that ends the job too (it then ends ``error``
    with its exit status unknown)."""
    temporary = name + TEMPORARY_SUFFIX
    dir_fd = _open_folder(job_dir)
    try:
        try:
            os.unlink(temporary, dir_fd=dir_fd)  # a leftover (or a planted link) goes
        except FileNotFoundError:
            pass
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            os.write(fd, json.dumps(record).encode())
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def rewrite_record(fd, record):
    """Write ``record`` as JSON over the whole file ``fd`` (the runner's run-end record, read
    only once the process has exited: a torn one reads as no record)."""
    data = json.dumps(record).encode()
    os.ftruncate(fd, 0)
    view = memoryview(data)
    while view:
        view = view[os.pwrite(fd, view, len(data) - len(view)):]


def _open_or_none(job_dir, name, flags, owners):
    """``open_safely``, or None when the file cannot be opened (absent, or refused: logged
    once), for the readers that do without it."""
    try:
        return open_safely(job_dir, name, flags, owners)
    except OSError as e:
        _refused(job_dir, name, e)
        return None


def read_record(job_dir, name, owners):
    """The JSON record ``name`` of the folder, or None when it is absent, unreadable, refused
    or not a record of ours."""
    fd = _open_or_none(job_dir, name, os.O_RDONLY, owners)
    if fd is None:
        return None
    try:
        data = os.read(fd, MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_RECORD_BYTES:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_run_end(job_dir, owners):
    """The runner's account of how ``run()`` ended, under either of its names, or None."""
    return read_record(job_dir, RUN_END, owners) or read_record(job_dir, LEGACY_RUN_END, owners)


def last_modified(job_dir, names, owners):
    """The latest modification time of the files ``names`` of the folder (the safe way), or
    None when none of them can be read: evidence of when a job whose exit nobody saw ended."""
    times = []
    for name in names:
        fd = _open_or_none(job_dir, name, os.O_RDONLY, owners)
        if fd is None:
            continue
        try:
            times.append(os.fstat(fd).st_mtime)
        finally:
            os.close(fd)
    return max(times, default=None)


def read_spool(job_dir, name, offset, size, owners):
    """``(bytes, written)``: up to ``size`` bytes of a spool from ``offset``, and the spool's
    modification time (nothing in it was written later); ``(b"", None)`` when it does not
    exist (yet) or is refused. Other errors (out of descriptors, I/O) are raised, for the
    caller to retry."""
    try:
        fd = open_safely(job_dir, name, os.O_RDONLY, owners)
    except FileNotFoundError:
        return b"", None
    except OSError as e:
        if _refused(job_dir, name, e):
            return b"", None
        raise
    try:
        return os.pread(fd, size, offset), os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def punch_hole(job_dir, name, start, end, owners):
    """Give the disk blocks of bytes ``start`` .. ``end`` of a spool back to the file system,
    keeping the file's size and offsets (its readers' offsets stay true). Best effort: False
    where the file system cannot, or the file is refused (the bytes then stay until the folder
    goes)."""
    fd = _open_or_none(job_dir, name, os.O_WRONLY, owners)
    if fd is None:
        return False
    try:
        return _libc.fallocate(fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE,
                               ctypes.c_longlong(start), ctypes.c_longlong(end - start)) == 0
    finally:
        os.close(fd)


def allocate(fd, start, length):
    """Give the file of ``fd`` the disk blocks of bytes ``start`` .. ``start + length`` without
    changing its size, so that writing them later cannot fail for want of space. Raises
    ``OSError`` (ENOSPC when the disk is full; EOPNOTSUPP where the file system cannot)."""
    if _libc.fallocate(fd, _FALLOC_FL_KEEP_SIZE, ctypes.c_longlong(start),
                       ctypes.c_longlong(length)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def remove(job_dir):
    """Remove an ended job's folder: its known files, then the folder (``rmtree`` only if the
    job left something else there; it removes links, never what they point to). On the path
    of every job's end: ``rmtree`` alone costs a directory scan and a stat per file."""
    for name in FILES:
        try:
            os.unlink(os.path.join(job_dir, name))
        except FileNotFoundError:
            pass
        except OSError:
            break
    try:
        os.rmdir(job_dir)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(job_dir, ignore_errors=True)
