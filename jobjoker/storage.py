"""The database off the IOLoop: one writer thread, a few reader threads, results back on the loop.

Contract: ``Storage(database, hub)`` runs every statement on threads of its own, each holding
its own connection (Peewee keeps one connection per thread), so the IOLoop only parses, routes
and writes sockets.

- ``await transaction(fn, *args)`` runs ``fn(tx, *args)`` on the **writer** thread inside one
  transaction (``Transaction``). Once it has committed, the events ``fn`` gave to
  ``tx.publish(event)`` are published on the loop, in commit order (a few milliseconds of them
  per callback, so that a big write never holds the loop), before the caller resumes; if it
  raises, it is rolled back, nothing is published and the error reaches the caller. Writes
  run one at a time in the order they were submitted, so SQLite's single writer is ours by
  construction, and a write's statements share one connection and one transaction on MySQL
  and PostgreSQL.
- ``await read(fn, *args)`` runs ``fn(*args)`` on one of the **reader** threads, each statement
  seeing what was committed when it ran (no transaction around them: most reads are one
  statement, and on MySQL a BEGIN and a COMMIT are two more round trips). Reads never wait
  behind writes (SQLite in WAL mode keeps readers beside its writer; MySQL and PostgreSQL give
  each reader its own connection), and a long read (a big page, a search, a backup) holds one
  reader, not the loop or the writer.
- ``await call(fn, *args)`` runs ``fn(*args)`` on the writer thread outside any transaction:
  for what manages its own (the schema migration, whose DDL MySQL commits statement by
  statement).
- ``await close()`` lets queued work finish, then closes each thread's connection.
- ``writing_for()`` says how long the oldest write not yet settled has waited or run (0 when
  none): a database that hangs (MariaDB waiting for disk space, a lock held elsewhere) shows
  there, while reads may still answer. ``ping()`` asks the database to answer at all, one ping
  at a time; ``pinging_for()`` says how long the one in flight has waited.
- **Answering in time.** Work submitted while ``answer_within(seconds)`` is set in the caller's
  context (the web layer sets it for every request: ``ANSWER_SECONDS``) raises ``Unavailable``
  once it has waited that long while the threads it waits for finished nothing (a database
  that is merely busy, finishing others' work, is waited for), instead of holding the request.
  If its thread had not begun it
  by then, it is never done (the client is told nothing was done); if it had, it runs to its end
  (the client is told it may still take effect). Work without it (the server's own: ingestion,
  job ends) always waits: it must not be given up half-way. The server's background tasks run
  in a context of their own (``detached``) so that they never inherit a request's limit.

**Reconnecting**, for every database alike, is the threads' (``jobjoker.dbthreads``): a lost
connection is dropped and opened afresh, work that finds one dead after an idle spell runs once
more where that is harmless, and work that still finds none raises ``DatabaseUnavailable``.
``outage`` (``jobjoker.outage``) logs an outage once and its end once, with what failed
meanwhile; ``on_recovery(callback)`` has ``callback`` called on the loop when one ends.

**Timing.** ``time_work(observe)`` has ``observe(pool, queued, ran)`` called on the thread after
each piece of work it ran: ``pool`` "read" (the readers) or "write" (the writer: transactions
and calls), the seconds it waited in the queue for a thread and the seconds the thread took
over it (its statements, round trips and any reconnect). Work given up before a thread took it
is not timed. Two clock readings a piece: ``/metrics`` keeps them (``jobjoker.metrics``).
"""
import asyncio
import collections
import contextlib
import contextvars
import itertools
import logging
import threading
import time

import peewee

from jobjoker.dbthreads import ConnectionThreads
from jobjoker.errors import Unavailable
from jobjoker.outage import Outage

log = logging.getLogger(__name__)

READERS = 3  # reader threads: a long read holds one, requests and streams use the others
PUBLISH_SLICE = 0.005  # seconds of publishing events in one callback of the loop
# How long a request waits for the database before it is answered 503: every statement takes
# milliseconds, so this long means locked, hung or gone (SQLite's own busy wait is 5 s).
ANSWER_SECONDS = 2.0
_answer_within = contextvars.ContextVar("jobjoker_answer_within", default=None)


def answer_within(seconds):
    """Let database work submitted from here on in this context wait at most ``seconds``
    (None: without limit)."""
    _answer_within.set(seconds)


def detached(function, *args):
    """Call ``function(*args)`` in a fresh context: what it submits (and the tasks it starts)
    never inherit a request's ``answer_within``."""
    return contextvars.Context().run(function, *args)


class Transaction:
    """What a write function may do besides its statements: announce changes (published on the
    loop once the transaction has committed), run code on the writer thread right after the
    commit (``on_commit``: to move state that must not move unless the data did), try a part
    in a savepoint whose failure undoes that part alone, its events and hooks included, and
    tell the storage's end hooks of a job that reached a final status (``job_ended``, called by
    ``jobstore``'s transitions only: they write, in this same transaction, what follows an
    end, such as a retry or a webhook's delivery, so it happens exactly once with it)."""

    def __init__(self, database, end_hooks=()):
        self.database = database
        self.events = []
        self.committed = []  # callbacks for after the commit
        self.end_hooks = end_hooks

    def job_ended(self, job):
        """``job`` (its row, just moved to a final status) to each end hook: ``hook(tx, job)``
        on the writer thread, inside this transaction."""
        for hook in self.end_hooks:
            hook(self, job)

    def publish(self, event):
        self.events.append(event)

    def on_commit(self, callback):
        self.committed.append(callback)

    @contextlib.contextmanager
    def savepoint(self):
        events, committed = len(self.events), len(self.committed)
        try:
            with self.database.atomic():
                yield
        except BaseException:
            del self.events[events:], self.committed[committed:]
            raise


class Storage:
    """Runs database work on its threads and hands results (and events) back to the loop."""

    def __init__(self, database, hub, readers=READERS):
        self.database = database
        self.hub = hub
        self._write_lock = ("IMMEDIATE",) if isinstance(database, peewee.SqliteDatabase) else ()
        self._loop = None
        self.outage = Outage(on_end=self._outage_ended)
        self._on_recovery = []
        self._writer = ConnectionThreads(database, "jobjoker-db-writer", 1, self.outage)
        self._readers = ConnectionThreads(database, "jobjoker-db-reader", readers,
                                          self.outage)
        self._closed = False
        # Writes settled but not yet published, in commit order: [future, result, events, error,
        # events published so far]. Published in slices so that one big pass of ingestion
        # (hundreds of jobs' entries for hundreds of subscribers) never holds the loop long.
        self._unpublished = collections.deque()
        self._publishing = False
        self._writes = {}  # unsettled writes: ticket -> time.monotonic() when submitted
        self._tickets = itertools.count()
        self._ping = None  # (future, time.monotonic() when sent) of the ping in flight
        self._observe = None  # time_work's callback
        # hook(tx, job) for each job that reaches a final status (Transaction.job_ended)
        self.end_hooks = []

    def time_work(self, observe):
        """Call ``observe(pool, queued, ran)`` on the storage's threads after each piece of
        work (see the module's docstring); None: stop timing."""
        self._observe = observe

    def on_recovery(self, callback):
        """Call ``callback()`` on the loop each time the database answers again after an
        outage."""
        self._on_recovery.append(callback)

    def _outage_ended(self):
        for callback in self._on_recovery:  # on a thread: the loop runs them
            with contextlib.suppress(RuntimeError):  # (a closed loop runs nothing)
                self._loop.call_soon_threadsafe(callback)

    def _submit(self, threads, work, settle, limited=True, kind="read", stage=None):
        """Queue ``work`` for ``threads``; ``kind`` and ``stage`` say whether it may run again
        after its connection died (``ConnectionThreads.run``)."""
        if self._closed:
            raise RuntimeError("the storage is closed")
        loop = self._loop = asyncio.get_running_loop()
        future = loop.create_future()
        limit = _answer_within.get() if limited else None
        claim = _Claim()
        pool = "read" if threads is self._readers else "write"
        submitted = time.monotonic()

        def task():
            if not claim.begin():  # its caller gave up before it began: it never happens
                with contextlib.suppress(RuntimeError):  # (a closed loop waits for nothing)
                    loop.call_soon_threadsafe(settle, future, None, None, None)
                return
            began = time.monotonic()
            result, error = threads.run(work, kind, stage)
            observe = self._observe
            if observe is not None:
                observe(pool, began - submitted, time.monotonic() - began)
            events = None
            if isinstance(result, _Committed):
                result, events = result.value, result.events
            try:
                loop.call_soon_threadsafe(settle, future, result, events, error)
            except RuntimeError:  # the loop is closed: nobody waits for this any more
                log.debug("a database result came after its event loop closed")

        threads.submit(task)
        if settle == self._settle_write:
            ticket = next(self._tickets)
            self._writes[ticket] = time.monotonic()
            future.add_done_callback(lambda _: self._writes.pop(ticket, None))
        if limit is None:
            return future
        return self._answered(future, limit, claim, threads)

    @staticmethod
    async def _answered(future, limit, claim, threads):
        """``future``'s result, or ``Unavailable`` once ``limit`` seconds have passed in which
        its threads finished nothing: a busy database (a long queue behind ingestion on a loaded
        machine) is waited for, only one that stopped answering is given up on."""
        began = time.monotonic()
        try:
            while True:
                # Short steps, so that the answer comes ``limit`` after the database last
                # finished anything, not up to twice that.
                step = max(limit - (time.monotonic() - began), limit / 4)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), step)
                except asyncio.TimeoutError:
                    if time.monotonic() - threads.finished_at >= limit:
                        raise
        except asyncio.TimeoutError:
            # Nobody awaits its outcome any more: retrieve it, so that no error goes unseen.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            if claim.abandon():
                future.cancel()  # still queued: its thread will skip it
                raise Unavailable("the database did not answer within %g s (it is locked, "
                                  "busy or away); nothing was done: try again shortly" % limit)
            raise Unavailable("the database did not answer within %g s (it is locked, busy "
                              "or away); what was asked may still take effect when it answers: "
                              "check before trying again" % limit)

    @staticmethod
    def _resolve(future, result, events, error):
        """On the loop: hand a read's result (or error) to its caller."""
        if future.done():  # cancelled: its caller gave up
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _settle_write(self, future, result, events, error):
        """On the loop: queue a write's events (published in order, then its result given);
        they go out even if the caller gave up waiting: they happened."""
        self._unpublished.append([future, result, events or (), error, 0])
        if not self._publishing:
            self._publishing = True
            self._publish()

    def _publish(self):
        """Publish queued events for about PUBLISH_SLICE seconds, then let the loop serve
        others and come back. A write's caller resumes once its events are out."""
        deadline = time.monotonic() + PUBLISH_SLICE
        while self._unpublished:
            item = self._unpublished[0]
            future, result, events, error, done = item
            while done < len(events):
                self.hub.publish(events[done])
                done += 1
                if done < len(events) and time.monotonic() > deadline:
                    item[4] = done
                    asyncio.get_running_loop().call_soon(self._publish)
                    return
            self._unpublished.popleft()
            self._resolve(future, result, None, error)
            if self._unpublished and time.monotonic() > deadline:
                asyncio.get_running_loop().call_soon(self._publish)
                return
        self._publishing = False

    def transaction(self, fn, *args, **kwargs):
        """``fn(tx, *args, **kwargs)`` in one write transaction; its events published after
        commit."""
        stage = []

        def work():
            del stage[:]
            tx = Transaction(self.database, tuple(self.end_hooks))
            # On SQLite, BEGIN IMMEDIATE: a deferred transaction that reads first and then
            # writes fails at once ("database is locked", no busy wait) when another server on
            # the same file committed in between; an immediate one waits its turn.
            with self.database.atomic(*self._write_lock):
                stage.append("begun")
                value = fn(tx, *args, **kwargs)
                stage.append("committing")
            for callback in tx.committed:
                callback()
            return _Committed(value, tx.events)
        return self._submit(self._writer, work, self._settle_write, kind="write", stage=stage)

    def writing_for(self):
        """Seconds the oldest unsettled write has waited or run so far (0.0 when none)."""
        if not self._writes:
            return 0.0
        return time.monotonic() - min(self._writes.values())

    async def ping(self, limit=ANSWER_SECONDS):
        """Ask the database to answer a trivial statement within ``limit`` seconds (else
        ``Unavailable``); one ping at a time, shared by whoever asks meanwhile."""
        if self._ping is None or self._ping[0].done():
            self._ping = (self._submit(self._readers, self._select_one, self._resolve,
                                       limited=False), time.monotonic())
        future, sent = self._ping
        try:
            await asyncio.wait_for(asyncio.shield(future), max(0.0, sent + limit -
                                                                time.monotonic()))
        except asyncio.TimeoutError:
            raise Unavailable("the database has not answered for %.0f s (it is locked, busy "
                              "or away)" % (time.monotonic() - sent))

    def _select_one(self):
        self.database.execute_sql("SELECT 1")

    def pinging_for(self):
        """Seconds the ping in flight has waited (0.0 when none is)."""
        if self._ping is None or self._ping[0].done():
            return 0.0
        return time.monotonic() - self._ping[1]

    def read(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on a reader thread."""
        return self._submit(self._readers, lambda: fn(*args, **kwargs), self._resolve)

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the writer thread, outside any transaction."""
        return self._submit(self._writer, lambda: fn(*args, **kwargs), self._settle_write,
                            kind="call")

    async def close(self):
        """Finish what is queued, then close every thread's connection."""
        if self._closed:
            return
        self._closed = True
        # Joining threads blocks: do it off the loop, which must still run the results they post.
        await asyncio.get_running_loop().run_in_executor(None, self._stop_threads)
        while self._unpublished:  # the last events go out before the storage says it is closed
            await asyncio.sleep(0)

    def _stop_threads(self):
        self._writer.stop()
        self._readers.stop()


class _Claim:
    """Who decides a submitted task's fate: its thread beginning it, or its caller giving up
    first (then it never runs)."""

    __slots__ = ("_lock", "_state")

    def __init__(self):
        self._lock = threading.Lock()
        self._state = None  # "begun" or "abandoned"

    def begin(self):
        with self._lock:
            if self._state is None:
                self._state = "begun"
            return self._state == "begun"

    def abandon(self):
        """True when the task had not begun (it now never will)."""
        with self._lock:
            if self._state is None:
                self._state = "abandoned"
            return self._state == "abandoned"


class _Committed:
    """A write's result with the events to publish once it has committed."""

    __slots__ = ("value", "events")

    def __init__(self, value, events):
        self.value = value
        self.events = events
