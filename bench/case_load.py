"""Case 7, responsiveness under load: ``GET /health`` timed from a separate probe process while
200 jobs each log an entry every 5 ms (40,000 entries a second to store) and 100 WebSocket
subscribers follow half of them, on SQLite and on MariaDB.

The probe opens a new connection per request, as a load balancer's health check does, so the
figure is the server's (and the machine's) latency, not a client's queueing. The subscribers run
in their own process (``bench.fanout_subscriber``) and report the delay from each entry's stamp
to its arrival. Baseline in the same run: the same probe against the same server before the
jobs start. MariaDB is the one at ``JJ_BENCH_MYSQL_URL`` (default root on 127.0.0.1:3306); a
database of this run's own (its name ends with the process id, so that runs side by side do not
meet) is created there and dropped after.
"""
import json
import os
import subprocess
import time
import urllib.parse

from bench.fanout_subscriber import histogram_percentile
from bench.harness import (PYTHON, ROOT, BenchServer, Child, Scratch, latency_row,
                           unavailable_row, value_row)

TITLE = "/health under load"
TARGET = "p99 <= 20 ms with 200 jobs logging every 5 ms and 100 subscribers (SQLite, MariaDB)"
MYSQL_URL = os.environ.get("JJ_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/jobjoker_bench")

CHATTER = '''import time
from jobjoker import Worker


class Chatter(Worker):
    """Logs an entry stamped with its time every ``every`` seconds until it is stopped."""

    def run(self):
        every = self.params["every"]
        while self.is_active():
            self.log("t=%.6f" % time.time())
            time.sleep(every)
'''

# Times /health the way a load balancer would: a new connection per request.
PROBE = '''import http.client, json, sys, time
port, count, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
times = []
for _ in range(count):
    began = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/health")
    reply = connection.getresponse()
    body = reply.read()
    connection.close()
    if reply.status != 200:
        sys.exit("health answered %s: %r" % (reply.status, body))
    times.append((time.perf_counter() - began) * 1000)
    time.sleep(pause)
print(json.dumps(times))
'''


def probe(server, count, pause):
    """``count`` timings of /health in ms, ``pause`` seconds apart."""
    result = subprocess.run([PYTHON, "-c", PROBE, str(server.port), str(count), str(pause)],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError("the /health probe failed: %s" % result.stderr[-2000:])
    return json.loads(result.stdout)


def mysql_database(url, statement):
    """Run ``statement`` (with the database's name for %s) on the MariaDB server of ``url``."""
    import pymysql
    parts = urllib.parse.urlsplit(url)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root", password=parts.password or "",
                                 connect_timeout=3)
    with connection:
        with connection.cursor() as cursor:
            cursor.execute(statement % parts.path.lstrip("/"))


def under_load(server, tmp, jobs, followed, probes, pause):
    """(idle /health ms, loaded /health ms, the loop lag /health reported at the end of the
    load, subscribers' report) on one server."""
    idle = probe(server, probes, 0.02)
    ids = []
    for _ in range(jobs):
        status, body = server.call("POST", "/jobs", {"worker": "Chatter", "start": True,
                                                     "parameters": {"every": 0.005}})
        assert status == 201, body
        ids.append(body["data"][0]["id"])
    out = tmp / "subscribers.json"
    env = dict(os.environ, JJ_BENCH_AUTH=server.auth, PYTHONPATH=str(ROOT))
    argv = [PYTHON, "-m", "bench.fanout_subscriber", "--port", str(server.port), "--count", "1",
            "--out", str(out)]
    for job_id in ids[::jobs // followed]:
        argv += ["--job", job_id]
    with Child(argv, env=env, cwd=ROOT, log_path=tmp / "subscribers.err",
               stdout=subprocess.PIPE) as subscribers:
        if subscribers.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the subscriber process failed: %s"
                               % (tmp / "subscribers.err").read_text()[-2000:])
        time.sleep(1)  # every job past its start, every subscriber past its backlog
        loaded = probe(server, probes, pause)
        status, body = server.get("/health", timeout=60)
        assert status == 200, body
        lag = body["data"][0].get("loop_lag_ms")
        for job_id in ids:
            status, body = server.call("PUT", "/jobs/%s/status" % job_id, "stop")
            assert status in (202, 409), body
        subscribers.process.wait(timeout=300)
    return idle, loaded, lag, json.loads(out.read_text())


def delivery_row(name, report):
    """The subscribers' delay from an entry's stamp to its arrival, from their histogram."""
    histogram = {int(key): count for key, count in report["histogram"].items()}
    if not histogram:
        return unavailable_row(name, "no stamped entry reached a subscriber")
    low, high = report["min"], report["max"]
    p50, p99 = (min(max(histogram_percentile(histogram, q), low), high) for q in (50, 99))
    return {"name": name, "baseline": False, "kind": "latency", "unit": "ms", "info": True,
            "p50": round(p50, 3), "p99": round(p99, 3), "min": round(low, 3),
            "max": round(high, 3), "n": sum(histogram.values())}


def one_backend(label, tmp, args, jobs, followed, probes, pause):
    """The rows of one database backend."""
    tmp.mkdir()
    with BenchServer(tmp, {"Chatter": CHATTER}, args=args) as server:
        idle, loaded, lag, report = under_load(server, tmp, jobs, followed, probes, pause)
    lag_row = unavailable_row("%s: IOLoop lag under this load" % label,
                              "this server's /health reports no loop_lag_ms") if lag is None \
        else value_row("%s: IOLoop lag p99 over the last minute of load (/health's "
                       "loop_lag_ms)" % label, lag["p99"], "ms", info=True, p50=lag["p50"],
                       max=lag["max"])
    return [latency_row("%s: /health, %d jobs logging, %d subscribers" % (label, jobs, followed),
                        loaded),
            latency_row("%s: /health, the same server idle" % label, idle, baseline=True),
            lag_row,
            delivery_row("%s: entry logged -> at a subscriber, under this load" % label,
                         report),
            value_row("%s: entries the subscribers received" % label,
                      sum(report["entries"]), "entries", info=True)]


def own_database(url):
    """``url`` with a database name of this process's own."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="%s_%d" % (parts.path, os.getpid())))


def run(options):
    # A full run probes for about a minute, the window of /health's loop_lag_ms.
    jobs, followed, probes, pause = (40, 20, 60, 0.02) if options.quick else \
        (200, 100, 300, 0.2)
    rows, notes, p99s = [], [], []
    with Scratch("load") as tmp:
        rows += one_backend("SQLite", tmp / "sqlite", (), jobs, followed, probes, pause)
        p99s.append(rows[0]["p99"])
        url = own_database(MYSQL_URL)
        try:
            mysql_database(url, "DROP DATABASE IF EXISTS `%s`")
            mysql_database(url, "CREATE DATABASE `%s` CHARACTER SET utf8mb4")
        except Exception as e:  # noqa: BLE001 - any failure to reach it is reported as such
            rows.append(unavailable_row("MariaDB: /health under the same load",
                                        "MariaDB at %s is not reachable: %s" % (MYSQL_URL, e)))
        else:
            try:
                mariadb = one_backend("MariaDB", tmp / "mariadb", ("--database", url),
                                      jobs, followed, probes, pause)
            finally:
                mysql_database(url, "DROP DATABASE IF EXISTS `%s`")
            rows += mariadb
            p99s.append(mariadb[0]["p99"])
    notes.append("each job logs an entry every 5 ms; the probe asks /health %d times, %d ms "
                 "apart, on a new connection each time" % (probes, pause * 1000))
    return {"title": TITLE, "target": TARGET, "met": len(p99s) == 2 and max(p99s) <= 20,
            "rows": rows, "notes": notes}
