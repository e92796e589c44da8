"""The storage's threads: each holds its own database connection, and gets a new one when the
database took the old one away.

Contract: ``ConnectionThreads(database, name, count, outage)`` starts ``count`` threads taking
tasks from one queue (``submit(task)``); ``stop()`` lets the queued ones run, then ends them,
each closing its connection. ``run(work, kind, stage)``, called by a task on its thread, runs
``work()`` and returns ``(result, error)``; it is the one place that reconnects, for every
database alike:

- Work that failed because its connection is gone (``models.connection_gone``), or with any
  ``OperationalError``/``InterfaceError``, drops the connection: the next work connects afresh.
- A connection opened before may have died while its thread was idle (a restart of the
  database, a dropped link): its next work finds out, and runs once more on a fresh connection
  where nothing can have been done twice: a read (``kind`` "read"), or a transaction whose BEGIN
  failed (``kind`` "write", ``stage`` still empty: the storage puts "begun" in it once inside
  the transaction and "committing" once its function returned). Work of ``kind`` "call" (outside
  a transaction, it may have written) never runs twice.
- A connection found lost only after its work waited SILENT_SECONDS or more was not closed but
  went silent (the driver gave up waiting: ``jobjoker.dblink``): ``outage.silent`` logs it, at
  most once a minute, whether or not the work then runs again.
- Work that still finds no connection returns ``errors.DatabaseUnavailable`` (the driver's
  error as its cause), saying whether anything may have been done, and tells ``outage``;
  work that succeeded on a live connection tells ``outage`` too (which logs the end).

``finished_at`` is when one of them last finished work without error (``time.monotonic()``).
"""
import queue
import threading
import time

import peewee

from jobjoker import models
from jobjoker.errors import DatabaseUnavailable

_STOP = object()
# A closed or refused connection fails within milliseconds; one found dead after this long was
# silent until its driver's timeout gave up on it.
SILENT_SECONDS = 5.0


class ConnectionThreads:
    """Threads taking tasks from one queue, each with its own database connection."""

    def __init__(self, database, name, count, outage):
        self.database = database
        self.outage = outage
        self.queue = queue.SimpleQueue()
        # When one of these threads last finished a task without error (time.monotonic(), set
        # by the task): a database that keeps finishing others' work is busy, not locked or
        # away; one that only fails (locked: each write gives up after the busy timeout) is not.
        self.finished_at = time.monotonic()
        self.threads = [threading.Thread(target=self._serve, name="%s-%d" % (name, i),
                                         daemon=True) for i in range(count)]
        for thread in self.threads:
            thread.start()

    def submit(self, task):
        self.queue.put(task)

    def _serve(self):
        while True:
            task = self.queue.get()
            if task is _STOP:
                self.disconnect()
                return
            task()

    def disconnect(self):
        """Forget this thread's connection; its next statement opens a new one."""
        try:
            self.database.close()
        except Exception:  # a dead connection cannot be closed cleanly: forget it anyway
            pass

    def run(self, work, kind, stage=None):
        """Thread: ``work()`` as ``(result, error)``, reconnecting as the module says."""
        stale = not self.database.is_closed()  # opened earlier: it may have died since
        while True:
            began = time.monotonic()
            try:
                result = work()
            except BaseException as e:  # handed to the caller, never lost in the thread
                gone = models.connection_gone(self.database, e)
                if gone and time.monotonic() - began >= SILENT_SECONDS:
                    self.outage.silent(time.monotonic() - began, e)
                if gone or isinstance(e, (peewee.OperationalError, peewee.InterfaceError)):
                    self.disconnect()
                if not gone:
                    return None, e
                if stale and (kind == "read" or kind == "write" and not stage):
                    stale = False  # nothing was done: once more, on a fresh connection
                    continue
                self.outage.failed(e, "read" if kind == "read" else "write")
                return None, unavailable(e, kind == "call" or "committing" in (stage or ()))
            if models.connection_lost(self.database):  # the work caught its failure itself
                self.disconnect()
            elif not self.database.is_closed():
                self.outage.succeeded()
            self.finished_at = time.monotonic()
            return result, None

    def stop(self):
        """Let the queued tasks run, then end every thread (each takes one _STOP and exits)."""
        for _ in self.threads:
            self.queue.put(_STOP)
        for thread in self.threads:
            thread.join()


def unavailable(error, maybe_done):
    """What a caller is told when there is no connection to the database (``error``: the
    driver's, logged once by the outage, kept as the cause)."""
    if maybe_done:
        message = "the database is unavailable (the server lost its connection to it); what " \
                  "was asked may still have taken effect: check before trying again"
    else:
        message = "the database is unavailable (the server has no connection to it); " \
                  "nothing was done: try again shortly"
    error_for_caller = DatabaseUnavailable(message, retry_after=1)
    error_for_caller.__cause__ = error
    return error_for_caller
