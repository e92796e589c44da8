"""The in-process event hub: how the domain tells live views what changed.

Contract: ``EventHub.publish(event)`` calls every subscriber synchronously, on the IOLoop, in
subscription order; a subscriber that raises is logged and skipped, never allowed to break the
publisher. Events are dicts with a ``type``:
  {"type": "job", "action": "created"|"status"|"updated"|"deleted", "job": {...as the API
   shows it...}}   ("updated": a field other than the status changed, e.g. the pid)
  {"type": "entries", "job_id": J, "stream": "log"|"response", "seq": K, "block": bytes, "count": N}
  {"type": "worker", "action": "saved"|"deleted", "name": NAME}
Subscribers must not block: they queue and return (the stream handlers bound their queues).
"""
import logging

log = logging.getLogger(__name__)


class EventHub:
    """Synchronous publish/subscribe within the server process."""

    def __init__(self):
        self._subscribers = []

    def subscribe(self, callback):
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe():
            if callback in self._subscribers:
                self._subscribers.remove(callback)
        return unsubscribe

    def publish(self, event):
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on a %s event", callback, event["type"])
