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

DEFAULT_CAP = 3600
FORMAT_VERSION = 1


class UsageSeries:
    """The bounded series of one job's samples."""

    def __init__(self, interval, cap=DEFAULT_CAP, step=None, points=()):
        if cap < 3:
            raise ValueError("a series needs room for at least 3 points")
        self.interval = float(interval)
        self.cap = cap
        self.step = max(float(step or 0), self.interval)
        self.points = [tuple(point) for point in points]
        while len(self.points) > cap:
            self._merge()

    def __len__(self):
        return len(self.points)

    def add(self, t, cpu_seconds, rss_bytes):
        """One sample. The last point moves to it while that point is younger than a step
        after the one before (it stands for every sample since); else it is a new point."""
        t, cpu_seconds = round(t, 2), round(cpu_seconds, 3)
        points = self.points
        if len(points) >= 2 and self._open(points[-2][0], points[-1][0]):
            points[-1] = (t, cpu_seconds, max(points[-1][2], rss_bytes))
        else:
            points.append((t, cpu_seconds, rss_bytes))
        if len(points) > self.cap:
            self._merge()

    def _open(self, before, last):
        # Half an interval of slack: samples come about every interval, a little early or late.
        return last - before < self.step - self.interval / 2

    def _merge(self):
        """Keep the first point, merge the others pairwise, double the step."""
        first, rest = self.points[0], self.points[1:]
        merged = [first]
        for i in range(0, len(rest) - 1, 2):
            earlier, later = rest[i], rest[i + 1]
            merged.append((later[0], later[1], max(earlier[2], later[2])))
        if len(rest) % 2:
            merged.append(rest[-1])
        self.points = merged
        self.step *= 2

    def to_dict(self):
        """What the API shows and the store keeps: ``{"step", "points": [[t, cpu, rss]]}``."""
        return {"step": self.step, "points": [list(point) for point in self.points]}

    def snapshot(self):
        """A copy to encode elsewhere (``encode``): a writer thread's work, not the loop's."""
        return self.interval, self.step, list(self.points)

    def to_json(self):
        return encode(self.snapshot())

    @classmethod
    def from_json(cls, text, interval, cap=DEFAULT_CAP):
        """A stored series, to go on with at ``interval`` (an empty one when ``text`` is None
        or unreadable: a series is a view, never a reason to fail)."""
        try:
            stored = json.loads(text) if text else {}
            points = [(float(t), float(cpu), int(rss)) for t, cpu, rss in stored.get("points", ())]
            return cls(interval, cap, stored.get("step"), points)
        except (ValueError, TypeError, AttributeError):
            return cls(interval, cap)


def encode(snapshot):
    """A ``snapshot()`` as stored: ``{"v", "interval", "step", "points": [[t, cpu, rss]]}``."""
    interval, step, points = snapshot
    return json.dumps({"v": FORMAT_VERSION, "interval": interval, "step": step,
                       "points": points}, separators=(",", ":"))
