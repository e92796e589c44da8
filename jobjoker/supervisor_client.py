"""The server's side of the supervisor protocol (see ``jobjoker.supervisor``), on the IOLoop.

Contract: ``SupervisorClient.connect()`` connects to the supervisor of this data dir, starting one
(detached, with a clean environment) when none answers; ``request(op, **fields)`` sends one request
and returns its reply, raising ``Unavailable`` when the supervisor is away or answers with an error;
``start_many(specs)`` starts many jobs in one request (one result per spec, a pid or an error), or
in pipelined ``start`` requests to a supervisor too old to know ``start_many`` (one started by an
earlier version outlives an upgrade as long as it has jobs: ``supervisor_protocol`` says which
version of the protocol the connected one speaks; one found idle is asked to exit and replaced).
Pushed events (job exits) go to ``on_event``. When the connection drops the client reconnects
(starting a new supervisor if needed) and calls ``on_reconnect`` so the owner can resynchronise.
Nothing here blocks the IOLoop.
"""
import asyncio
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys

from tornado.iostream import IOStream, StreamClosedError

from jobjoker import checkout
from jobjoker.errors import Unavailable
from jobjoker.supervisor import PROTOCOL

log = logging.getLogger(__name__)

MAX_UNIX_PATH = 100  # sun_path holds 108 bytes; keep a margin
SAFE_ENVIRONMENT = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "USER",
                    "LOGNAME", "SHELL", "TMPDIR")


def socket_path_for(run_dir):
    """The supervisor's socket: in the run dir, or a short private path when that is too long."""
    path = os.path.join(run_dir, "supervisor.sock")
    if len(os.fsencode(path)) <= MAX_UNIX_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(os.path.abspath(run_dir))).hexdigest()[:16]
    private = os.path.join("/tmp", "jobjoker-%d" % os.getuid())
    os.makedirs(private, mode=0o700, exist_ok=True)
    os.chmod(private, 0o700)
    return os.path.join(private, digest + ".sock")


def supervisor_environment():
    """What the supervisor (and so every job) inherits: no secrets, no database URL.

    From a checkout it also gets the checkout's root as PYTHONPATH, to import jobjoker when the
    checkout is not installed; the supervisor drops it before any job starts
    (``supervisor.forget_import_path``). An installed jobjoker needs none.
    """
    env = {k: os.environ[k] for k in SAFE_ENVIRONMENT if k in os.environ}
    env.setdefault("PATH", os.defpath)
    if checkout.ROOT is not None:
        env["PYTHONPATH"] = checkout.ROOT
    env["PYTHONUNBUFFERED"] = "1"
    return env


class SupervisorClient:
    """An asynchronous connection to the supervisor, which it starts when needed."""

    def __init__(self, run_dir, on_event, on_reconnect=None, connect_timeout=10.0):
        self.run_dir = os.fspath(run_dir)
        self.socket_path = socket_path_for(self.run_dir)
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.connect_timeout = connect_timeout
        self.supervisor_pid = None  # set while connected
        self.supervisor_ops = ()  # what the connected supervisor can do
        self.supervisor_protocol = None  # its version of the protocol (jobjoker.supervisor)
        self._stream = None
        self._pending = {}
        self._next_id = 0
        self._closing = False
        self._reader = None
        self._readers = set()  # every read loop still running, to end them all on close
        self._reconnecting = None  # the one reconnect loop, when one runs
        self._retiring = False  # an older supervisor is being replaced

    async def connect(self):
        """Connect to the running supervisor, or start one and connect to it."""
        stream = await self._try_connect()
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
        if self.supervisor_protocol < PROTOCOL:
            if await self._retire_if_idle():
                await self.connect()  # to a new one, of this version
                return
            log.warning("supervisor pid %s speaks protocol %s, older than this server's %s: it "
                        "was started by an earlier version and runs jobs; it serves until a "
                        "start of the server finds it idle", self.supervisor_pid,
                        self.supervisor_protocol, PROTOCOL)
        log.info("supervisor pid %s on %s (protocol %s)", self.supervisor_pid, self.socket_path,
                 self.supervisor_protocol)

    async def _retire_if_idle(self):
        """Ask the connected (older) supervisor to exit if it runs no job, so that jobs from
        now on get this version's (from protocol 3, a job's folder is never its own: see
        ``jobjoker.jobdir``). True once it has gone."""
        if (await self.request("status"))["running"]:
            return False
        log.info("supervisor pid %s speaks protocol %s, older than this server's %s, and runs "
                 "no job: replacing it", self.supervisor_pid, self.supervisor_protocol, PROTOCOL)
        self._retiring = True  # its goodbye is no loss to reconnect from
        try:
            await self.request("shutdown", kill_jobs=False)
            await asyncio.wait_for(asyncio.shield(self._reader), self.connect_timeout)
        except (Unavailable, asyncio.TimeoutError):
            return False
        finally:
            self._retiring = False
        return True

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
                 "--daemon"],
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
        # One reconnect loop at a time: a half-made connection failing inside it must not
        # start a second one (two connections, and a reader nobody ends).
        if not self._closing and not self._retiring and (
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
