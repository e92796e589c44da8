"""Sampling the CPU time and memory of whole process groups, cheaply, with psutil.

Contract: ``GroupSampler().sample(groups)`` takes ``{pgid: key}`` (a job's process group, led by
its first process, and the job's id) and returns ``{key: (cpu_seconds, rss_bytes, processes)}``
for each group that has a live process: the group's CPU time so far and the summed RSS of its
members now. It runs on one thread (``SamplerThread``), never on the IOLoop; it keeps state
between calls, so call it from that one thread only.

- **Who is in a group.** ``psutil.pids()`` lists the machine's pids, every ``LIST_PASSES``
  passes (a listing of ``/proc`` costs in proportion to every process of the machine; between
  two, a group's members are those it had: a new child's figures join a few seconds late, from
  its start, as the counters are cumulative); each pid seen for the first time has its process
  group asked once (``os.getpgid``, one system call) and remembered, member
  or not, and a pid gone from the list is forgotten. A group's leader (pid = pgid) is always a
  member, even one first seen in the instant between its fork and its ``setsid``. Every pid's
  group is asked again every ``REFRESH_PASSES`` passes (a process may join or leave a group
  later), and the members' identity checked then (a pid reused by another process).
- **CPU.** A member's figure is its user + system time plus that of the children it reaped
  (``children_user``, ``children_system``), read with ``cpu_times()`` inside ``oneshot()``. A
  member that exits leaves its last figure in the group's bank, until a member's children
  figure grows by as much (it reaped it): a child reaped by a member counts once. The group's
  total never goes down. A child's CPU between two samples is counted once its parent (a member)
  reaps it; a descendant that outlives its parent and is reaped outside the group is counted up
  to its last sample.
- **Memory.** The sum of the members' RSS (``memory_info().rss``): pages shared between members
  (after a fork) count once per member, so it can exceed what the group holds alone. A member's
  RSS is read again only when its CPU time moved since the last pass (memory is taken by
  running), and every ``REFRESH_PASSES`` passes (the system may have reclaimed some): a
  sleeping job costs one read of ``/proc/PID/stat`` a pass.

``SamplerThread(interval, groups_now, deliver)`` calls ``deliver(time, results, seconds)`` every
``interval`` seconds on its own thread (``seconds``: the thread's CPU time for that pass);
``deliver`` must hand over to the loop (``IOLoop.add_callback``) and return.
"""
import logging
import os
import threading
import time

import psutil

log = logging.getLogger(__name__)

LIST_PASSES = 5  # passes between listings of /proc: a new member is found within as many
REFRESH_PASSES = 30  # passes between re-reading every pid's group and every member's RSS
_CPU_ERRORS = (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, PermissionError)


class _Group:
    """What the sampler keeps of one group between passes."""

    __slots__ = ("members", "banked", "total")

    def __init__(self):
        self.members = {}  # pid -> (own cpu, children's cpu, rss) at the last pass
        self.banked = 0.0  # last figures of members that exited, not yet seen reaped
        self.total = 0.0  # never goes down


class GroupSampler:
    """Sums CPU time and RSS over the members of process groups."""

    def __init__(self):
        self._pgid_of = {}  # every pid seen: its group when first seen (or last refreshed)
        self._process = {}  # pid -> psutil.Process, for members only
        self._groups = {}  # pgid -> _Group
        self._passes = 0

    def sample(self, groups):
        """``{key: (cpu_seconds, rss_bytes, processes)}`` for each group of ``groups``
        (``{pgid: key}``) that has a live member."""
        if not groups:  # nothing to watch: hold nothing either
            self._pgid_of.clear(), self._process.clear(), self._groups.clear()
            return {}
        self._passes += 1
        refresh = self._passes % REFRESH_PASSES == 0
        for pgid in [pgid for pgid in self._groups if pgid not in groups]:
            for pid in self._groups.pop(pgid).members:  # no longer watched
                self._process.pop(pid, None)
        members = self._members(groups, refresh)
        results = {}
        for pgid, key in groups.items():
            figures = self._sample_group(pgid, members.get(pgid, ()))
            if figures is not None:
                results[key] = figures
        return results

    def _members(self, groups, refresh):
        """``{pgid: [pid, ...]}`` of the watched groups, learning new pids' groups once. The
        machine's pids are listed every ``LIST_PASSES`` passes (and when a group is new);
        between listings a group's members are the ones it had (and its leader)."""
        if self._passes % LIST_PASSES != 1 and not refresh and all(
                pgid in self._groups for pgid in groups):
            return {pgid: list({pgid: None, **group.members})
                    for pgid, group in self._groups.items() if pgid in groups}
        pids = psutil.pids()
        known = self._pgid_of
        alive = set(pids)
        for pid in [pid for pid in known if pid not in alive]:
            del known[pid]
            self._process.pop(pid, None)
        members = {}
        for pid in pids:
            pgid = known.get(pid)
            if pgid is None or refresh:
                pgid = known[pid] = _group_of(pid)
            if pid in groups:
                pgid = pid  # a leader, maybe caught before its setsid
            if pgid in groups:
                members.setdefault(pgid, []).append(pid)
        if refresh:  # a member's pid reused by another process is not the member any more
            for pid, process in list(self._process.items()):
                if not process.is_running():
                    del self._process[pid]
        return members

    def _sample_group(self, pgid, pids):
        group = self._groups.get(pgid)
        if group is None:
            if not pids:
                return None
            group = self._groups[pgid] = _Group()
        live, rss, reaped = {}, 0, 0.0
        refresh = self._passes % REFRESH_PASSES == 0
        for pid in pids:
            before = group.members.get(pid)
            figures = self._read(pid, None if refresh else before)
            if figures is None:
                continue
            own, children, member_rss = live[pid] = figures
            if before is not None and children > before[1]:
                reaped += children - before[1]
            rss += member_rss
        for pid, (own, children, _) in group.members.items():
            if pid not in live:
                group.banked += own + children  # exited: its parent may reap it later
        group.banked = max(0.0, group.banked - reaped)
        group.members = live
        if not live:
            return None
        cpu = sum(own + children for own, children, _ in live.values()) + group.banked
        group.total = max(group.total, cpu)
        return group.total, rss, len(live)

    def _read(self, pid, before):
        """``(own cpu, children's cpu, rss)`` of a member, or None once it is gone. Its RSS is
        read again only when it used CPU since ``before`` (its last figures, None: read all):
        memory is taken by running, so a sleeping member's is the one it had."""
        process = self._process.get(pid)
        try:
            if process is None:
                process = self._process[pid] = psutil.Process(pid)
            with process.oneshot():
                times = process.cpu_times()
                own = times.user + times.system
                children = times.children_user + times.children_system
                if before is not None and before[0] == own and before[1] == children:
                    return before
                rss = process.memory_info().rss
        except _CPU_ERRORS:
            self._process.pop(pid, None)
            return None
        return own, children, rss


def _group_of(pid):
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return -1  # gone already (forgotten at the next pass) or not ours to see


class SamplerThread:
    """Runs a ``GroupSampler`` every ``interval`` seconds on a thread of its own."""

    def __init__(self, interval, groups_now, deliver):
        self.interval = interval
        self.groups_now = groups_now  # () -> {pgid: key}, safe to call from this thread
        self.deliver = deliver
        self.sampler = GroupSampler()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobjoker-usage", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self):
        next_pass = time.monotonic()
        while not self._stop.is_set():
            began = time.thread_time()
            try:
                groups = self.groups_now()
                results = self.sampler.sample(groups)
                self.deliver(time.time(), results, time.thread_time() - began)
            except Exception:
                log.exception("sampling the jobs' resource use failed; trying again")
            # A fixed pace, not a fixed pause: a slow pass does not push the next ones back.
            next_pass = max(next_pass + self.interval, time.monotonic())
            self._stop.wait(next_pass - time.monotonic())
