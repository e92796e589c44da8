"""A job's folder: the names of its files, and the one way each side makes, reads and removes
them.

Contract: while a job runs, ``<jobs dir>/<job id>/`` (mode 0700; under ``--run-as`` it belongs
to that user) holds:

  log.spool        entries and raw output, appended by the job's processes
  response.spool   response entries, appended by the runner (made by the first response)
  run-end.json     how ``run()`` ended, in the runner's words, written just before it exits
  exit.json        how the process ended, written by the supervisor once it has reaped it
  reserve          a few KiB of disk the runner holds, and frees to write its last words
                   (what a full disk made it lose, run-end.json) when the disk is full

The server only reads there, and removes the folder once the job is final. ``RUN_END`` was
``result.json`` before supervisor protocol 2: a job started by an older supervisor (which
outlives an upgrade of the server) still leaves that name, so ``read_run_end`` reads either.
Records are read whole or not at all (they are written to a temporary name and renamed) and
never beyond ``MAX_RECORD_BYTES``. Standard library only: the supervisor and the runner use it.
"""
import ctypes
import json
import os
import shutil

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
MAX_RECORD_BYTES = 64 * 1024  # a record is a few hundred bytes; anything bigger is not ours

_libc = ctypes.CDLL(None, use_errno=True)
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2


def path_of(jobs_dir, job_id):
    return os.path.join(os.fspath(jobs_dir), job_id)


def create(path):
    """Make the job's folder (its parents too) if it is not there yet."""
    os.makedirs(path, mode=0o700, exist_ok=True)


def open_file(job_dir, name, flags, dir_fd=None):
    """Open a file of the job's folder, relative to an open descriptor of it when given (a job
    running as another user may not be able to reach the folder by its path)."""
    path = name if dir_fd is not None else os.path.join(job_dir, name)
    return os.open(path, flags | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)


def write_record(job_dir, name, record, dir_fd=None):
    """Write ``record`` as JSON so that a reader sees the whole file or none (a temporary file,
    then a rename). Not fsynced: only a crash of the whole machine could lose it, and that ends
    the job too (it then ends ``error`` with its exit status unknown)."""
    fd = open_file(job_dir, name + TEMPORARY_SUFFIX, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                   dir_fd)
    try:
        os.write(fd, json.dumps(record).encode())
    finally:
        os.close(fd)
    folder = "" if dir_fd is not None else job_dir
    os.replace(os.path.join(folder, name + TEMPORARY_SUFFIX), os.path.join(folder, name),
               src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def read_record(job_dir, name):
    """The JSON record ``name`` of the folder, or None when it is absent, unreadable or not a
    record of ours."""
    try:
        with open(os.path.join(job_dir, name), "rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_RECORD_BYTES:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_run_end(job_dir):
    """The runner's account of how ``run()`` ended, under either of its names, or None."""
    return read_record(job_dir, RUN_END) or read_record(job_dir, LEGACY_RUN_END)


def read_spool(job_dir, name, offset, size):
    """Up to ``size`` bytes of a spool from ``offset`` (b"" when it does not exist yet)."""
    try:
        fd = os.open(os.path.join(job_dir, name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def punch_hole(job_dir, name, start, end):
    """Give the disk blocks of bytes ``start`` .. ``end`` of a spool back to the file system,
    keeping the file's size and offsets (its readers' offsets stay true). Best effort: False
    where the file system cannot (the bytes then stay until the folder goes)."""
    try:
        fd = os.open(os.path.join(job_dir, name), os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
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
    job left something else there). On the path of every job's end: ``rmtree`` alone costs a
    directory scan and a stat per file."""
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
