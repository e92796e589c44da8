"""What every benchmark case shares: real server processes, child processes, an HTTP client,
WebSockets, /proc readings and the statistics of the table.

Contract: ``BenchServer`` starts ``run_server.py`` on a scratch data dir (SQLite) with a workers
dir holding the given worker sources, waits until ``/health`` answers and the admin's password is
verified, and on ``stop()`` (or leaving its ``with`` block, exceptions and Ctrl-C included) sends
SIGTERM, waits, and SIGKILLs whatever still runs under its supervisor (the supervisor and every
job, found by the supervisor's socket path in ``/proc/*/cmdline``, as tests/conftest.py does).
``Child`` is any other process a case starts (RQ or Celery workers, subscriber processes): each
leads its own process group and its whole group is killed on exit. ``latency_summary`` and
``rate_summary`` give the figures of the table. Nothing here runs at import time.
"""
import asyncio
import base64
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from jobjoker import proc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the venv's python: a shim from PATH would add its own start-up time
PASSWORD = "bench-password"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- statistics ------------------------------------------------------------------------------

def percentile(ordered, q):
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


def latency_summary(samples_ms):
    """p50/p99/min/max (milliseconds, 3 decimals) and the sample count."""
    ordered = sorted(samples_ms)
    return {"p50": round(statistics.median(ordered), 3), "p99": round(percentile(ordered, 99), 3),
            "min": round(ordered[0], 3), "max": round(ordered[-1], 3), "n": len(ordered)}


def rate_summary(rates):
    """The median of several rounds, with every round kept."""
    return {"median": round(statistics.median(rates), 1), "rounds": [round(r, 1) for r in rates],
            "n": len(rates)}


# --- processes -------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_with_in_cmdline(needle):
    """Every live pid whose command line contains ``needle`` (bytes or str)."""
    needle = os.fsencode(needle)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if needle in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_leftovers(needle):
    """SIGKILL every process (and its group) whose command line holds ``needle``."""
    for pid in pids_with_in_cmdline(needle):
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def parent_pid(pid):
    return proc.parent(pid)


def cpu_seconds(pid, children=False):
    """User + system CPU time a process has used so far (from /proc/PID/stat); with
    ``children``, plus that of the children it has reaped (cutime + cstime)."""
    fields = proc.stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def rss_bytes(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def uss_bytes(pid):
    """Unique set size: the memory only this process holds (Private_Clean + Private_Dirty)."""
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    return total


class Child:
    """A helper process in its own process group; the group is killed when it is closed."""

    def __init__(self, argv, env=None, cwd=None, log_path=None, stdout=None):
        self.log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else self.log, stderr=self.log,
            start_new_session=True)
        self.pid = self.process.pid

    def close(self, grace=5.0):
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # whatever the leader left behind in its group
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait()
        if self.log is not subprocess.DEVNULL:
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Scratch:
    """A temporary directory removed on exit."""

    def __init__(self, prefix):
        self.path = pathlib.Path(tempfile.mkdtemp(prefix="jj-bench-%s-" % prefix))

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


# --- the server ------------------------------------------------------------------------------

def basic_auth_header(user="admin", password=PASSWORD):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


class BenchServer:
    """A real ``run_server.py`` process on SQLite in ``tmp/data``, workers in ``tmp/workers``;
    ``prefix`` is a command that execs it (``prlimit --nofile=N:N``: the pid stays the server's).
    """

    def __init__(self, tmp, workers, args=(), data_dir=None, prefix=()):
        self.tmp = pathlib.Path(tmp)
        self.data_dir = pathlib.Path(data_dir) if data_dir else self.tmp / "data"
        self.workers_dir = self.tmp / "workers"
        self.workers_dir.mkdir(exist_ok=True)
        for name, source in workers.items():
            (self.workers_dir / ("%s.py" % name)).write_text(source)
        self.port = free_port()
        self.args = list(args)
        self.prefix = list(prefix)
        self.process = None
        self.socket_path = None
        self.stderr_path = self.tmp / ("server-%d.log" % self.port)
        self.auth = basic_auth_header()
        self.ready_seconds = None

    def start(self, timeout=120.0):
        """Start the process and return once it answers authenticated requests."""
        from jobjoker.supervisor_client import socket_path_for
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
        env["JOBJOKER_ADMIN_PASSWORD"] = PASSWORD
        self.socket_path = socket_path_for(os.fspath(self.data_dir / "run"))
        begun = time.perf_counter()
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [*self.prefix, PYTHON, str(ROOT / "run_server.py"), "--port", str(self.port),
                 "--data-dir", str(self.data_dir), "--workers-dir", str(self.workers_dir),
                 *self.args],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited with %s: %s" % (
                    self.process.returncode, self.stderr_tail()))
            try:
                if self.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /health within %.0f s: %s"
                                   % (timeout, self.stderr_tail()))
            time.sleep(0.05)
        self.ready_seconds = time.perf_counter() - begun
        # The first Basic login runs scrypt (~0.5 s); later ones hit the server's cache.
        status, body = self.get("/workers", timeout=60)
        if status != 200:
            raise RuntimeError("the admin cannot sign in: %s %s" % (status, body))
        return self

    def stderr_tail(self, size=2000):
        try:
            return self.stderr_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def get(self, path, timeout=10):
        """A blocking GET (for setup only, never inside a measurement)."""
        return self.call("GET", path, timeout=timeout)

    def call(self, method, path, body=None, timeout=30):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                         method=method, data=body,
                                         headers={"Authorization": self.auth})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw or b"null")
            except ValueError:
                return e.code, raw.decode(errors="replace")

    @property
    def supervisor_pid(self):
        """The supervisor: the process under this socket path whose parent is not one."""
        pids = set(pids_with_in_cmdline(self.socket_path))
        for pid in sorted(pids):
            try:
                if parent_pid(pid) not in pids:
                    return pid
            except OSError:
                continue
        return None

    def stop(self):
        """SIGTERM the server (it leaves jobs running), then kill its supervisor and jobs."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            if self.socket_path:
                kill_leftovers(self.socket_path)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind, value, traceback):
        self.stop()
        if kind is not None and not issubclass(kind, KeyboardInterrupt):
            sys.stderr.write("--- the server's log (last lines) ---\n%s\n---\n"
                             % self.stderr_tail(4000))


# --- HTTP and WebSockets, on asyncio ---------------------------------------------------------

class HTTPConnection:
    """One keep-alive HTTP/1.1 connection: cheap for the client, so the server is measured.

    (Tornado's simple client opens a connection per request; on two cores the client's own cost
    would show up in the server's figures.)
    """

    def __init__(self, port, auth):
        self.port = port
        self.auth = auth
        self.reader = self.writer = None

    async def _connect(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method, path, body=b"", with_headers=False):
        """``(status, body bytes)``, and the reply's headers (lower-case names) with
        ``with_headers``."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        body = body or b""
        if self.writer is None:
            await self._connect()
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (method, path, self.port, self.auth, len(body)))
        self.writer.write(head.encode() + body)
        raw_head = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return (status, data, headers) if with_headers else (status, data)

    async def json(self, method, path, body=b""):
        """``(status, parsed JSON body)``."""
        status, data = await self.request(method, path, body)
        return status, json.loads(data) if data else None

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


async def websocket(server, path):
    """An open Tornado WebSocket client connection to ``path`` on ``server``."""
    import tornado.httpclient
    import tornado.websocket
    request = tornado.httpclient.HTTPRequest(
        "ws://127.0.0.1:%d%s" % (server.port, path), headers={"Authorization": server.auth},
        request_timeout=60)
    return await tornado.websocket.websocket_connect(request, max_message_size=256 * 2 ** 20)


async def read_json(connection, timeout=120.0):
    """The next WebSocket message parsed, or None when the server closed the socket."""
    raw = await asyncio.wait_for(connection.read_message(), timeout)
    return None if raw is None else json.loads(raw)


def machine():
    """What the figures were measured on."""
    import platform
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import sqlite3
    import peewee
    import tornado
    with open("/proc/meminfo") as f:
        memory_kib = int(f.readline().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(memory_kib / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "sqlite": sqlite3.sqlite_version, "tornado": tornado.version,
            "peewee": peewee.__version__, "load_average": os.getloadavg()[0]}


# --- rows of the table -----------------------------------------------------------------------

def latency_row(name, samples_ms, baseline=False, **extra):
    """A latency figure: p50/p99/min/max in milliseconds."""
    return dict({"name": name, "baseline": baseline, "kind": "latency", "unit": "ms"},
                **latency_summary(samples_ms), **extra)


def rate_row(name, rates, unit, baseline=False, **extra):
    """A rate figure: the median of several rounds."""
    return dict({"name": name, "baseline": baseline, "kind": "rate", "unit": unit},
                **rate_summary(rates), **extra)


def value_row(name, value, unit, baseline=False, **extra):
    """A single measured value (memory, CPU)."""
    return dict({"name": name, "baseline": baseline, "kind": "value", "unit": unit,
                 "value": value}, **extra)


def unavailable_row(name, reason, baseline=False):
    """A figure that could not be measured in this run, and why."""
    return {"name": name, "baseline": baseline, "kind": "unavailable", "reason": reason}
