"""The code each job ran: worker versions, stored once per distinct content.

Contract: a worker's version is its source as it was at a job's start or at a save through the
API, keyed by ``(worker, hash)`` where ``hash`` is the hex SHA-256 of the source's bytes
(``hash_of``). This module is the one that reads and writes ``WorkerVersion`` rows: ``record``
and ``prune`` run on the writer thread inside the caller's transaction, ``get`` and ``page`` on
the reader threads. ``read_worker(path)`` reads a worker's file (in an executor, never on the
loop) and returns its ``Source``: the server hands that very text to the job
(``spec["worker_source"]``), so a job runs exactly the code recorded against it, whatever
happens to the file between the read and the fork; ``bounded_by_source`` splits a big batch's
start request so that no request carries more than ``SOURCE_PER_REQUEST`` of source.

``record`` is check-then-insert in a savepoint, so a version another server (sharing the
database) inserted meanwhile is taken as it is, never an error. A version found on disk at a
start keeps its first record (``saved`` = the file's modification time, ``saved_by`` None); a
save through the API records ``saved`` = now and ``saved_by`` = the user, even for content
seen before (a revert is then the newest version).

Retention (``prune``): a version is kept while any job refers to it (``job.worker`` and
``job.code_hash``), and each worker's ``KEEP_NEWEST`` newest versions by ``saved`` are kept
regardless, so a worker's recent history survives the deletion of its jobs. ``prune(tx, worker)``
runs when a job is deleted and when a worker is saved. Deleting or editing a worker file never
touches its versions: an old job shows what it ran.
"""
import collections
import difflib
import hashlib
import os

import peewee

from jobjoker import jobstore, models

Version = models.WorkerVersion
KEEP_NEWEST = 20  # versions kept per worker even when no job refers to them
Source = collections.namedtuple("Source", "worker hash text exact mtime")
# exact: the text decodes the file's bytes as they are (UTF-8), so the job may run it as given


def hash_of(code_bytes):
    """The hex SHA-256 of a worker's source bytes (what ``job.code_hash`` holds)."""
    return hashlib.sha256(code_bytes).hexdigest()


def source_of(worker, code_bytes, mtime):
    """The ``Source`` of a worker's bytes."""
    try:
        text, exact = code_bytes.decode("utf-8"), True
    except UnicodeDecodeError:  # a file put there by hand: shown with U+FFFD, run from disk
        text, exact = code_bytes.decode("utf-8", "replace"), False
    return Source(worker, hash_of(code_bytes), text, exact, mtime)


def read_worker(worker, path):
    """Executor: the ``Source`` of a worker's file, or None when it is gone."""
    try:
        with open(path, "rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            return source_of(worker, f.read(), mtime)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


# Each spec of a start request carries its worker's source (``worker_source``): a batch of many
# jobs of a big worker goes to the supervisor in several requests, each holding about this many
# characters of source at most.
SOURCE_PER_REQUEST = 8 * 1024 * 1024


def bounded_by_source(specs, limit=SOURCE_PER_REQUEST):
    """``specs`` (start specs) in consecutive parts whose ``worker_source`` add up to at most
    ``limit`` characters (a part holds one spec at least)."""
    part, size = [], 0
    for spec in specs:
        length = len(spec.get("worker_source") or "")
        if part and size + length > limit:
            yield part
            part, size = [], 0
        part.append(spec)
        size += length
    if part:
        yield part


# --- writer thread -------------------------------------------------------------------------------

def record(tx, worker, hash_, text, saved, saved_by=None):
    """Writer thread: store a version unless stored already; with ``saved_by`` (an API save)
    an existing one is marked saved now by that user. Returns True when it was new."""
    exists = Version.select(Version.hash).where(
        Version.worker == worker, Version.hash == hash_).exists()
    if not exists:
        try:
            with tx.savepoint():
                Version.insert(worker=worker, hash=hash_, source=text, saved=saved,
                               saved_by=saved_by).execute()
            return True
        except peewee.IntegrityError:
            pass  # another server sharing the database stored it a moment ago: the same code
    if saved_by is not None:
        Version.update(saved=saved, saved_by=saved_by).where(
            Version.worker == worker, Version.hash == hash_).execute()
    return False


def record_sources(tx, sources):
    """Writer thread: ``record`` each ``Source`` found on disk at a start."""
    for source in sources:
        record(tx, source.worker, source.hash, source.text, source.mtime)


def prune(tx, worker):
    """Writer thread: delete the versions of ``worker`` that no job refers to, except its
    ``KEEP_NEWEST`` newest; returns how many went."""
    older = [hash_ for hash_, in Version.select(Version.hash).where(Version.worker == worker)
             .order_by(Version.saved.desc(), Version.hash).offset(KEEP_NEWEST).tuples()]
    if not older:
        return 0
    used = jobstore.count_by_code_hash(worker, older)
    gone = [hash_ for hash_ in older if hash_ not in used]
    for start in range(0, len(gone), jobstore.MAX_IDS_PER_STATEMENT):
        Version.delete().where(Version.worker == worker, Version.hash.in_(
            gone[start:start + jobstore.MAX_IDS_PER_STATEMENT])).execute()
    return len(gone)


# --- reader threads ------------------------------------------------------------------------------

def to_dict(row, with_source=False):
    data = {"worker": row.worker, "hash": row.hash, "saved": row.saved,
            "saved_by": row.saved_by}
    if with_source:
        data["source"] = row.source
    return data


def get(worker, hash_):
    """Reader: the version (a dict with its source), or None."""
    row = Version.get_or_none(Version.worker == worker, Version.hash == hash_)
    return None if row is None else to_dict(row, with_source=True)


def page(worker, offset, limit):
    """Reader: ``(versions newest first without their source, each with its jobs count,
    how many the worker has)``."""
    rows = list(Version.select(Version.worker, Version.hash, Version.saved, Version.saved_by)
                .where(Version.worker == worker)
                .order_by(Version.saved.desc(), Version.hash).offset(offset).limit(limit))
    counts = jobstore.count_by_code_hash(worker, [row.hash for row in rows])
    versions = [dict(to_dict(row), jobs=counts.get(row.hash, 0)) for row in rows]
    return versions, Version.select().where(Version.worker == worker).count()


# --- pure ----------------------------------------------------------------------------------------

def unified_diff(old, new, old_label, new_label):
    """A unified diff (``difflib``) from the text ``old`` to ``new``; "" when they are equal."""
    return "".join(difflib.unified_diff(
        _lines(old), _lines(new), old_label, new_label))


def _lines(text):
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines
