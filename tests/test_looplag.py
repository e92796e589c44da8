"""The loop monitor: a callback that holds the IOLoop shows in the lag figures, and the
watchdog logs the code that held it, with its stack."""
import asyncio
import logging
import time

from jobjoker.looplag import LoopMonitor


def hold_the_loop_for(seconds):
    time.sleep(seconds)  # what a blocking call on the IOLoop does: nothing else runs meanwhile


async def ticks(monitor, count):
    """Wait until the monitor has ticked ``count`` more times."""
    seen = len(monitor.lags)
    while len(monitor.lags) < seen + count:
        await asyncio.sleep(0.01)


def test_a_blocked_loop_shows_in_the_figures_and_the_log_names_the_code(caplog):
    caplog.set_level(logging.WARNING, logger="jobjoker.looplag")

    async def scenario():
        monitor = LoopMonitor(slow_seconds=0.1).start()
        try:
            await ticks(monitor, 3)
            before = monitor.summary()
            asyncio.get_running_loop().call_soon(hold_the_loop_for, 1.0)
            await ticks(monitor, 2)
            return before, monitor.summary()
        finally:
            monitor.stop()

    before, after = asyncio.run(scenario())
    assert before["max"] < 1000
    # The tick due while the loop was held ran at least 0.95 s late (one tick is 50 ms).
    assert after["max"] >= 900 and after["p50"] <= after["p99"] <= after["max"]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("has been blocked for over 0.10 s" in m and "hold_the_loop_for" in m
               for m in warnings), warnings
    assert any(m.startswith("the IOLoop was blocked for ") for m in warnings), warnings


def test_no_watchdog_and_no_warning_when_turned_off(caplog):
    caplog.set_level(logging.WARNING, logger="jobjoker.looplag")

    async def scenario():
        monitor = LoopMonitor(slow_seconds=0).start()
        try:
            asyncio.get_running_loop().call_soon(hold_the_loop_for, 0.3)
            await ticks(monitor, 2)
            return monitor
        finally:
            monitor.stop()

    monitor = asyncio.run(scenario())
    assert monitor.summary()["max"] >= 200  # measured all the same
    assert monitor._watchdog is None and caplog.records == []
