"""The server's side of the supervisor protocol (see ``jobjoker.supervisor``), on the IOLoop.

Contract: ``SupervisorClient.connect()`` connects to the supervisor of this data dir that runs this
installation's code (its socket is named after the code hash: ``socket_path_for``), starting one
(detached, with a clean environment) when none answers; ``SupervisorClient(..., socket_path=P,
on_gone=F)`` connects to the one at ``P`` only (an older one: ``jobjoker.supervisors``), never
starts one, and calls ``F()`` when that connection ends instead of reconnecting.
``request(op, **fields)`` sends one request and returns its reply, raising ``Unavailable`` when
the supervisor is away or answers with an error; ``start_many(specs)`` starts many jobs in one
request (one result per spec, a pid or an error), or in pipelined ``start`` requests to a
supervisor too old to know ``start_many``; ``drain()`` asks it to exit after its last job;
``reopen_log()`` to open its log (``<run dir>/supervisor.log``) anew, as after a rotation. A
supervisor outlives the server that started it: ``supervisor_protocol`` says which version of
the protocol the connected one speaks, ``supervisor_code_hash`` which code it runs.
``supervisor_sockets(run_dir)`` lists the sockets of every supervisor of a data dir, whatever
its code or version.
Pushed events (job exits) go to ``on_event``. When the connection drops the client reconnects
(starting a new supervisor if needed) and calls ``on_reconnect`` so the owner can resynchronise.
Nothing here blocks the IOLoop.
"""
import asyncio
import glob
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys

from tornado.iostream import IOStream, StreamClosedError

from jobjoker import checkout, codehash, jobenv
from jobjoker.errors import Unavailable
from jobjoker.supervisor import PROTOCOL

log = logging.getLogger(__name__)

MAX_UNIX_PATH = 100  # sun_path holds 108 bytes; keep a margin
HASH_CHARS = 12  # of the code hash, in a socket's name


def _socket_prefix(run_dir):
    """Where the supervisor sockets of ``run_dir`` are, and how their names begin: in the run
    dir, or in a short private folder when the run dir's path is too long for a socket."""
    prefix = os.path.join(run_dir, "supervisor")
    if len(os.fsencode(prefix)) + 1 + HASH_CHARS + 5 <= MAX_UNIX_PATH:
        return prefix
    digest = hashlib.sha256(os.fsencode(os.path.abspath(run_dir))).hexdigest()[:16]
    private = os.path.join("/tmp", "jobjoker-%d" % os.getuid())
    os.makedirs(private, mode=0o700, exist_ok=True)
    os.chmod(private, 0o700)
    return os.path.join(private, digest)


def socket_path_for(run_dir, code_hash=None):
    """The socket of the supervisor of ``run_dir`` that runs the code of ``code_hash`` (this
    installation's by default): one name per code, so that an older supervisor keeps its own
    while it drains (see ``jobjoker.supervisors``)."""
    code_hash = code_hash or codehash.code_hash()
    return "%s-%s.sock" % (_socket_prefix(os.fspath(run_dir)), code_hash[:HASH_CHARS])


def supervisor_sockets(run_dir):
    """The sockets found for ``run_dir``'s supervisors, of any code, the ones of versions before
    protocol 4 (``supervisor.sock``, or ``<digest>.sock`` in the private folder) included. A
    supervisor that was killed leaves its socket behind: nobody answers there."""
    prefix = _socket_prefix(os.fspath(run_dir))
    return sorted(set(glob.glob(glob.escape(prefix) + "-*.sock"))
                  | set(glob.glob(glob.escape(prefix) + ".sock")))


def supervisor_environment():
    """What the supervisor inherits: no secrets, no database URL; jobs get even less
    (``jobjoker.jobenv``).

    From a checkout it also gets the checkout's root as PYTHONPATH, to import jobjoker when the
    checkout is not installed; the supervisor drops it before any job starts
    (``supervisor.forget_import_path``). An installed jobjoker needs none.
    """
    env = jobenv.passed_through(os.environ)
    for name in ("PATH", "TMPDIR"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env.setdefault("PATH", os.defpath)
    if checkout.ROOT is not None:
        env["PYTHONPATH"] = checkout.ROOT
    env["PYTHONUNBUFFERED"] = "1"
    return env


class SupervisorClient:
    """An asynchronous connection to the supervisor, which it starts when needed."""

    def __init__(self, run_dir, on_event, on_reconnect=None, connect_timeout=10.0,
                 socket_path=None, on_gone=None):
        """``socket_path``: connect to the supervisor there only, never start one, and call
        ``on_gone()`` once the connection ends (no reconnecting)."""
        self.run_dir = os.fspath(run_dir)
        self.code_hash = codehash.code_hash()  # what a supervisor started now runs
        self.spawn = socket_path is None
        self.socket_path = socket_path or socket_path_for(self.run_dir, self.code_hash)
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.on_gone = on_gone
        self.connect_timeout = connect_timeout
        self.supervisor_pid = None  # set while connected
        self.supervisor_ops = ()  # what the connected supervisor can do
        self.supervisor_protocol = None  # its version of the protocol (jobjoker.supervisor)
        self.supervisor_code_hash = None  # the code it runs (None: older than protocol 4)
        self.draining = False  # asked to exit after its last job
        self._stream = None
        self._pending = {}
        self._next_id = 0
        self._closing = False
        self._reader = None
        self._readers = set()  # every read loop still running, to end them all on close
        self._reconnecting = None  # the one reconnect loop, when one runs

    async def connect(self):
        """Connect to the running supervisor, or start one and connect to it."""
        stream = await self._try_connect()
        if stream is None and not self.spawn:
            raise Unavailable("no supervisor answers on %s" % self.socket_path)
        if stream is None:
            await self._spawn()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.connect_timeout
            while stream is None:
                if loop.time() > deadline:
                    raise Unavailable("the supervisor did not start within %.0f s; see %s"
                                      % (self.connect_timeout, self._log_path()))
                await asyncio.sleep(0.01)
                stream = await self._try_connect()
        if self._closing:  # close() came while we were connecting
            stream.close()
            raise Unavailable("the supervisor client is closing")
        self._stream = stream
        self._reader = asyncio.ensure_future(self._read_loop(stream))
        self._readers.add(self._reader)
        self._reader.add_done_callback(self._readers.discard)
        try:
            reply = await self.request("ping")
        except BaseException:
            # A half-made connection must not leave its reader behind when we try again.
            stream.close()
            raise
        self.supervisor_pid = reply["pid"]
        # A supervisor outlives the server that started it: after an upgrade, the one found
        # may be older than this server. Protocol 1 told no version.
        self.supervisor_protocol = reply.get("protocol", 1)
        self.supervisor_ops = tuple(reply.get("ops") or ("ping", "shutdown", "signal", "start",
                                                         "status"))
        self.supervisor_code_hash = reply.get("code_hash")
        self.draining = bool(reply.get("draining"))
        if self.spawn:
            await self._check_own()
        log.info("supervisor pid %s on %s (protocol %s, code %s)", self.supervisor_pid,
                 self.socket_path, self.supervisor_protocol,
                 (self.supervisor_code_hash or "older")[:HASH_CHARS])

    async def _check_own(self):
        """The supervisor on this code's socket runs this code (it started from the same
        files), unless they changed between our start and its: then say so. One drained by
        a newer server (which we replace again: a downgrade) serves new jobs once more."""
        if (self.supervisor_code_hash, self.supervisor_protocol) != (self.code_hash, PROTOCOL):
            log.warning("supervisor pid %s runs other code (protocol %s, code %s) than this "
                        "server's (protocol %s, code %s): the installation changed while the "
                        "server started; restart the server to run the new code",
                        self.supervisor_pid, self.supervisor_protocol,
                        self.supervisor_code_hash, PROTOCOL, self.code_hash)
        if self.draining and "drain" in self.supervisor_ops:
            await self.request("drain", drain=False)
            self.draining = False

    async def drain(self):
        """Ask the supervisor to exit once its last job has ended (older ones: ``shutdown``
        without killing, which does the same)."""
        if "drain" in self.supervisor_ops:
            await self.request("drain", drain=True)
        else:
            await self.request("shutdown", kill_jobs=False)
        self.draining = True

    async def reopen_log(self):
        """Ask the supervisor to open its log anew by name (logrotate renamed it); False when
        it cannot (older than protocol 5, or started without a log file it knows)."""
        if "reopen_log" not in self.supervisor_ops:
            return False
        return bool((await self.request("reopen_log")).get("reopened"))

    async def _try_connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stream = IOStream(sock, max_buffer_size=64 * 1024 * 1024)
        try:
            await stream.connect(self.socket_path)
        except (StreamClosedError, OSError):
            stream.close()
            return None
        return stream

    def _log_path(self):
        return os.path.join(self.run_dir, "supervisor.log")

    async def _spawn(self):
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        with open(self._log_path(), "ab") as out:
            os.chmod(self._log_path(), 0o600)
            process = subprocess.Popen(
                # -P: the run dir (our cwd) stays off sys.path, and so off every job's.
                [sys.executable, "-P", "-m", "jobjoker.supervisor", "--socket", self.socket_path,
                 "--data-dir", os.path.dirname(os.path.abspath(self.run_dir)),
                 "--log", os.path.abspath(self._log_path()), "--daemon"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True,
                cwd=self.run_dir, env=supervisor_environment(), start_new_session=True)
        # The launcher forks the real supervisor and exits at once; reap it without blocking.
        while process.poll() is None:
            await asyncio.sleep(0.005)
        if process.returncode != 0:
            raise Unavailable("the supervisor failed to start (exit code %s); see %s"
                              % (process.returncode, self._log_path()))

    async def request(self, op, **fields):
        """Send one request; return the reply dict or raise ``Unavailable``."""
        if self._stream is None or self._stream.closed():
            raise Unavailable("the supervisor is not connected")
        self._next_id += 1
        request_id = self._next_id
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        fields.update(op=op, id=request_id)
        try:
            await self._stream.write(json.dumps(fields).encode() + b"\n")
            reply = await future
        except StreamClosedError:
            raise Unavailable("the supervisor connection closed during %s" % op)
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok"):
            raise Unavailable("the supervisor refused %s: %s" % (op, reply.get("error")))
        return reply

    async def start_many(self, specs):
        """Start a job for each spec; returns one dict per spec, in order: ``{"pid",
        "start_time"}``, or ``{"error"}`` for a job the supervisor could not start. Raises
        ``Unavailable`` when the supervisor cannot be asked at all."""
        if "start_many" in self.supervisor_ops:
            reply = await self.request("start_many", specs=specs)
            return [result if "pid" in result else
                    {"error": "the supervisor refused start: %s" % result.get("error")}
                    for result in reply["started"]]
        results = await asyncio.gather(*(self.request("start", spec=spec) for spec in specs),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Unavailable):
                raise result
        return [{"error": result.message} if isinstance(result, Unavailable) else result
                for result in results]

    async def _read_loop(self, stream):
        try:
            while True:
                line = await stream.read_until(b"\n", max_bytes=16 * 1024 * 1024)
                message = json.loads(line)
                if "event" in message:
                    try:
                        self.on_event(message)
                    except Exception:
                        log.exception("handling supervisor event %r failed", message)
                else:
                    future = self._pending.get(message.get("id"))
                    if future is not None and not future.done():
                        future.set_result(message)
                        # Let the requester act on its reply before the events that followed
                        # it are handled: a job that ended at once is then finished after its
                        # pid was recorded, not before.
                        await asyncio.sleep(0)
        except StreamClosedError:
            pass
        except Exception:
            log.exception("supervisor connection failed")
        finally:
            stream.close()
            self.supervisor_pid = None  # /health says 503 until we are connected again
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(StreamClosedError())
        if not self.spawn:
            if not self._closing and self.on_gone is not None:
                self.on_gone()  # it exited (its last job ended) or died: nothing to reconnect
            return
        # One reconnect loop at a time: a half-made connection failing inside it must not
        # start a second one (two connections, and a reader nobody ends).
        if not self._closing and (
                self._reconnecting is None or self._reconnecting.done()):
            log.warning("lost the supervisor connection; reconnecting")
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self):
        delay = 0.05
        while not self._closing:
            try:
                await self.connect()
                if self.on_reconnect is not None:
                    await self.on_reconnect()
            except Exception as e:  # keep trying: the jobs are still out there
                log.warning("reconnecting to the supervisor failed: %s", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            # Being the one reconnect loop, it must also cover a drop that came meanwhile.
            if self._stream is not None and not self._stream.closed():
                return

    async def close(self, shutdown=False, kill_jobs=False):
        """Disconnect; with ``shutdown`` ask the supervisor to exit (killing jobs if asked)."""
        self._closing = True
        if shutdown and self._stream is not None and not self._stream.closed():
            try:
                await self.request("shutdown", kill_jobs=kill_jobs)
                # The supervisor closes the connection once its killed jobs are reaped.
                await asyncio.wait_for(asyncio.shield(self._reader), 10.0)
            except (Unavailable, asyncio.TimeoutError):
                pass
        if self._reconnecting is not None and not self._reconnecting.done():
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        if self._stream is not None:
            self._stream.close()
        await asyncio.gather(*self._readers, return_exceptions=True)
