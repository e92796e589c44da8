"""The scheduler loop of one server: fires schedules at their times.

Contract: ``Scheduler(storage, firer)`` started with ``start()`` keeps a timer armed at the
earliest ``next_run`` of every unpaused schedule in the database; ``wake()`` (a schedule was
created, changed, paused, resumed or deleted here) re-reads at once, and the database is
re-read at least every ``CHECK_SECONDS`` for what other servers changed. Each due schedule is
fired through ``ScheduleFirer.fire``, whose claim in the database makes sure one server alone
fires a time, however many run. A time more than ``MISSED_GRACE`` seconds past when it is
found was missed (no server ran then): under missed ``skip`` one ``skipped`` run records the
missed times and the schedule moves to its next time after now; under ``run_once`` one job is
made for all of them (its run is recorded for the first missed time and says how many).
``stop()`` ends the loop once the firings under way are done. Every statement goes through the storage's threads; counting missed
times runs in an executor.
"""
import asyncio
import logging
import time

from jobjoker import schedulestore, schedulespec
from jobjoker.errors import DatabaseUnavailable
from jobjoker.schedulespec import iso_time

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0  # the longest the loop sleeps: other servers' changes are seen this soon
MISSED_GRACE = 30.0  # seconds: a time later than this when found was missed
MAX_MISSED_COUNTED = 1000  # missed times counted for the run's detail ("1000 or more")
STOP_SECONDS = 10.0  # the most a stop waits for the firings under way
RETRY_SECONDS = 1.0  # after a firing failed (the database away, say): not a busy loop


class Scheduler:
    """Fires the schedules of the database at their times."""

    def __init__(self, storage, firer, check_seconds=CHECK_SECONDS):
        self.storage = storage
        self.firer = firer
        self.check_seconds = check_seconds
        self._wake = asyncio.Event()
        self._task = None
        self._stopping = False

    def start(self):
        self._task = asyncio.ensure_future(self._run())
        return self

    def wake(self):
        """Re-read the schedules now (one changed)."""
        self._wake.set()

    async def stop(self):
        """End the loop once the firings under way are done: one cut short between its
        commit and its launch would leave a job active that never started."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            done, _ = await asyncio.wait([self._task], timeout=STOP_SECONDS)
            if not done:  # the database does not answer: nothing can commit anyway
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self):
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self._fire_due()
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable:  # an outage, logged once by the storage
                delay = self.check_seconds
            except Exception:
                log.exception("schedules: checking for due schedules failed; trying again in "
                              "%g s", self.check_seconds)
                delay = self.check_seconds
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _fire_due(self):
        """Fire every due schedule; the seconds until the next check."""
        due = await self.storage.read(schedulestore.due, time.time())
        fired = await asyncio.gather(*(self._fire_one(row) for row in due))
        earliest = await self.storage.read(schedulestore.earliest_next_run)
        if earliest is None:
            return self.check_seconds
        delay = min(max(earliest - time.time(), 0.0), self.check_seconds)
        return delay if all(fired) else max(delay, RETRY_SECONDS)

    async def _fire_one(self, schedule):
        """Fire one due schedule; False when that failed (it was logged)."""
        scheduled_for = schedule.next_run
        try:
            late = time.time() - scheduled_for
            if late <= MISSED_GRACE:
                next_time = schedulespec.next_run(schedule.cron, schedule.timezone,
                                                  scheduled_for)
                await self.firer.fire(schedule, scheduled_for, next_time)
                return True
            count, next_time = await asyncio.get_running_loop().run_in_executor(
                None, missed_times, schedule.cron, schedule.timezone, scheduled_for,
                time.time())
            detail = "%s missed time%s from %s while no server ran" % (
                "%d or more" % count if count >= MAX_MISSED_COUNTED else count,
                "" if count == 1 else "s", iso_time(scheduled_for))
            if schedule.missed == "skip":
                await self.firer.skip_missed(schedule, scheduled_for, next_time,
                                             detail + " (missed: skip)")
            else:
                await self.firer.fire(schedule, scheduled_for, next_time,
                                      note="run once for " + detail + " (missed: run_once)")
        except DatabaseUnavailable:  # an outage, logged once by the storage: fired later
            return False
        except Exception:
            log.exception("schedule %s: firing its time %s failed", schedule.id,
                          iso_time(scheduled_for))
            return False
        return True


def missed_times(cron, timezone, first, now):
    """``(how many times from first to now, counted up to MAX_MISSED_COUNTED, the first time
    after now)``."""
    times = schedulespec.run_times(cron, timezone, first, MAX_MISSED_COUNTED)
    count = 1 + sum(1 for t in times if t <= now)
    return min(count, MAX_MISSED_COUNTED), schedulespec.next_run(cron, timezone, now)

