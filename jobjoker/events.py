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
Topics keep publishing cheap with many subscribers: a job's id (its entries and its changes, for
whoever follows that job), ``CHANGES`` (every job and worker change, not entries), and ``ALL``.
Subscribers must not block: they queue and return (the stream followers bound their queues).
"""
import collections
import logging

log = logging.getLogger(__name__)

CHANGES = "*changes"
ALL = "*all"


def topics_of(event):
    """The topics an event is published to (besides ``ALL``)."""
    if event["type"] in ("entries", "usage"):
        return (event["job_id"],)
    if event["type"] == "job":
        return (event["job"]["id"], CHANGES)
    return (CHANGES,)


class EventHub:
    """Synchronous publish/subscribe within the server process."""

    def __init__(self):
        self._subscribers = collections.defaultdict(list)  # topic -> callbacks

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
        for topic in (*topics_of(event), ALL):
            for callback in list(self._subscribers.get(topic, ())):
                try:
                    callback(event)
                except Exception:
                    log.exception("event subscriber %r failed on a %s event", callback,
                                  event["type"])
