"""Rate-limited logging: a message that can repeat thousands of times a second is logged at most
once per interval per kind, with how many were left out.

Contract: ``LogThrottle(logger, interval)``; ``throttle.log(kind, level, message, *args)`` logs
the first message of ``kind`` at once, then nothing more of that kind for ``interval`` seconds;
the next one logged after that says how many were suppressed meanwhile. An attack that makes
the server refuse or fail something in a tight loop (connections beyond the cap, an exhausted
file-descriptor table) thus costs a line a minute, not gigabytes of log.

``FailureLog(logger, level=ERROR)`` logs a kind of failure once while it lasts: ``failed(kind,
who, message, *args)`` logs the first failure of ``kind`` (at ``level``) and only counts the others, whoever
fails so (``who``: a job, say); ``over(who)`` says that ``who`` works again, and each kind
nobody fails with any more is logged as over (a WARNING), with how many failures went unlogged.
"""
import logging
import time


class LogThrottle:
    """One line per kind per ``interval`` seconds, counting the ones left out."""

    def __init__(self, logger, interval=60.0, clock=time.monotonic):
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last = {}  # kind -> when it was last logged
        self._suppressed = {}  # kind -> how many since

    def log(self, kind, level, message, *args, exc_info=None):
        """Log ``message % args`` unless ``kind`` was logged less than ``interval`` ago."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        suppressed = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        if suppressed:
            message += " (and %d more like it in the last %.0f s)"
            args = args + (suppressed, now - last)
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True


class FailureLog:
    """One line when a kind of failure begins, one when it is over, with the count between."""

    def __init__(self, logger, level=logging.ERROR):
        self.logger = logger
        self.level = level
        self._kinds = {}  # kind -> [who fails so, failures not logged]

    def failed(self, kind, who, message, *args, exc_info=None):
        """Log ``message % args`` unless ``kind`` is failing already; returns whether logged."""
        failing = self._kinds.get(kind)
        if failing is not None:
            failing[0].add(who)
            failing[1] += 1
            return False
        self._kinds[kind] = [{who}, 0]
        self.logger.log(self.level, message, *args, exc_info=exc_info)
        return True

    def over(self, who):
        """``who`` works again: log the end of each kind that nobody fails with any more."""
        for kind, (failing, unlogged) in list(self._kinds.items()):
            failing.discard(who)
            if not failing:
                del self._kinds[kind]
                self.logger.warning("%s works again (%d more failures since it was logged)",
                                    kind, unlogged)
