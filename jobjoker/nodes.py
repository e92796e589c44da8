"""The node lease: one server per node name and database.

Contract: ``NodeLease(name, data_dir, heartbeat, ttl)`` stands for this process holding the
``Node`` row named
``name``. ``acquire()`` takes the row, or raises ``StartupError`` naming the live holder (host,
pid, since when, data dir); ``beat()`` refreshes it; ``release()`` deletes the row if this
process still holds it. These three run statements: the server runs them on its storage's
writer thread (the models must be bound, ``jobjoker.models``). ``start_heartbeat(run)`` beats
every ``heartbeat`` seconds (``--node-heartbeat``) from the IOLoop, through ``run``
(``Storage.call``); a
failed heartbeat is logged (the first of a run of failures, then once it beats again, with how
many failed), never fatal; ``stop_heartbeat()`` ends it.

A lease is taken over only when its holder is provably dead:

- same host name and boot id: its pid is gone, is a zombie, or is another process (its start
  time, ``/proc/PID/stat`` field 22, differs from the recorded one);
- same host name, another boot id: the machine rebooted since;
- another host: its heartbeat is older than ``ttl`` (``--node-lease-ttl``). Hosts sharing a
  database must keep
  their clocks within a few seconds of each other (NTP), since each writes its own time.

So a server killed with ``kill -9`` and restarted on its host starts at once, while a second
server on the same node name is refused before it changes anything: the caller takes the lease
before it migrates the schema, re-adopts jobs or starts a supervisor (see ``JobJokerServer``).

Taking the row needs no lock: an INSERT (the name is the primary key, so at most one succeeds),
or a conditional UPDATE ``WHERE holder = <the dead holder>`` (and, for another host, ``AND
heartbeat < now - ttl``) whose row count decides who won. A heartbeat is likewise an
UPDATE ``WHERE holder = <us>``: a server whose lease was taken over while it was frozen learns it
there, and logs an error (it does not stop: its jobs are still its own processes).
"""
import logging
import os
import socket
import time

import peewee
from tornado.ioloop import PeriodicCallback

from jobjoker import proc
from jobjoker.config import Config
from jobjoker.errors import StartupError
from jobjoker.logthrottle import FailureLog
from jobjoker.models import Node, database

log = logging.getLogger(__name__)

ATTEMPTS = 5  # races with other starting servers before giving up


def _format_time(timestamp):
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(timestamp))


class NodeLease:
    """This server's hold on its node name in the database."""

    def __init__(self, name, data_dir, heartbeat=Config.node_heartbeat,
                 ttl=Config.node_lease_ttl):
        self.name = name
        self.heartbeat = heartbeat  # seconds between heartbeats
        self.ttl = ttl  # a lease of another host whose heartbeat is older than this is dead
        self.data_dir = os.fspath(data_dir)
        self.host = socket.gethostname()
        self.boot_id = proc.boot_id()
        self.pid = os.getpid()
        self.pid_start_time = proc.start_time(self.pid)
        self.holder = "%s:%d:%s" % (self.host, self.pid, self.pid_start_time)
        self.held = False
        self._heartbeat = None
        self._lost = False
        # A database outage fails every beat: one line for the run of failures, not one per beat.
        self._beat_failures = FailureLog(log, logging.WARNING)

    # --- taking and giving back ---------------------------------------------------------------

    def acquire(self):
        """Take the lease, or raise ``StartupError`` saying who holds it."""
        for _ in range(ATTEMPTS):
            now = time.time()
            try:
                with database.atomic():
                    Node.insert(self._row(now)).execute()
                self.held = True
                return
            except peewee.IntegrityError:
                pass  # held, or was held: look at the holder
            row = Node.get_or_none(Node.name == self.name)
            if row is None:
                continue  # released between our INSERT and our SELECT
            if row.holder == self.holder:
                why = "this very process (a server restarted in-process)"
            else:
                why = self._why_dead(row, now)
                if why is None:
                    raise StartupError(self._refusal(row, now))
            taking = Node.update(self._row(now)).where(Node.name == self.name,
                                                      Node.holder == row.holder)
            if row.host != self.host:
                # The heartbeat is what proves a remote holder dead: it must still be stale.
                taking = taking.where(Node.heartbeat < now - self.ttl)
            if taking.execute() == 1:
                log.warning("node %s: took over the lease of %s (data dir %s): %s",
                            self.name, row.holder, row.data_dir, why)
                self.held = True
                return
            # Someone else changed the row meanwhile (a heartbeat, or another server starting).
        raise StartupError("node %r: could not take its lease in the database after %d tries: "
                           "other servers keep starting with this node name; try again"
                           % (self.name, ATTEMPTS))

    def release(self):
        """Give the lease back (delete the row) if this process still holds it."""
        if not self.held:
            return
        self.held = False
        try:
            Node.delete().where(Node.name == self.name, Node.holder == self.holder).execute()
        except peewee.PeeweeException as e:
            # The next server on this host takes a dead holder's lease over anyway.
            log.warning("node %s: could not release its lease: %s", self.name, e)

    def _row(self, now):
        return {"name": self.name, "holder": self.holder, "host": self.host,
                "boot_id": self.boot_id, "pid": self.pid,
                "pid_start_time": self.pid_start_time, "started": now, "heartbeat": now,
                "data_dir": self.data_dir}

    def _why_dead(self, row, now):
        """Why the holder of ``row`` is provably dead, or None if it may be alive."""
        if row.host != self.host:
            age = now - row.heartbeat
            if age > self.ttl:
                return "its last heartbeat from host %s was %.0f s ago" % (row.host, age)
            return None
        if row.boot_id and self.boot_id and row.boot_id != self.boot_id:
            return "this host rebooted since it took the lease"
        start_time = proc.start_time(row.pid)
        if start_time is None:
            return "its pid %d is gone" % row.pid
        if row.pid_start_time is not None and start_time != row.pid_start_time:
            return "its pid %d now belongs to another process" % row.pid
        if proc.state(row.pid) == "Z":
            return "its pid %d has exited (a zombie)" % row.pid
        return None

    def _refusal(self, row, now):
        if row.host == self.host:
            proof = "its process is alive"
        else:
            proof = "its last heartbeat was %.0f s ago (a lease expires after %.0f s without " \
                    "one)" % (now - row.heartbeat, self.ttl)
        return ("node %r of this database is held by another JobJoker server: host %s, pid %d, "
                "since %s, data dir %s; %s. Stop that server, or give this one another --node"
                % (self.name, row.host, row.pid, _format_time(row.started), row.data_dir, proof))

    # --- heartbeat ----------------------------------------------------------------------------

    def start_heartbeat(self, run):
        """Refresh the lease every ``heartbeat`` seconds (on the current IOLoop),
        running ``beat`` through ``run`` (off the loop)."""
        if self._heartbeat is None:
            self._heartbeat = PeriodicCallback(lambda: run(self.beat), self.heartbeat * 1000)
            self._heartbeat.start()

    def stop_heartbeat(self):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    def beat(self):
        """One heartbeat: a single-row UPDATE by primary key. True while we hold the lease."""
        try:
            if Node.update(heartbeat=time.time()).where(
                    Node.name == self.name, Node.holder == self.holder).execute():
                self._lost = False
                self._beat_failures.over(self.name)
                return True
            holder = Node.get_or_none(Node.name == self.name)
            if holder is None:  # deleted by hand: nobody holds it, so it is ours again
                with database.atomic():
                    Node.insert(self._row(time.time())).execute()
                return True
        except peewee.IntegrityError:
            holder = None  # another server took it that very moment
        except peewee.PeeweeException as e:
            self._beat_failures.failed(
                "node %s: heartbeat" % self.name, self.name, "node %s: heartbeat failed "
                "(retried every %.0f s; logged again when it beats): %s", self.name,
                self.heartbeat, " ".join(str(e).split()))
            return None
        except Exception:
            log.exception("node %s: heartbeat failed", self.name)
            return None
        if not self._lost:
            log.error("node %s: this server lost its lease to %s: another server took the node "
                      "name over, probably because this one sent no heartbeat for %.0f s. Two "
                      "servers may now run jobs of this node; stop one of them.", self.name,
                      holder.holder if holder is not None else "another server", self.ttl)
        self._lost = True
        return False
