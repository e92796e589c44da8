"""Domain errors: the only exceptions the model, worker and process layers raise on purpose.

Contract: this module imports nothing of ours and knows nothing of HTTP. The web layer maps each
class to a status code in one place (``handlers/base.py``); every message is written for the
person who has to fix the request, so it says what was wrong and what would be right.
``is_disk_full(error)`` is the one place that tells a full disk from other failures, whatever
raised it (the file system, SQLite, MySQL/MariaDB, PostgreSQL, or Peewee wrapping them).
"""
import errno

# MySQL/MariaDB: ER_RECORD_FILE_FULL ("The table is full"), ER_DISK_FULL ("Disk full; waiting
# for someone to free some space"); the storage engine's error 28 is the OS's ENOSPC.
_MYSQL_FULL = (1114, 1021)
_POSTGRES_FULL = "53100"  # disk_full
_SQLITE_FULL = 13
_FULL_WORDS = ("disk is full", "no space left", "disk full", "table is full", "quota",
               "got error 28 ", "errcode: 28", "errno: 28",
               # SQLite rolls back by itself on SQLITE_FULL; the rollback that follows then
               # fails with this, and the original error may be gone by then.
               "cannot rollback - no transaction is active")


class JobJokerError(Exception):
    """Base of every domain error; ``message`` is safe to show to a client."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class BadRequest(JobJokerError):
    """The request is malformed (bad JSON, a missing field, an unknown word)."""


class Unauthorized(JobJokerError):
    """No valid credentials were given."""


class Forbidden(JobJokerError):
    """Valid credentials, but not allowed to do this."""


class NotFound(JobJokerError):
    """The job, worker or user named does not exist."""


class MethodNotAllowed(JobJokerError):
    """The resource exists but this method may not change it (the server owns it)."""


class Conflict(JobJokerError):
    """The request is valid but the current state forbids it (deleting an active job, say)."""


class InvalidTransition(Conflict):
    """A job status change the state machine does not allow."""


class TooLarge(JobJokerError):
    """A body, parameter set or worker file exceeds its configured limit."""


class ValidationError(JobJokerError):
    """Well-formed but invalid content: worker code that does not parse, bad parameters."""

    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line


class TooManyRequests(JobJokerError):
    """Throttled (failed logins): try again after ``retry_after`` seconds."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(JobJokerError):
    """A dependency (database, supervisor) is away, or the server is busy; the request may
    succeed later (after ``retry_after`` seconds, when given)."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(Unavailable):
    """The server has no connection to the database (it could not connect, or the connection
    was lost): the storage says so instead of the driver's error, which it logs once."""


class StartupError(JobJokerError):
    """The server cannot start (data dir locked, database unreachable); printed, then exit."""


def is_disk_full(error):
    """Whether ``error`` (or an error it wraps or arose from) says the disk or a quota is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _says_disk_full(error):
            return True
        wrapped = [a for a in getattr(error, "args", ())[:1] if isinstance(a, BaseException)]
        error = wrapped[0] if wrapped else (error.__cause__ or error.__context__)
    return False


def _says_disk_full(error):
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    if getattr(error, "pgcode", None) == _POSTGRES_FULL or \
            getattr(error, "sqlstate", None) == _POSTGRES_FULL:
        return True
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool) and \
            args[0] in _MYSQL_FULL and type(error).__module__.split(".")[0] in (
                "pymysql", "MySQLdb", "mysql", "peewee"):
        return True
    text = str(error).lower()
    return any(words in text for words in _FULL_WORDS)
