"""Case 8, resource abuse (issue 12: High 3, High 4, Medium 10): the attacks of
tests/test_abuse.py against a real server process, with figures instead of pass/fail.

1. Bodies: 200 connections (50 with ``--quick``) each send 9 MiB of a declared 10 MiB body to
   ``POST /session`` (no credentials), three rounds.
2. Idle connections: the server runs under ``prlimit --nofile=1024:1024``; two client addresses
   each open 2,000 connections (600) that send nothing or half a request's headers, and hold
   them; the server's CPU over the hold and the lines it logged are counted.
3. Big pages: a finished job with 3,200 log entries of 64,000 bytes (~200 MB; 400 with
   ``--quick``); 8 clients with a 4 KiB receive buffer ask for ``GET /jobs/ID/log?limit=100000``
   and never read, three rounds.

Each attack gets its own server. Memory is the server process's, from ``/proc/PID/status``:
RSS before, while the attackers hold their connections, and after each round; the peak is
``VmHWM``, reset at the start of each round (``/proc/PID/clear_refs``) so that it is the
round's own. The allocator keeps memory it freed, so rounds are compared with each other,
never with the first figure. ``/health`` is timed meanwhile by a separate probe process, a new
connection from 127.0.0.2 each time (the attackers use other addresses); a probe that fails or
is refused is counted. Baselines in the same run: the same probe and the server's RSS (and,
for the connections, its CPU) before the attack.
"""
import resource
import select
import socket
import time

from bench.harness import (PYTHON, BenchServer, Child, Scratch, cpu_seconds, latency_row,
                           unavailable_row, value_row)

TITLE = "resource abuse"
TARGET = ("peak RSS growth < 300 MB and < 100 MB round to round, /health p99 <= 100 ms and "
          "never refused under each attack, < 10% of a core while idle connections are held")
MB = 1024 * 1024
GROWTH_BOUND = 300 * MB  # the attacks used to add 1.9 GB (bodies) and 4 GB (pages)
ROUND_BOUND = GROWTH_BOUND // 3
HEALTH_P99_MS = 100
IDLE_CPU_PERCENT = 10
FD_LIMIT = 1024
PROBE_ADDRESS = "127.0.0.2"

# Times GET /health on a new connection from a given address, one line a probe, until killed.
PROBE = '''import http.client, sys, time
port, source, pause, out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
with open(out, "w") as f:
    while True:
        began = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                                    source_address=(source, 0))
            connection.request("GET", "/health")
            reply = connection.getresponse()
            reply.read()
            connection.close()
            line = "%.3f" % ((time.perf_counter() - began) * 1000) if reply.status == 200 \\
                else "fail %d" % reply.status
        except Exception as e:
            line = "fail %s" % type(e).__name__
        f.write(line + "\\n")
        f.flush()
        time.sleep(pause)
'''

BIG = '''from jobjoker import Worker


class Big(Worker):
    """Logs `count` entries of 64,000 bytes each."""

    def run(self):
        pad = "x" * 63990
        for i in range(self.params["count"]):
            self.log("%08d %s" % (i, pad))
'''


class Probe:
    """The /health probe process, its timings written to ``path``."""

    def __init__(self, server, path, pause=0.05):
        self.path = path
        path.write_text("")
        self.child = Child([PYTHON, "-c", PROBE, str(server.port), PROBE_ADDRESS, str(pause),
                            str(path)], log_path=path.with_suffix(".err"))

    def lines(self):
        return self.path.read_text().splitlines()

    def wait_for(self, count, timeout=60.0):
        """Return once the probe has written ``count`` lines (so it runs before an attack)."""
        deadline = time.monotonic() + timeout
        while len(self.lines()) < count:
            if self.child.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the /health probe wrote %d of %d lines: %s" % (
                    len(self.lines()), count, self.path.with_suffix(".err").read_text()[-2000:]))
            time.sleep(0.05)

    def results(self, skip=0):
        """(timings in ms, failures) of the lines after the first ``skip``."""
        lines = self.lines()[skip:]
        return ([float(line) for line in lines if not line.startswith("fail")],
                [line for line in lines if line.startswith("fail")])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.child.close()


def memory(pid, field="VmRSS"):
    """A memory figure of process ``pid`` from /proc/PID/status, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no %s for pid %d" % (field, pid))


def reset_peak(pid):
    """Reset the process's VmHWM to its current RSS; False where the kernel refuses."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mb(value):
    return round(value / MB, 1)


def health_rows(label, attack, probe, skip, idle):
    """The /health figures under ``attack`` (the probe's lines after ``skip``) and idle."""
    during, failures = probe.results(skip)
    name = "%s: /health, %s" % (label, attack)
    rows = [latency_row(name, during) if during else
            unavailable_row(name, "every probe failed"),
            latency_row("%s: /health, the same server before the attack" % label, idle,
                        baseline=True),
            value_row("%s: /health probes failed or refused meanwhile" % label,
                      len(failures), "probes", info=True)]
    met = bool(during) and rows[0]["p99"] <= HEALTH_P99_MS and not failures
    return rows, met


def idle_health(server, tmp, name, count):
    """``count`` /health timings of the server before an attack."""
    with Probe(server, tmp / ("%s-idle.txt" % name), pause=0.02) as probe:
        probe.wait_for(count)
        return probe.results()[0]


def rounds_rows(label, before, rounds, peak_reset):
    """Memory rows of an attack made in rounds: each ``{"held", "peak", "after"}`` in bytes."""
    peak = max(r["peak"] for r in rounds)
    growth = rounds[-1]["held"] - rounds[0]["held"]
    rows = [value_row("%s: server peak RSS growth (VmHWM - RSS before)" % label, mb(peak - before),
                      "MB", peak=mb(peak), round_to_round=mb(growth)),
            value_row("%s: server RSS before the attack" % label, mb(before), "MB",
                      baseline=True)]
    for number, r in enumerate(rounds, 1):
        rows.append(value_row("%s: round %d: server RSS held (peak, after)" % (label, number),
                              mb(r["held"]), "MB", info=True, peak=mb(r["peak"]),
                              after=mb(r["after"])))
    met = peak - before < GROWTH_BOUND and growth < ROUND_BOUND
    note = "%s: VmHWM %s" % (label, "reset at each round" if peak_reset else
                              "could not be reset: each round's peak is the peak so far")
    return rows, met, note


def in_rounds(pid, count, attack):
    """Run ``attack()`` ``count`` times (it returns the sockets it holds, then closed here)."""
    rounds, resets = [], []
    for _ in range(count):
        resets.append(reset_peak(pid))
        socks = attack()
        held = memory(pid)
        for sock in socks:
            sock.close()
        peak = memory(pid, "VmHWM")
        time.sleep(1)  # the server sees the closes and frees what they held
        rounds.append({"held": held, "peak": peak, "after": memory(pid)})
    return rounds, all(resets)


# --- 1. request bodies ---------------------------------------------------------------------

def send_partial_body(port, path, declared, send):
    """A connection that declares a body of ``declared`` bytes and sends ``send`` of them, or
    until the server refuses it; returned open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (path.encode(), declared))
    piece = b"x" * (256 * 1024)
    try:
        sock.sendall(head)
        for _ in range(send // len(piece)):
            sock.sendall(piece)
    except OSError:
        pass  # refused and closed by the server: what a bound looks like from outside
    return sock


def bodies(tmp, quick):
    count = 50 if quick else 200
    label = "bodies"
    with BenchServer(tmp, {}) as server:
        pid = server.process.pid
        idle = idle_health(server, tmp, "bodies", 20 if quick else 100)
        before = memory(pid)
        with Probe(server, tmp / "bodies-probe.txt") as probe:
            probe.wait_for(1)
            rounds, reset = in_rounds(pid, 3, lambda: [
                send_partial_body(server.port, "/session", 10 * MB, 9 * MB)
                for _ in range(count)])
        health, health_met = health_rows(
            label, "%d x 9 MiB bodies to POST /session" % count, probe, 1, idle)
    memory_rows, memory_met, note = rounds_rows(label, before, rounds, reset)
    return health + memory_rows, health_met and memory_met, [note]


# --- 2. idle connections -------------------------------------------------------------------

def open_idle(port, count, source):
    """Up to ``count`` connections from ``source``: every other one sends half a request's
    headers, the rest nothing. Stops at the first that cannot be opened."""
    socks = []
    for n in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                            source_address=(source, 0))
        except OSError:
            break
        socks.append(sock)
        if n % 2:
            try:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            except OSError:
                pass  # refused and closed already
    return socks


def refused(socks):
    """How many of ``socks`` the server has answered or closed (those past its caps)."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    return len(poller.poll(0))


def listen_overflows():
    """The kernel's count of connections dropped at a full listen queue (this network
    namespace, every process), or None where /proc/net/netstat does not say."""
    try:
        with open("/proc/net/netstat") as f:
            lines = [line.split() for line in f if line.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1]))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def log_lines(server):
    """Lines in the server's log, but for the access lines of the probe's /health requests."""
    try:
        with open(server.stderr_path, "rb") as f:
            return sum(1 for line in f
                       if b"GET /health (%s)" % PROBE_ADDRESS.encode() not in line)
    except OSError:
        return 0


def connections(tmp, quick):
    per_client, hold = (600, 3) if quick else (2000, 10)
    clients = ("127.0.0.3", "127.0.0.4")
    label = "idle"
    prefix = ("prlimit", "--nofile=%d:%d" % (FD_LIMIT, FD_LIMIT))
    with BenchServer(tmp, {}, prefix=prefix) as server:
        pid = server.process.pid
        with Probe(server, tmp / "connections-idle.txt") as probe:
            probe.wait_for(1)  # probed as under attack, so both CPU figures include /health
            cpu, began = cpu_seconds(pid), time.monotonic()
            time.sleep(hold)  # the idle server's CPU over the same span as the attack's hold
            idle_cpu = 100 * (cpu_seconds(pid) - cpu) / (time.monotonic() - began)
        idle = probe.results()[0]
        lines_before, overflows = log_lines(server), listen_overflows()
        socks = []
        with Probe(server, tmp / "connections-probe.txt") as probe:
            probe.wait_for(1)
            try:
                cpu, began = cpu_seconds(pid), time.monotonic()
                for client in clients:
                    socks += open_idle(server.port, per_client, client)
                opening = (cpu_seconds(pid) - cpu, time.monotonic() - began)
                cpu, began = cpu_seconds(pid), time.monotonic()
                time.sleep(hold)  # held: a server that spins spends its CPU now
                holding = (cpu_seconds(pid) - cpu, time.monotonic() - began)
                closed = refused(socks)
            finally:
                for sock in socks:
                    sock.close()
        lines = log_lines(server) - lines_before
        if overflows is not None:
            overflows = listen_overflows() - overflows
    health, health_met = health_rows(
        label, "%d idle connections, 2 addresses, %d fds" % (2 * per_client, FD_LIMIT),
        probe, 1, idle)
    held_cpu = 100 * holding[0] / holding[1]
    rows = health + [
        value_row("%s: server CPU while they are held (%d s)" % (label, hold), held_cpu,
                  "% of a core", cpu_seconds=holding[0]),
        value_row("%s: server CPU, the same server idle (%d s)" % (label, hold), idle_cpu,
                  "% of a core", baseline=True),
        value_row("%s: server CPU while they are opened" % label,
                  100 * opening[0] / opening[1], "% of a core", info=True,
                  cpu_seconds=opening[0], over_seconds=opening[1]),
        value_row("%s: connections opened (refused by the server)" % label, len(socks),
                  "opened", info=True, refused=closed),
        value_row("%s: lines the server logged (the probe's aside)" % label, lines, "lines",
                  info=True),
        value_row("%s: listen-queue overflows (the kernel's, machine-wide)" % label,
                  overflows, "connections", info=True) if overflows is not None else
        unavailable_row("%s: listen-queue overflows" % label, "/proc/net/netstat has none")]
    return rows, health_met and held_cpu < IDLE_CPU_PERCENT, []


# --- 3. big pages, clients that do not read ------------------------------------------------

def finished_big_job(server, entries, timeout=900):
    """A finished job with ``entries`` log entries of 64,000 bytes; its id."""
    status, body = server.call("POST", "/jobs", {"worker": "Big", "start": True,
                                                 "parameters": {"count": entries}})
    assert status == 201, body
    job = body["data"][0]
    if job["status"] == "idle":  # the server ignores "start": a second request
        status, body = server.call("PUT", "/jobs/%s/status" % job["id"], "start")
        assert status == 200, body
    deadline = time.monotonic() + timeout
    while job["status"] in ("idle", "active"):
        if time.monotonic() > deadline:
            raise RuntimeError("the Big job did not end within %d s" % timeout)
        time.sleep(0.5)
        status, body = server.get("/jobs/%s" % job["id"], timeout=60)
        job = body["data"][0]
    if job["status"] != "done":
        raise RuntimeError("the Big job ended %s: %s" % (job["status"], job))
    return job["id"]


def open_quiet(port, request):
    """A connection with a tiny receive buffer that sends ``request`` and never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


def quiet_clients(port, request, count, hold):
    """``count`` non-reading clients, each with its reply begun, held for ``hold`` seconds."""
    socks = [open_quiet(port, request) for _ in range(count)]
    for sock in socks:
        sock.settimeout(120)
        sock.recv(1, socket.MSG_PEEK)  # the page is read and its reply begun
    time.sleep(hold)  # the server holds what it has not sent yet
    return socks


def pages(tmp, quick):
    entries, hold = (400, 1) if quick else (3200, 3)
    label = "pages"
    with BenchServer(tmp, {"Big": BIG}) as server:
        pid = server.process.pid
        job_id = finished_big_job(server, entries)
        idle = idle_health(server, tmp, "pages", 20 if quick else 100)
        before = memory(pid)
        request = ("GET /jobs/%s/log?limit=100000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: %s\r\n\r\n" % (job_id, server.auth)).encode()
        with Probe(server, tmp / "pages-probe.txt") as probe:
            probe.wait_for(1)
            rounds, reset = in_rounds(pid, 3, lambda: quiet_clients(server.port, request, 8,
                                                                   hold))
        health, health_met = health_rows(
            label, "8 clients not reading pages of a %d MB log" % round(entries * 64000 / MB),
            probe, 1, idle)
    memory_rows, memory_met, note = rounds_rows(label, before, rounds, reset)
    return health + memory_rows, health_met and memory_met, [note]


def raise_own_fd_limit():
    """This process opens thousands of sockets: its soft fd limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run(options):
    raise_own_fd_limit()
    rows, notes, met = [], [], True
    with Scratch("abuse") as tmp:
        for name, attack in (("bodies", bodies), ("connections", connections),
                             ("pages", pages)):
            (tmp / name).mkdir()
            attack_rows, attack_met, attack_notes = attack(tmp / name, options.quick)
            rows += attack_rows
            notes += attack_notes
            met = met and attack_met
    notes.append("/health probed from %s on a new connection each time, 50 ms apart; the "
                 "attackers connect from other addresses" % PROBE_ADDRESS)
    return {"title": TITLE, "target": TARGET, "met": met, "rows": rows, "notes": notes}
