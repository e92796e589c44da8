"""``jobjoker backup PATH``: a consistent copy of what a restore needs, taken while the server runs.

Contract: ``make_backup(config, path)`` makes the directory ``path`` (it must not exist; the
folders above it are made, 0700, if missing) and writes into it, mode 0700 and files 0600, laid out as a data dir, so that a
restore is "make this the data dir" (docs/deploy.md, "Backups and restores"):

  jobjoker.sqlite3   the SQLite database (the default, or the file of a ``sqlite:`` URL), copied
                     with SQLite's online backup API, one step: a consistent snapshot even while
                     the server writes (WAL mode: a plain copy of the file is not one), checked
                     with ``PRAGMA quick_check``, and left in rollback-journal mode (one file)
  database.sql       instead, for MySQL/MariaDB or PostgreSQL: the output of ``mariadb-dump``/
                     ``mysqldump --single-transaction`` or ``pg_dump`` (one consistent
                     transaction), run with the URL's user; its password goes in the tool's
                     environment (MYSQL_PWD, PGPASSWORD), never on its command line
  secret.key         the key that seals secret parameter values, when it is the data dir's
                     (with ``JOBJOKER_SECRET_KEY`` the keys are the operator's: not copied)
  jobs/<id>/         the folders of running jobs (their spools, run-end and exit records), copied
                     AFTER the database, so each spool holds at least what the copied database
                     says was read of it; a restored server reads them on from there
  workers/           the worker files (``*.py`` of the workers dir)
  backup.json        what was copied, when, from where, by which version

Everything is read the way the server reads a job folder (``jobdir``: no link followed, no FIFO
waited on, only plain files); holes punched in spools stay holes. Failures raise
``BackupFailed`` with what to fix; a half-made backup is removed. Nothing here takes the data
dir's lock or the node lease: a backup changes nothing of the server's.
"""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
import urllib.parse

from jobjoker import __version__, jobdir, secretbox
from jobjoker.database_url import redact_url

MANIFEST = "backup.json"
SQLITE_FILE = "jobjoker.sqlite3"
DUMP_FILE = "database.sql"
DUMP_SECONDS = 3600  # a dump that takes longer than this is stuck, not slow
COPY_BLOCK = 1024 * 1024


class BackupFailed(Exception):
    """A backup that could not be made; ``message`` says why and what to do."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def make_backup(config, path):
    """Back up the server of ``config`` into the new directory ``path``; returns the manifest."""
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path):
        raise BackupFailed("%s already exists: give a new directory's path (a backup never "
                           "overwrites)" % path)
    old_umask = os.umask(0o077)
    try:
        try:
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)  # backups/, the first time
            os.mkdir(path, 0o700)
        except OSError as e:
            raise BackupFailed("cannot make %s: %s" % (path, e.strerror or e))
        try:
            return _fill(config, path)
        except BaseException as e:
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(e, OSError):  # a full disk, a file that went: said plainly
                raise BackupFailed("copying into %s failed: %s" % (path, e)) from e
            raise
    finally:
        os.umask(old_umask)


def _fill(config, path):
    url = config.database_url
    scheme = urllib.parse.urlsplit(url).scheme
    manifest = {"created": time.time(), "version": __version__, "node": config.node,
                "data_dir": os.fspath(config.data_dir), "database": redact_url(url)}
    if scheme.startswith("sqlite"):
        copy_sqlite(sqlite_file(url), os.path.join(path, SQLITE_FILE))
        manifest["database_copy"] = SQLITE_FILE
    else:
        dump_database(url, os.path.join(path, DUMP_FILE))
        manifest["database_copy"] = DUMP_FILE
    # After the database: a spool copied later holds at least what the copy says was read.
    manifest["jobs"] = copy_job_folders(config.jobs_dir, os.path.join(path, "jobs"),
                                        jobdir.owners_for(config.run_as))
    key_file = os.path.join(config.data_dir, secretbox.KEY_FILE)
    if config.secret_keys:
        manifest["secret_key"] = "environment %s (not copied)" % secretbox.ENV_KEY
    elif os.path.exists(key_file):
        _copy_file(key_file, os.path.join(path, secretbox.KEY_FILE))
        manifest["secret_key"] = secretbox.KEY_FILE
    else:
        manifest["secret_key"] = None
    manifest["workers"] = copy_workers(config.workers_dir, os.path.join(path, "workers"))
    with open(os.path.join(path, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


# --- the database ---------------------------------------------------------------------------

def sqlite_file(url):
    """The file of a ``sqlite:`` URL (three slashes: relative, four: absolute)."""
    from jobjoker.models import make_database  # peewee only for the commands that need it
    return make_database(url).database


def copy_sqlite(source, target):
    """Copy the SQLite database ``source`` into the new file ``target``, consistently."""
    if not os.path.isfile(source):
        raise BackupFailed("the SQLite database %s does not exist (is --data-dir or --database "
                           "the server's?)" % source)
    owner = os.stat(source).st_uid
    if owner != os.geteuid():
        # SQLite may make the -wal and -shm files beside it: made by another user, they would
        # lock the server out of its own database.
        raise BackupFailed("run the backup as the server's user (uid %d, who owns %s), not as "
                           "uid %d: e.g. sudo -u jobjoker jobjoker backup ..."
                           % (owner, source, os.geteuid()))
    # Read-only: a backup must never change the server's database (nor create one by mistake).
    origin = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(source), uri=True)
    copy = sqlite3.connect(target)
    try:
        origin.execute("PRAGMA busy_timeout = 30000")
        # One step (pages=-1): the whole database from one read transaction, so a writer in
        # between cannot make it start over, and the copy is one moment's state.
        origin.backup(copy, pages=-1)
        copy.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
        [[verdict]] = copy.execute("PRAGMA quick_check").fetchall()
        if verdict != "ok":
            raise BackupFailed("the copy of %s fails SQLite's check: %s" % (source, verdict))
    except sqlite3.Error as e:
        raise BackupFailed("copying the SQLite database %s failed: %s" % (source, e))
    finally:
        copy.close()
        origin.close()
    os.chmod(target, 0o600)


def dump_command(url):
    """The dump tool's command line and environment for a MySQL or PostgreSQL ``url``."""
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    name = parts.path.strip("/")
    if parts.scheme.startswith("mysql"):
        tool = shutil.which("mariadb-dump") or shutil.which("mysqldump")
        if tool is None:
            raise BackupFailed("dumping a MySQL/MariaDB database needs mariadb-dump or "
                               "mysqldump (apt-get install mariadb-client)")
        # No LOCK TABLES in the dump either (--skip-add-locks): loading it then needs no right
        # beyond the migration user's.
        command = [tool, "--single-transaction", "--no-tablespaces", "--skip-lock-tables",
                   "--skip-add-locks", "--default-character-set=utf8mb4",
                   "--host=%s" % (parts.hostname or "localhost"),
                   "--port=%d" % (parts.port or 3306)]
        if user:
            command.append("--user=%s" % user)
        return command + [name], {"MYSQL_PWD": password}
    tool = shutil.which("pg_dump")
    if tool is None:
        raise BackupFailed("dumping a PostgreSQL database needs pg_dump "
                           "(apt-get install postgresql-client)")
    command = [tool, "--no-password", "--no-owner", "--no-privileges",
               "--host=%s" % (parts.hostname or "localhost"), "--port=%d" % (parts.port or 5432)]
    if user:
        command.append("--username=%s" % user)
    return command + ["--dbname=%s" % name], {"PGPASSWORD": password}


def dump_database(url, target):
    """Dump the MySQL or PostgreSQL database of ``url`` into the new file ``target``."""
    command, secrets = dump_command(url)
    environ = dict(os.environ, **{k: v for k, v in secrets.items() if v})
    with open(target, "xb") as output:
        try:
            result = subprocess.run(command, stdout=output, stderr=subprocess.PIPE,
                                    env=environ, timeout=DUMP_SECONDS)
        except subprocess.TimeoutExpired:
            raise BackupFailed("%s did not finish in %d s" % (command[0], DUMP_SECONDS))
    if result.returncode != 0:
        raise BackupFailed("%s of %s failed (exit %d): %s"
                           % (os.path.basename(command[0]), redact_url(url), result.returncode,
                              result.stderr.decode(errors="replace").strip()))


# --- the files ------------------------------------------------------------------------------

def copy_job_folders(jobs_dir, target, owners):
    """Copy each running job's folder; returns ``{"copied": ids, "skipped": [why]}``."""
    copied, skipped = [], []
    try:
        names = sorted(os.listdir(jobs_dir))
    except FileNotFoundError:
        names = []
    for job_id in names:
        source = jobdir.path_of(jobs_dir, job_id)
        try:
            if not stat.S_ISDIR(os.lstat(source).st_mode):
                continue
        except FileNotFoundError:
            continue  # the job ended (and was stored) since the listing
        os.makedirs(os.path.join(target, job_id), 0o700)
        for name in jobdir.FILES:
            if name.endswith(jobdir.TEMPORARY_SUFFIX) or name == jobdir.RESERVE:
                continue  # half-written records, and the runner's reserved disk space
            try:
                fd = jobdir.open_safely(source, name, os.O_RDONLY, owners)
            except FileNotFoundError:
                continue  # not made yet, or the job ended and its folder just went
            except OSError as e:  # a link, a FIFO, another's file: the server skips it too
                skipped.append("%s/%s: %s" % (job_id, name, e.strerror or e))
                continue
            try:
                _copy_sparse(fd, os.path.join(target, job_id, name))
            finally:
                os.close(fd)
        copied.append(job_id)
    return {"copied": copied, "skipped": skipped}


def copy_workers(workers_dir, target):
    """Copy the worker files (``*.py``, plain files only); returns how many."""
    os.makedirs(target, 0o700)
    count = 0
    for name in sorted(os.listdir(workers_dir)) if os.path.isdir(workers_dir) else ():
        source = os.path.join(workers_dir, name)
        if name.endswith(".py") and stat.S_ISREG(os.lstat(source).st_mode):
            _copy_file(source, os.path.join(target, name))
            count += 1
    return count


def _copy_file(source, target):
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BackupFailed("%s is not a regular file" % source)
        _copy_sparse(fd, target)
    finally:
        os.close(fd)


def _copy_sparse(fd, target):
    """Copy the file open at ``fd`` into the new file ``target``, holes kept as holes (the
    ingester punches out what it has stored: a spool may be mostly holes)."""
    size = os.fstat(fd).st_size
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            os.lseek(fd, start, os.SEEK_SET)
            os.lseek(out, start, os.SEEK_SET)
            while start < end:
                block = os.read(fd, min(COPY_BLOCK, end - start))
                if not block:
                    break
                view = memoryview(block)
                while view:
                    view = view[os.write(out, view):]
                start += len(block)
            offset = end
        os.ftruncate(out, size)
        # A job that ends while no server watches is dated by its files' last change.
        info = os.fstat(fd)
        os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
    finally:
        os.close(out)
