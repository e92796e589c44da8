"""How late the IOLoop runs: the figure behind ``/health``'s ``loop_lag_ms``, and the log of
whatever holds the loop too long.

Contract: ``LoopMonitor(slow_seconds).start()``, on the running loop, schedules a tick every
``TICK`` seconds; a tick's lag is how much later than due it ran, which is how long every
request, stream message and ingestion step waited at that moment. ``summary()`` gives the p50,
p99 and max lag in milliseconds over about the last minute. A watchdog thread logs a warning
with the loop thread's stack whenever the loop has not ticked for ``slow_seconds`` (so the log
names the code that holds it), and the tick that ends such a stall logs how long it lasted.
``stop()`` ends both. ``slow_seconds`` 0 turns the log off; the figures are kept anyway.
``observe``, when given, is called with each tick's lag in seconds (``/metrics``' histogram).
"""
import asyncio
import collections
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger(__name__)

TICK = 0.05  # seconds between ticks: 20 cheap callbacks a second
WINDOW = 1200  # ticks kept for the figures: about a minute


def percentile(ordered, q):
    """Nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class LoopMonitor:
    """Measures the lag of the running loop and reports the callbacks that stall it."""

    def __init__(self, slow_seconds=0.25, observe=None):
        self.slow_seconds = slow_seconds
        self.observe = observe
        self.lags = collections.deque(maxlen=WINDOW)  # seconds
        self.last_tick = None  # time.monotonic() of the latest tick
        self._loop = None
        self._handle = None
        self._due = None
        self._loop_thread = None
        self._watchdog = None
        self._stopped = threading.Event()
        self._reported = None  # the last_tick of the stall the watchdog reported

    def start(self):
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.last_tick = self._due = time.monotonic()
        self._schedule()
        if self.slow_seconds > 0:
            self._watchdog = threading.Thread(target=self._watch, name="jobjoker-loop-watchdog",
                                              daemon=True)
            self._watchdog.start()
        return self

    def stop(self):
        self._stopped.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None

    def _schedule(self):
        self._due += TICK
        self._handle = self._loop.call_at(
            self._loop.time() + max(0.0, self._due - time.monotonic()), self._tick)

    def _tick(self):
        now = time.monotonic()
        lag = max(0.0, now - self._due)
        self.lags.append(lag)
        self.last_tick = now
        if self.observe is not None:
            self.observe(lag)
        if self.slow_seconds and lag >= self.slow_seconds:
            log.warning("the IOLoop was blocked for %.3f s (requests, streams and ingestion "
                        "waited that long)", lag)
        self._due = max(self._due, now - TICK)  # after a stall, measure from now on
        self._schedule()

    def summary(self):
        """``{"p50", "p99", "max"}`` of the recent lags in ms (zeros before the first tick),
        counting a stall still going on."""
        lags = sorted(self.lags)
        if self.last_tick is not None:
            current = time.monotonic() - self.last_tick - TICK
            if current > 0:
                lags.append(current)
                lags.sort()
        if not lags:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        return {"p50": round(percentile(lags, 50) * 1000, 1),
                "p99": round(percentile(lags, 99) * 1000, 1),
                "max": round(lags[-1] * 1000, 1)}

    def _watch(self):
        while not self._stopped.wait(self.slow_seconds / 2):
            tick = self.last_tick
            if time.monotonic() - tick < self.slow_seconds or self._reported == tick:
                continue
            self._reported = tick
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
            log.warning("the IOLoop has been blocked for over %.2f s; it is running:\n%s",
                        self.slow_seconds, stack)
