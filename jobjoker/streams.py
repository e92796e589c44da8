"""Live streams: following one job's entries and status, and following every change.

Contract: a ``JobFollower`` sends one subscriber, in order and exactly once, every log and
response entry of a job from the requested offsets on, then each new one as it is appended, plus
a ``status`` message at the start and on every change, a ``progress`` message for each progress
event (coalesced by the hub, never before the first ``status``), and ``end`` once the job is
final and all entries are out. Backlog comes from the log store in pages (read on the storage's reader
threads) and live entries from the event hub: the follower subscribes first and goes live only
once a read of the store has reached the cursor *and* every entry announced meanwhile, so the
boundary between the two has no gap and no duplicate. Copies of the job are ordered by their
``revision``: an older one never follows a newer (a ``progress`` message carries the revision
of the change it tells, and counts as a copy). An ``EventsFollower`` forwards every job and
worker change and every progress event. Both write through an ``Outbox``: a bounded queue drained by one task.
A job follower that falls behind live entries stops queueing them and reads them from the store
at its own pace instead; a subscriber that stops reading altogether (one write stalls for
``stall_timeout`` seconds) or overflows its outbox is closed with ``CLOSE_TOO_SLOW``. Either way
the job and other subscribers are never slowed. All outboxes together hold at most a shared
``MemoryBudget`` (``--stream-memory``), counting what waits here and what their sockets have not
taken yet: a backlog page reserves its room before it is read (waiting for it), a live entry
that does not fit is read from the store later, and a message that finds no room closes its
subscriber. A closed subscriber resumes exactly by
reconnecting with the offsets just past what it received. Nothing here knows Tornado: the handler passes in
``write(text) -> awaitable`` and ``close(code, reason)``.
"""
import asyncio
import collections
import json
import logging
import time

from jobjoker import jobstore, spool
from jobjoker.errors import DatabaseUnavailable, NotFound
from jobjoker.events import CHANGES
from jobjoker.jobstore import job_to_dict
from jobjoker.states import FINAL_STATES

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_TOO_SLOW = 1013  # RFC 6455 "Try Again Later"
STALL_SWEEP = 1.0  # seconds between checks for subscribers whose socket takes nothing
PAGE_BYTES = 1024 * 1024  # backlog read per step, in stored chunks (one message each)
PAGE_SLACK = 64 * 1024  # a page's messages are a little longer than its chunks (JSON around)
TOO_SLOW_REASON = ("subscriber too slow: reconnect with log_from and response_from just past "
                   "the last entries received")
BUSY_REASON = "server's stream buffers full (--stream-memory): reconnect with your offsets"


class Closed(Exception):
    """The subscriber is gone; stop working for it."""


class Outbox:
    """A bounded queue of messages for one subscriber, handed to its socket in batches.

    While the socket is taking a batch, new messages wait here (at most ``limit`` bytes);
    once it has taken it, everything waiting goes as the next batch. So a subscriber costs one
    socket write per batch and one stall timer per batch, never a task or a timer per message
    (hundreds of subscribers follow a busy job), and a slow one holds at most about twice the
    limit in memory. A batch the socket has not taken within ``stall_timeout`` (checked once a
    second) closes it.
    """

    def __init__(self, write, close, limit, stall_timeout, budget=None):
        self._write = write
        self._close = close
        self.limit = limit
        self.stall_timeout = stall_timeout
        # Shared by every subscriber (--stream-memory): what they hold together, queued here
        # or in their sockets' buffers, stays below it.
        self.budget = budget
        self._held = 0  # bytes of the budget held: queued, in flight, or reserved
        self._credit = 0  # reserved, not yet queued
        self._in_flight_bytes = 0
        self._frames = collections.deque()
        self._size = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._in_flight = None  # the batch the socket is taking
        self._sent_at = 0.0
        self._closing = False
        self.closed = False

    @property
    def size(self):
        """Bytes waiting for the socket to take the batch in flight."""
        return self._size

    def put(self, frame, closing=False):
        """Queue ``frame``; close the subscriber (and raise ``Closed``) past the limit.
        ``closing``: the last message; the socket is closed normally once it is sent."""
        if self.closed or self._closing:
            raise Closed()
        if self._size + len(frame) > self.limit and self._frames:
            self.shut(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
            raise Closed()
        if self.budget is not None:
            paid = min(self._credit, len(frame))  # reserved by reserve() for a backlog page
            if not self.budget.take(len(frame) - paid):
                self.shut(CLOSE_TOO_SLOW, BUSY_REASON)
                raise Closed()
            self._credit -= paid
            self._held += len(frame) - paid
        self._frames.append(frame)
        self._size += len(frame)
        self._closing = closing
        self._drained.clear()
        if self._in_flight is None:
            self._send()

    def has_room(self, size):
        """Whether ``size`` more bytes fit this subscriber's share and the shared budget."""
        return self._size + size <= self.limit and \
            (self.budget is None or self.budget.fits(size))

    async def reserve(self, size):
        """Wait until the shared budget lends ``size`` bytes, for the next ``put``s;
        ``unreserve()`` gives back what they did not use."""
        while self.budget is not None and not self.closed:
            if self.budget.take(size):
                self._credit += size
                self._held += size
                break
            await self.budget.wait()
        if self.closed:
            self._give_back(self._held)
            raise Closed()

    def unreserve(self):
        self._give_back(self._credit)
        self._credit = 0

    async def drained(self, below=0):
        """Wait until no more than ``below`` bytes are queued."""
        while self._size > below and not self.closed:
            self._drained.clear()
            await self._drained.wait()
        if self.closed:
            raise Closed()

    def _send(self):
        future = None
        try:
            while self._frames:
                future = self._write(self._frames.popleft())
        except Exception:  # the socket closed under us: nothing more to do for this subscriber
            self.stop()
            return
        self._in_flight_bytes += self._size  # held until the socket has taken them
        self._size = 0
        self._drained.set()
        if future is not None:
            self._in_flight = future
            self._sent_at = time.monotonic()
            _watch_stalls(self)
            future.add_done_callback(self._sent)

    def _sent(self, future):
        self._in_flight = None
        self._give_back(self._in_flight_bytes)
        self._in_flight_bytes = 0
        if self.closed:
            return
        if future.cancelled() or future.exception() is not None:
            self.stop()
        elif self._frames:
            self._send()
        elif self._closing:
            self.shut(CLOSE_NORMAL, "job ended")

    def stalled(self, now):
        """Whether the batch in flight has waited for the socket longer than allowed."""
        return self._in_flight is not None and now - self._sent_at > self.stall_timeout

    def shut(self, code, reason):
        if not self.closed:
            self.stop()
            self._close(code, reason[:120])  # a close reason holds at most 123 bytes

    def _give_back(self, size):
        size = min(size, self._held)
        if self.budget is not None and size:
            self._held -= size
            self.budget.give_back(size)

    def stop(self):
        self.closed = True
        self._frames.clear()
        self._size = 0
        # What the socket still holds is freed with it: a closed subscriber holds nothing.
        self._give_back(self._held)
        _outboxes.discard(self)
        self._drained.set()


# One sweep a second over the outboxes with a batch in flight finds the stalled ones: a timer
# per batch would cost more than the write it guards, times hundreds of subscribers.
_outboxes = set()
_sweepers = {}  # event loop -> its pending sweep (tests run one loop after another)


def _watch_stalls(outbox):
    _outboxes.add(outbox)
    loop = asyncio.get_running_loop()
    if loop not in _sweepers:
        _sweepers[loop] = loop.call_later(STALL_SWEEP, _sweep, loop)


def _sweep(loop):
    del _sweepers[loop]
    now = time.monotonic()
    for outbox in [o for o in _outboxes if o._in_flight is None or o.closed]:
        _outboxes.discard(outbox)
    for outbox in [o for o in _outboxes if o.stalled(now)]:
        outbox.shut(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
    for key in [key for key in _sweepers if key.is_closed()]:
        del _sweepers[key]
    if _outboxes:
        _sweepers[loop] = loop.call_later(STALL_SWEEP, _sweep, loop)


def block_message(stream, seq, block, dropped=0):
    """A block of consecutive entries (spool format, the first numbered ``seq``) as one
    message, in UTF-8 bytes. ``dropped``: how many entries before ``seq`` the log cap removed
    since the subscriber's previous message."""
    return b'{"type":"%s","seq":%d%s,"entries":%s}' % (
        stream.encode(), seq, b',"dropped":%d' % dropped if dropped else b"",
        spool.entries_json(block))


def event_message(event):
    """The message for an ``entries`` event, encoded once however many subscribers send it."""
    if "message" not in event:
        event["message"] = block_message(event["stream"], event["seq"], event["block"])
    return event["message"]


class JobFollower:
    """Streams one job to one subscriber."""

    def __init__(self, job_id, offsets, storage, logstore, hub, outbox):
        self.job_id = job_id
        self.cursor = dict(offsets)  # stream -> next entry to send
        self.behind = {stream: True for stream in self.cursor}  # backlog still to read
        self.announced = {stream: 0 for stream in self.cursor}  # past the last entry announced
        self.storage = storage
        self.logstore = logstore
        self.hub = hub
        self.outbox = outbox
        self.final_status = None
        self.revision = -1  # of the last copy of the job sent
        self._early_progress = None  # a progress event that came before the first status
        self._wake = asyncio.Event()
        self._unsubscribe = None
        # The pump task: kept here because the loop holds only a weak reference to a task, and
        # a pump nobody references could be collected mid-stream.
        self._task = None

    def start(self):
        """Subscribe, then send the status and the backlog, then go live."""
        self._unsubscribe = self.hub.subscribe(self.on_event, topic=self.job_id)
        self._task = asyncio.ensure_future(self._pump())

    def stop(self):
        """The subscriber is gone (or must go): stop everything for it."""
        self._unsubscribe_from_hub()
        self.outbox.stop()
        self._wake.set()

    def _unsubscribe_from_hub(self):
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _send_status(self, job):
        if job["revision"] <= self.revision:
            return  # an older copy than the one sent (a read that an event overtook)
        self.revision = job["revision"]
        if job["status"] in FINAL_STATES:
            self.final_status = job["status"]
        self.outbox.put(json.dumps({"type": "status", "job": job}, ensure_ascii=False))
        if self.final_status:
            self._wake.set()  # the pump sends "end" once caught up

    def _send_progress(self, event):
        if self.revision < 0:  # the first status is still being read: it goes first
            self._early_progress = event
            return
        if event["revision"] <= self.revision:
            return  # the copy sent already tells it, or something newer
        self.revision = event["revision"]
        self.outbox.put(json.dumps(event, ensure_ascii=False))

    def on_event(self, event):
        """Hub callback: queue live entries when caught up, else let the pump read them."""
        try:
            if event["type"] == "entries":
                self._on_entries(event)
            elif event["type"] == "usage":
                self._on_usage(event["message"])
            elif event["type"] == "progress":
                self._send_progress(event)
            elif event["type"] == "job":
                if event["action"] == "deleted":
                    self.outbox.shut(CLOSE_NORMAL, "job deleted")
                    self.stop()
                else:  # before the pump's first read, it is the first message
                    self._send_status(event["job"])
        except Closed:
            self.stop()

    def _on_entries(self, event):
        stream, seq, count = event["stream"], event["seq"], event["count"]
        self.announced[stream] = max(self.announced[stream], seq + count)
        cursor = self.cursor[stream]
        if self.behind[stream] or seq > cursor:
            self._fall_behind(stream)
        elif seq + count > cursor:
            if seq == cursor:
                message = event_message(event)
            else:  # started mid-block (log_from inside it): send the part not yet sent
                message = block_message(stream, cursor,
                                        spool.skip_entries(event["block"], cursor - seq))
            if self.outbox.size + len(message) > self.outbox.limit // 2 or \
                    not self.outbox.has_room(len(message)):
                self._fall_behind(stream)  # live faster than it reads: fetch from the store
                return
            self.outbox.put(message)
            self.cursor[stream] = seq + count

    def _on_usage(self, message):
        # A live figure, not an entry: after the first status, never after the end, and left
        # out when the subscriber is busy (the next sample follows within seconds).
        if self.revision >= 0 and not self.final_status and self.outbox.has_room(len(
                message)) and self.outbox.size + len(message) <= self.outbox.limit // 2:
            self.outbox.put(message)

    def _fall_behind(self, stream):
        self.behind[stream] = True
        self._wake.set()

    def _read(self, stream, cursor, max_bytes):
        """Reader thread: the job's entry counts, and blocks of ``stream`` from ``cursor``."""
        job = jobstore.get(self.job_id)
        counts = {"log": job.log_count, "response": job.response_count}
        if cursor >= counts[stream]:
            return counts, []
        return counts, self.logstore.read_blocks(self.job_id, stream, cursor, max_bytes)

    async def _read_backlog(self):
        """Queue one page of backlog for a stream that is behind; False when none is."""
        for stream, behind in self.behind.items():
            if not behind:
                continue
            cursor = self.cursor[stream]
            # The pump waits until the outbox is below a quarter full: this fits the rest.
            # And until all subscribers together hold little enough for it to fit too.
            page = min(PAGE_BYTES, self.outbox.limit // 4)
            await self.outbox.reserve(page + PAGE_SLACK)
            try:
                counts, blocks = await self.storage.read(self._read, stream, cursor, page)
                if self.outbox.closed:
                    raise Closed()
                if not blocks and cursor < counts[stream]:
                    # Nothing stored past the cursor: a capped log's gap at its end.
                    cursor = self.cursor[stream] = counts[stream]
                for seq, block, count in blocks:
                    self.outbox.put(block_message(stream, seq, block, dropped=seq - cursor))
                    cursor = seq + count
            finally:
                self.outbox.unreserve()
            self.cursor[stream] = cursor
            if blocks:
                return True
            if cursor >= max(counts[stream], self.announced[stream]):
                self.behind[stream] = False  # live from here: the next event starts at cursor
        return False

    async def _pump(self):
        try:
            job = await self.storage.read(jobstore.get, self.job_id)
            self._send_status(job_to_dict(job))
            if self._early_progress is not None:
                self._send_progress(self._early_progress)
                self._early_progress = None
            while not self.outbox.closed:
                if self.outbox.size > self.outbox.limit // 4:
                    await self.outbox.drained(self.outbox.limit // 4)
                    continue
                self._wake.clear()  # before reading: news that comes during the read wakes us
                if await self._read_backlog():
                    continue
                if self.final_status and not any(self.behind.values()):
                    # The outbox closes the socket once this last message is written.
                    self.outbox.put(json.dumps({"type": "end", "status": self.final_status}),
                                    closing=True)
                    self._unsubscribe_from_hub()
                    return
                await self._wake.wait()
        except Closed:
            self.stop()
        except NotFound:  # deleted before its first status could be read
            self.outbox.shut(CLOSE_NORMAL, "job deleted")
            self.stop()
        except DatabaseUnavailable:  # an outage, logged once by the storage: come back later
            self.outbox.shut(CLOSE_TOO_SLOW, "the database is unavailable: reconnect shortly")
            self.stop()
        except Exception:
            log.exception("job %s: streaming to a subscriber failed", self.job_id)
            self.outbox.shut(1011, "server error")
            self.stop()


class EventsFollower:
    """Forwards every job and worker change to one subscriber."""

    def __init__(self, hub, outbox):
        self.hub = hub
        self.outbox = outbox
        self._unsubscribe = None

    def start(self):
        self._unsubscribe = self.hub.subscribe(self.on_event, topic=CHANGES)

    def on_event(self, event):
        if event["type"] == "entries":  # not a change (never on CHANGES); its cache is bytes
            return
        try:
            self.outbox.put(json.dumps(event, ensure_ascii=False))
        except Closed:
            self.stop()

    def stop(self):
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.outbox.stop()
