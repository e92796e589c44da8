"""A job's resource series: bounded, one point per sample at first, coarser as the job runs on.

Contract: ``UsageSeries(interval, cap)`` holds points ``(t, cpu_seconds, rss_bytes)`` in time
order: ``t`` a Unix time, ``cpu_seconds`` the group's CPU time so far (it only grows, so the
CPU use between two points is their difference over their times), ``rss_bytes`` the highest
summed RSS of the samples the point stands for. ``add(t, cpu, rss)`` takes a sample every
``interval`` seconds: the last point is always the newest sample, and points are ``step``
seconds apart (``step`` starts at ``interval``). Once there are more than ``cap`` points, the
first point is kept and the rest are merged in neighbouring pairs (the later one's time and
CPU, the higher RSS) and ``step`` doubles: at 1 s and 3600 points, the first hour is at one
point per second, the next two hours at one per two seconds, and so on; the series never holds
more than ``cap`` points and its first and last times stay. ``to_json()``/``from_json()``
store it (``JobData(kind="usage")``) and resume it after a restart. Standard library only.
"""
import json
from array import array

DEFAULT_CAP = 3600
FORMAT_VERSION = 1
# Stored in whole units of these (times since the first point, CPU time), as the points are
# rounded anyway: integers encode about five times faster than floats.
T_UNIT, CPU_UNIT = 0.01, 0.001


class UsageSeries:
    """The bounded series of one job's samples."""

    def __init__(self, interval, cap=DEFAULT_CAP, step=None, points=()):
        if cap < 3:
            raise ValueError("a series needs room for at least 3 points")
        self.interval = float(interval)
        self.cap = cap
        self.step = max(float(step or 0), self.interval)
        # Three flat arrays of integers, not a tuple per point: 24 bytes a point instead of
        # ~140 (a full series ~86 KB, 200 jobs' ~17 MB), and stored without a loop in Python.
        self.t0 = None  # the first point's time; the others are counted from it
        self._t, self._cpu, self._rss = array("q"), array("q"), array("q")
        for t, cpu_seconds, rss_bytes in points:
            self._append(t, cpu_seconds, rss_bytes)
        while len(self._t) > cap:
            self._merge()

    def __len__(self):
        return len(self._t)

    @property
    def points(self):
        """``[(t, cpu_seconds, rss_bytes), ...]``, oldest first (a new list)."""
        first = self.t0
        return [(round(first + t * T_UNIT, 2), round(cpu * CPU_UNIT, 3), rss)
                for t, cpu, rss in zip(self._t, self._cpu, self._rss)]

    def _units(self, t, cpu_seconds):
        if self.t0 is None:
            self.t0 = round(t, 2)
        return round((t - self.t0) / T_UNIT), round(cpu_seconds / CPU_UNIT)

    def _append(self, t, cpu_seconds, rss_bytes):
        t, cpu = self._units(t, cpu_seconds)
        self._t.append(t)
        self._cpu.append(cpu)
        self._rss.append(rss_bytes)

    def add(self, t, cpu_seconds, rss_bytes):
        """One sample. The last point moves to it while that point is younger than a step
        after the one before (it stands for every sample since); else it is a new point."""
        times = self._t
        if len(times) >= 2 and self._open(times[-2], times[-1]):
            times[-1], self._cpu[-1] = self._units(t, cpu_seconds)
            self._rss[-1] = max(self._rss[-1], rss_bytes)
        else:
            self._append(t, cpu_seconds, rss_bytes)
        if len(times) > self.cap:
            self._merge()

    def _open(self, before, last):
        # Half an interval of slack: samples come about every interval, a little early or late.
        return (last - before) * T_UNIT < self.step - self.interval / 2

    def _merge(self):
        """Keep the first point, merge the others pairwise (the later one's time and CPU, the
        higher RSS), double the step."""
        t, cpu, rss = self._t, self._cpu, self._rss
        odd = (len(t) - 1) % 2  # an unpaired last point stays as it is
        end = len(t) - odd
        self._t = t[:1] + t[2:end:2] + t[end:]
        self._cpu = cpu[:1] + cpu[2:end:2] + cpu[end:]
        self._rss = rss[:1] + array("q", map(max, rss[1:end:2], rss[2:end:2])) + rss[end:]
        self.step *= 2

    def to_dict(self):
        """What the API shows: ``{"step", "points": [[t, cpu, rss], ...]}``."""
        return {"step": self.step, "points": [list(point) for point in self.points]}

    def snapshot(self):
        """A copy to encode elsewhere (``encode``): a writer thread's work, not the loop's."""
        return self.interval, self.step, self.t0, self._t[:], self._cpu[:], self._rss[:]

    def to_json(self):
        return encode(self.snapshot())

    @classmethod
    def from_json(cls, text, interval, cap=DEFAULT_CAP):
        """A stored series, to go on with at ``interval`` (an empty one when ``text`` is None
        or unreadable: a series is a view, never a reason to fail)."""
        try:
            stored = json.loads(text) if text else {}
            first = float(stored.get("t0") or 0)
            points = [(first + t * T_UNIT, cpu * CPU_UNIT, int(rss))
                      for t, cpu, rss in zip(stored.get("t", ()), stored.get("cpu", ()),
                                             stored.get("rss", ()), strict=True)]
            return cls(interval, cap, stored.get("step"), points)
        except (ValueError, TypeError, AttributeError, OverflowError):
            return cls(interval, cap)


def encode(snapshot):
    """A ``snapshot()`` as stored, by column: ``{"v", "interval", "step", "t0", "t", "cpu",
    "rss"}``; ``t`` in hundredths of a second since ``t0`` (the first point's time), ``cpu`` in
    milliseconds, ``rss`` in bytes, all integers."""
    interval, step, first, times, cpu, rss = snapshot
    return json.dumps({"v": FORMAT_VERSION, "interval": interval, "step": step, "t0": first,
                       "t": times.tolist(), "cpu": cpu.tolist(), "rss": rss.tolist()},
                      separators=(",", ":"))
