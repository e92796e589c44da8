"""Database outages as the server lives through them: noticed once, logged once, ended once.

Contract: ``Outage()`` is told, from the storage's threads, of each piece of work that failed
for want of a connection (``failed(error, kind)``, ``kind`` ``"read"`` or ``"write"``) and of
each that succeeded on a live one (``succeeded()``, cheap when there is no outage). The first
failure logs one ERROR line with the driver's reason (no traceback: a refused connection has
nothing to show) and what it means; the others are only counted. The first success after them
logs one WARNING line: how long it lasted and how many reads and writes failed meanwhile, then
calls the ``on_end`` callback (from that thread). ``silent(seconds, error)`` says a connection
was given up on after waiting that long for an answer (a link gone silent): a WARNING, at most
once a minute (``SILENT_LOG_SECONDS``), with how many were left out, since a new connection
usually works at once and no outage follows to be logged. ``since`` is the wall-clock time the
outage began (None while the database answers), for ``/health`` and metrics. Thread-safe;
imports only ``jobjoker.logthrottle``.
"""
import logging
import threading
import time

from jobjoker.logthrottle import LogThrottle

log = logging.getLogger("jobjoker.storage")
SILENT_LOG_SECONDS = 60.0


def one_line(error):
    """A driver's message on one line (psycopg2's span several, indented by tabs)."""
    return " ".join(str(error).split()) or type(error).__name__


class Outage:
    """Whether the database is away, since when, and what failed meanwhile."""

    def __init__(self, on_end=None):
        self.on_end = on_end
        self.since = None  # time.time() when the current outage began
        self._began = None  # time.monotonic() of the same
        self._failures = {}  # kind -> failures in the current outage
        self._lock = threading.Lock()
        self._silences = LogThrottle(log, SILENT_LOG_SECONDS)

    def failed(self, error, kind):
        with self._lock:
            first = self._began is None
            if first:
                self._began, self.since = time.monotonic(), time.time()
            self._failures[kind] = self._failures.get(kind, 0) + 1
        if first:
            log.error("the database is unavailable: requests that need it get 503, and job "
                      "output waits in the jobs' spool files until it is back (stores are "
                      "retried with back-off); logged again when it is back. The driver said: "
                      "%s", one_line(error))

    def silent(self, seconds, error):
        with self._lock:
            self._silences.log("silent", logging.WARNING, "a database connection sent nothing "
                               "for %.0f s and was dropped: the link went silent (a network "
                               "partition, a firewall that forgot the connection, a paused "
                               "host); the next statement connects anew. The driver said: %s",
                               seconds, one_line(error))

    def succeeded(self):
        if self._began is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self._began is None:
                return
            lasted, failures = time.monotonic() - self._began, self._failures
            self._began, self.since, self._failures = None, None, {}
        log.warning("the database is back after %.1f s; %d reads and %d writes failed "
                    "meanwhile (requests got 503; job output is being stored now)", lasted,
                    failures.get("read", 0), failures.get("write", 0))
        if self.on_end is not None:
            self.on_end()
