"""The supervisors of this server's data dir: the one of this installation's code, and older ones
that drain.

Contract: ``Supervisors(run_dir, on_event, on_reconnect, on_gone)``. ``connect()`` connects to
(or starts) ``current``, the supervisor that runs this installation's code (``jobjoker.codehash``:
the socket is named after the code hash, and its ``ping`` tells the hash of the files it loaded),
and to every other supervisor still answering in the run dir (``others``): one started from the
code installed before an upgrade (or after a downgrade), whatever its protocol. New jobs go to
``current`` only. ``drain_others()`` (called once the jobs were adopted) asks each other one to
exit after its last job: it keeps running its jobs, since only a process's parent can reap it and
learn its exit status (there is no handing them over), answers their stops and kills, tells their
exits, and exits by itself; an idle one exits at once. When an other's connection ends (it
exited, or died), it leaves ``others`` and ``on_gone()`` is called, so the owner can adopt
whatever it left. ``reopen_logs()`` asks each connected one to open its log anew (after a
rotation). ``describe(jobs_of)`` is what ``/health`` shows of each. ``close(...)`` closes
every connection (asking each to exit, killing jobs, when told to).
"""
import asyncio
import logging
import os
import socket

from jobjoker.errors import Unavailable
from jobjoker.supervisor_client import HASH_CHARS, SupervisorClient, supervisor_sockets

log = logging.getLogger(__name__)


class Supervisors:
    """This server's current supervisor and the older ones that still run jobs."""

    def __init__(self, run_dir, on_event, on_reconnect, on_gone):
        self.run_dir = run_dir
        self.on_event = on_event
        self.on_gone = on_gone
        self.current = SupervisorClient(run_dir, on_event, on_reconnect)
        self.others = []  # connected to, and drained once their jobs are adopted

    async def connect(self):
        """Connect to (or start) the current supervisor, then to every other one found."""
        await self.current.connect()
        connected = {self.current.socket_path} | {other.socket_path for other in self.others}
        for path in supervisor_sockets(self.run_dir):
            if path in connected:
                continue
            other = SupervisorClient(self.run_dir, self.on_event, socket_path=path)
            other.on_gone = lambda other=other: self._gone(other)
            try:
                await other.connect()
            except Unavailable:
                await other.close()
                _remove_if_stale(path)
                continue
            self.others.append(other)
            log.warning("supervisor pid %s on %s runs other code (protocol %s, code %s) than "
                        "this server's (protocol %s, code %s): it was started before an upgrade",
                        other.supervisor_pid, path, other.supervisor_protocol,
                        (other.supervisor_code_hash or "older")[:HASH_CHARS],
                        self.current.supervisor_protocol,
                        self.current.code_hash[:HASH_CHARS])

    def connected(self):
        """Every supervisor connected to now, the current one first."""
        return [self.current] + [other for other in self.others if other.supervisor_pid]

    async def drain_others(self):
        """Ask every other supervisor to exit once its last job has ended."""
        for other in list(self.others):
            try:
                await other.drain()
            except Unavailable as e:
                log.warning("asking supervisor pid %s to exit after its last job failed: %s",
                            other.supervisor_pid, e.message)
                continue
            log.info("supervisor pid %s drains: it starts no job and exits after its last one",
                     other.supervisor_pid)

    async def reopen_logs(self):
        """Ask every connected supervisor to open its log anew by name (logrotate renamed it).
        One too old to be asked (before protocol 5) is named in a warning: SIGHUP would end it,
        so its log can only be copied and truncated until it exits."""
        for client in self.connected():
            if client.supervisor_pid is None:
                continue  # not connected now: nobody to ask
            try:
                if await client.reopen_log():
                    continue
                problem = "it is older than protocol 5, or was started without a log file"
            except Unavailable as e:
                problem = e.message
            log.warning("supervisor pid %s could not reopen its log (%s): it writes on to the "
                        "old file", client.supervisor_pid, problem)

    def _gone(self, other):
        if other in self.others:
            self.others.remove(other)
            log.info("supervisor on %s has gone (its last job ended, or it died)",
                     other.socket_path)
            self.on_gone()

    def describe(self, jobs_of):
        """What ``/health`` and ``/metrics`` show of each supervisor (``jobs_of(client)``: its
        jobs' count), the current one first, connected or not: its ``role`` ("current", or
        "draining" for an older one), ``connected``, pid, protocol, code hash, jobs and whether
        it drains."""
        return [{"role": "current" if client is self.current else "draining",
                 "connected": client.supervisor_pid is not None,
                 "pid": client.supervisor_pid, "protocol": client.supervisor_protocol,
                 "code_hash": client.supervisor_code_hash, "jobs": jobs_of(client),
                 "draining": client is not self.current or client.draining}
                for client in self.connected()]

    async def close(self, shutdown=False, kill_jobs=False):
        """Disconnect from every supervisor (``shutdown``/``kill_jobs``: see SupervisorClient)."""
        others, self.others = self.others, []
        await asyncio.gather(self.current.close(shutdown=shutdown, kill_jobs=kill_jobs),
                             *(other.close(shutdown=shutdown, kill_jobs=kill_jobs)
                               for other in others))


def _remove_if_stale(path):
    """Remove a socket nobody listens on (its supervisor was killed, so it could not remove it).
    Only a supervisor of this server's own code can be starting now (one server per data dir),
    and its socket is not among those looked at: a refusal here means nobody will answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a live one with a full backlog says EAGAIN, not refused
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            try:
                os.unlink(path)
                log.info("removed %s: no supervisor listens there any more", path)
            except OSError:
                pass
        except OSError:
            pass
