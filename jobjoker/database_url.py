"""Database URLs: the kinds of database the server opens, and a URL fit to show.

Contract: ``check_database_url(url)`` raises a ``StartupError`` for a URL whose scheme is not
one of ``DATABASE_SCHEMES`` or that names no database (no path after the host), saying what a
good one looks like; it opens nothing. ``redact_url(url)`` is the URL with its password replaced
by ``***``, for every message and log line that names a database. Standard library and our
errors only.
"""
import urllib.parse

from jobjoker.errors import StartupError

DATABASE_SCHEMES = ("sqlite", "mysql", "mysql+pymysql", "postgres", "postgresql")


def check_database_url(url):
    """Refuse a database URL that cannot work, saying what a good one looks like."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in DATABASE_SCHEMES:
        raise StartupError("database URL %r: the scheme must be one of %s, e.g. "
                           "sqlite:///path/to/file.sqlite3 or mysql://user:pass@host:3306/db"
                           % (redact_url(url), ", ".join(DATABASE_SCHEMES)))
    if not parts.path.strip("/"):
        raise StartupError("database URL %r names no database (the path after the host)"
                           % redact_url(url))


def redact_url(url):
    """A database URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":%s@" % parts.password, ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url
