"""The in-process event hub: how the domain tells live views what changed.

Contract: ``EventHub.publish(event)`` calls, synchronously on the IOLoop and in subscription
order, the subscribers of each topic the event belongs to; a subscriber that raises is logged
and skipped, never allowed to break the publisher. Events are dicts with a ``type``:
  {"type": "job", "action": "created"|"status"|"updated"|"deleted", "job": {...as the API
   shows it...}}   ("updated": a field other than the status changed, e.g. the pid)
  {"type": "entries", "job_id": J, "stream": "log"|"response", "seq": K, "block": bytes, "count": N}
  {"type": "worker", "action": "saved"|"deleted", "name": NAME}
  {"type": "usage", "job_id": J, "message": TEXT}   (a running job's latest resource sample,
   published by jobjoker.usage only while the job has followers; TEXT is its stream message)
  {"type": "progress", "job": J, "progress": P, "message": M, "revision": R}
Progress events are coalesced per job: at most one every ``PROGRESS_INTERVAL`` seconds goes to
the subscribers; one that comes sooner is held (a newer one replaces it) and sent when the
interval is over, on the loop's timer, so the last is never lost. A job event of the same job
sends the held one first, so subscribers still see a job's events in revision order.
Topics keep publishing cheap with many subscribers: a job's id (its entries and its changes, for
whoever follows that job), ``CHANGES`` (every job and worker change, not entries), and ``ALL``.
Subscribers must not block: they queue and return (the stream followers bound their queues).
"""
import asyncio
import collections
import logging
import time

from jobjoker.states import FINAL_STATES

log = logging.getLogger(__name__)

CHANGES = "*changes"
ALL = "*all"
PROGRESS_INTERVAL = 0.1  # seconds between two progress events of a job (~10 a second)


def topics_of(event):
    """The topics an event is published to (besides ``ALL``)."""
    if event["type"] in ("entries", "usage"):
        return (event["job_id"],)
    if event["type"] == "job":
        return (event["job"]["id"], CHANGES)
    if event["type"] == "progress":
        return (event["job"], CHANGES)
    return (CHANGES,)


class EventHub:
    """Synchronous publish/subscribe within the server process."""

    def __init__(self, progress_interval=PROGRESS_INTERVAL):
        self._subscribers = collections.defaultdict(list)  # topic -> callbacks
        self.progress_interval = progress_interval
        self._progress = {}  # job id -> _Throttle

    def subscribe(self, callback, topic=ALL):
        """Call ``callback(event)`` for every event of ``topic``; returns the unsubscriber."""
        self._subscribers[topic].append(callback)

        def unsubscribe():
            callbacks = self._subscribers.get(topic)
            if callbacks and callback in callbacks:
                callbacks.remove(callback)
                if not callbacks:
                    del self._subscribers[topic]
        return unsubscribe

    def subscriber_count(self, topic=None):
        """How many subscribers a topic has (all topics together when None)."""
        if topic is not None:
            return len(self._subscribers.get(topic, ()))
        return sum(len(callbacks) for callbacks in self._subscribers.values())

    def publish(self, event):
        kind = event["type"]
        if kind == "progress":
            self._offer_progress(event)
            return
        if kind == "job":
            job = event["job"]
            throttle = self._progress.get(job["id"])
            if throttle is not None:
                self._send_held(throttle)  # before the change that comes after it
                if event["action"] == "deleted" or job["status"] in FINAL_STATES:
                    self._progress.pop(job["id"], None)
        self._deliver(event)

    def _offer_progress(self, event):
        """Send a progress event now, or hold it until its job's interval is over."""
        now = time.monotonic()
        throttle = self._progress.get(event["job"])
        if throttle is None:
            if len(self._progress) > 10000:  # jobs that went quiet: forget them
                self._progress = {job: t for job, t in self._progress.items()
                                  if t.timer is not None or now - t.sent < 60}
            throttle = self._progress[event["job"]] = _Throttle()
        wait = throttle.sent + self.progress_interval - now
        if wait <= 0 and throttle.held is None:
            throttle.sent = now
            self._deliver(event)
            return
        throttle.held = event
        if throttle.timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a unit test): nothing to wait on
                self._send_held(throttle)
                return
            throttle.timer = loop.call_later(max(wait, 0), self._send_held, throttle)

    def _send_held(self, throttle):
        if throttle.timer is not None:
            throttle.timer.cancel()
            throttle.timer = None
        event, throttle.held = throttle.held, None
        if event is not None:
            throttle.sent = time.monotonic()
            self._deliver(event)

    def _deliver(self, event):
        for topic in (*topics_of(event), ALL):
            for callback in list(self._subscribers.get(topic, ())):
                try:
                    callback(event)
                except Exception:
                    log.exception("event subscriber %r failed on a %s event", callback,
                                  event["type"])


class _Throttle:
    """One job's progress events: when the last went out, the one held, its timer."""

    __slots__ = ("sent", "held", "timer")

    def __init__(self):
        self.sent = float("-inf")
        self.held = None
        self.timer = None
