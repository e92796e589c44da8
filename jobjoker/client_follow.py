"""Following a job's stream from synchronous code: the events, the resume and the back-off.

Contract: ``follow(transport, job_id, log_from, response_from, max_retries)`` (``Client.follow``)
yields ``Event`` objects while the job runs: ``status`` (first, and on every change), one ``log``
or ``response`` event per entry with its ``seq`` (its index in the stream), and ``end`` once the
job is final and every entry has been yielded. It keeps the next index of each stream and, after
any close other than that end (a server restart, a network error, a ``1013`` for a subscriber too
slow), reconnects with ``log_from``/``response_from`` just past what it yielded, so no entry is
lost or repeated. Reconnects back off (0.1 s doubling to 5 s), each logged as a warning on the
``jobjoker.client`` logger; after ``max_retries`` failures in a row with no entry received in
between it gives up and raises the last error. A refusal that a retry cannot change (401, 404:
the job was deleted; an ``UntrustedCertificate``) is raised at once. It runs Tornado's WebSocket
client on a private event loop, so call it from plain synchronous code (or from a thread, inside
an asyncio program); Ctrl-C ends it with ``KeyboardInterrupt`` (``Interruptible``) and it hangs up
on the server whichever way it ends. Following from ``PAST_ANY_END`` transfers no entry: only the
status and the end (``Client.wait``). With ``progress=True`` it also yields ``progress`` events
(``progress``, 0 to 1, and ``message``), as the server sends them: at most ~10 a second, the
last one never lost (the final ``status`` event's job carries it too); one older than a copy
of the job already yielded is skipped.
"""
import asyncio
import dataclasses
import json
import logging
import signal
import threading

import tornado.httpclient
import tornado.iostream
import tornado.websocket

from jobjoker.client_transport import ConnectionFailed, ServerError, UntrustedCertificate, \
    error_for, message_of, quote

# The logger the client has always warned on, and which docs/client.md names: scripts that
# configure it keep seeing the reconnects.
log = logging.getLogger("jobjoker.client")

STREAMS = ("log", "response")
BACKOFF_FIRST = 0.1  # seconds before the first reconnect; doubles on each failure in a row
BACKOFF_MAX = 5.0
PING_INTERVAL = 30  # seconds; a server that vanished without closing is noticed within ~2x this
HANG_UP_SECONDS = 2  # how long a client that stops following waits for the server's close
# A stream offset past the end of any log: following from it yields only status and the end.
PAST_ANY_END = 2 ** 53

# A backlog message carries up to 2,000 entries and an entry can be megabytes long, so Tornado's
# default limit of 10 MiB per message would make such a log impossible to follow.
MAX_MESSAGE_SIZE = 1024 ** 3


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing ``follow`` saw: ``kind`` is ``log`` or ``response`` (with ``seq``, ``message``,
    ``time``), ``status`` (with ``job`` and its ``status``), ``progress`` (with ``progress``,
    0 to 1, and its ``message``; only when asked for) or ``end`` (with the final ``status``)."""

    kind: str
    seq: int | None = None
    message: str | None = None
    time: float | None = None
    status: str | None = None
    job: dict | None = None
    progress: float | None = None

    def __repr__(self):
        fields = self.to_dict()
        if self.job is not None:
            fields["job"] = self.job.get("id")  # the whole job would drown the rest
        return "Event(%s)" % ", ".join("%s=%r" % item for item in fields.items())

    def to_dict(self):
        """The fields that belong to this kind, for JSON output."""
        if self.kind in STREAMS:
            return {"kind": self.kind, "seq": self.seq, "message": self.message,
                    "time": self.time}
        if self.kind == "status":
            return {"kind": self.kind, "status": self.status, "job": self.job}
        if self.kind == "progress":
            return {"kind": self.kind, "progress": self.progress, "message": self.message}
        return {"kind": self.kind, "status": self.status}


def follow(transport, job_id, log_from=0, response_from=0, max_retries=10, progress=False):
    """Yield the job's ``Event``s live from these entry indexes until its end, resuming by
    itself after a dropped connection (see the module docstring); ``progress``: yield its
    progress events too."""
    if in_event_loop():
        raise RuntimeError("Client.follow is synchronous: inside an asyncio program, call "
                           "it from a thread (loop.run_in_executor)")
    cursor = {"log": log_from, "response": response_from}  # the next seq to yield
    # asyncio's own run_until_complete, not Tornado's run_sync: after a Ctrl-C inside it,
    # run_sync leaves a callback that stops the loop again, and the clean-up would fail.
    loop = asyncio.new_event_loop()
    run = Interruptible(loop)
    connection = reading = last_error = last_status = None
    failures = 0
    revision = -1  # of the newest copy of the job seen (a status or a progress)
    try:
        while True:
            if connection is None:
                if failures:
                    run(asyncio.sleep(back_off(job_id, failures, max_retries, last_error,
                                               cursor)))
                try:
                    connection = run(open_stream(transport, job_id, cursor))
                except UntrustedCertificate:
                    raise
                except (ConnectionFailed, ServerError) as e:
                    failures, last_error = failures + 1, e
                    continue
                first_message = True
            reading = loop.create_task(next_message(connection))
            raw = run(reading)
            if raw is None:
                failures += 1
                last_error = ConnectionFailed("the stream closed (code %s%s)" % (
                    connection.close_code,
                    ": %s" % connection.close_reason if connection.close_reason else ""))
                connection.close()  # already closed; this releases Tornado's side of it
                connection = None
                continue
            message = json.loads(raw)
            kind = message.get("type")
            if kind in STREAMS:
                dropped = message.get("dropped", 0)
                if dropped and message["seq"] - dropped == cursor[kind]:
                    cursor[kind] = message["seq"]  # the log cap dropped these entries
                if message["seq"] > cursor[kind]:  # the server skipped entries: ask again
                    failures += 1
                    last_error = ConnectionFailed("the server sent %s from %d, not %d" % (
                        kind, message["seq"], cursor[kind]))
                    run(hang_up(connection))
                    connection = None
                    continue
                # Entries before the cursor were yielded already (an overlap on resume).
                for entry in message["entries"][cursor[kind] - message["seq"]:]:
                    cursor[kind] += 1
                    failures = 0
                    yield Event(kind, cursor[kind] - 1, entry["message"], entry["time"])
            elif kind == "progress":
                if progress and message.get("revision", 0) > revision:
                    revision = message.get("revision", 0)
                    yield Event("progress", message=message.get("message"),
                                progress=message.get("progress"))
            elif kind == "status":
                job = message["job"]
                revision = max(revision, job.get("revision", 0))
                # Each connection starts with the current status; after a reconnect it is
                # news only if the status itself changed meanwhile.
                if not first_message or job["status"] != last_status:
                    last_status = job["status"]
                    yield Event("status", status=job["status"], job=job)
            elif kind == "end":
                yield Event("end", status=message["status"])
                return
            first_message = False  # unknown types are ignored: newer servers may add some
    finally:
        if reading is not None:
            reading.cancel()  # interrupted mid-read (Ctrl-C): the hang-up reads instead
        run.close()
        close_loop(loop, connection)


async def open_stream(transport, job_id, cursor):
    """A WebSocket on the job's stream from ``cursor``, or the ``ClientError`` why not."""
    request = transport.stream_request("/jobs/%s/stream" % quote(job_id), {
        "log_from": cursor["log"], "response_from": cursor["response"]})
    try:
        return await tornado.websocket.websocket_connect(
            request, ping_interval=PING_INTERVAL, max_message_size=MAX_MESSAGE_SIZE)
    except tornado.httpclient.HTTPClientError as e:
        if e.code == 599:  # Tornado's code for "no HTTP reply": timeout, closed stream
            raise ConnectionFailed("cannot reach the JobJoker server at %s: %s"
                                   % (transport.url, e)) from None
        body = e.response.body if e.response is not None else b""
        raise error_for(e.code, message_of(body, e.code, e.message)) from None
    except (OSError, tornado.iostream.StreamClosedError) as e:
        raise transport.unreachable(e) from None


def in_event_loop():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Interruptible:
    """Runs awaitables to completion on a private loop so that Ctrl-C always ends them with a
    ``KeyboardInterrupt`` raised here.

    Python raises ``KeyboardInterrupt`` in whatever frame runs when SIGINT arrives; if that is a
    weakref callback or a ``__del__`` (asyncio drops finished tasks from a WeakSet), the exception
    is printed as "ignored" and lost, and a follower would go on following after Ctrl-C. So, in
    the main thread and while SIGINT has Python's default handler, the loop takes the signal: it
    cancels what runs and the interrupt is raised from ``__call__``, also for a signal that came
    between two calls. ``close()`` gives SIGINT back to Python's default handler.
    """

    def __init__(self, loop):
        self.loop = loop
        self.interrupted = False
        self.current = None
        self.installed = (threading.current_thread() is threading.main_thread() and
                          signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self.installed:
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt)

    def _on_interrupt(self):
        self.interrupted = True
        if self.current is not None:
            self.current.cancel()

    def __call__(self, awaitable):
        """The awaitable's result, or ``KeyboardInterrupt`` once Ctrl-C has been pressed."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.current = asyncio.ensure_future(awaitable, loop=self.loop)
        try:
            result = self.loop.run_until_complete(self.current)
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
        finally:
            self.current = None
        if self.interrupted:
            raise KeyboardInterrupt
        return result

    def close(self):
        if self.installed:
            self.installed = False
            self.loop.remove_signal_handler(signal.SIGINT)  # back to default_int_handler


def back_off(job_id, failures, max_retries, error, cursor):
    """The seconds to wait before the next attempt to follow a job, or raise ``error`` after
    too many attempts."""
    if failures > max_retries:
        raise type(error)("job %s: gave up following after %d failed attempts in a row: %s"
                          % (job_id, failures, error.message), error.status)
    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
    log.warning("job %s: %s; resuming at log %d, response %d in %.1f s", job_id, error.message,
                cursor["log"], cursor["response"], delay)
    return delay


async def next_message(connection):
    """The next message, or None once the connection has closed."""
    return await connection.read_message()


async def hang_up(connection):
    """Close the connection and wait (briefly) for the server's close, so that its socket is
    closed too."""
    connection.close()
    try:
        await asyncio.wait_for(drain(connection), HANG_UP_SECONDS)
    except TimeoutError:
        pass


async def drain(connection):
    while await connection.read_message() is not None:
        pass


def close_loop(loop, connection):
    """Hang up, then cancel what still runs on the private loop (an interrupted read, pings)
    and let it finish, as ``asyncio.run`` does, so that no task is destroyed while pending."""
    try:
        if connection is not None:
            loop.run_until_complete(hang_up(connection))
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()
