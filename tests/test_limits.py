"""Bounded resources against a real server process and real jobs: a job flooding its log past
the cap, and a disk that fills up under a logging job."""
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from jobjoker.client import Client
from tests.support import (process_alive, processes_of, unavailable, until,
                           workers_folder)

FLOOD = '''import os, time
from jobjoker import Worker


class Flood(Worker):
    """Logs `count` lines of 80 bytes, says so, then waits for `release` to exist."""

    def run(self):
        pad = "x" * 64
        for i in range(self.params["count"]):
            self.log("line %08d %s" % (i, pad))
            if self.params.get("pause") and i % 100 == 0:
                time.sleep(self.params["pause"])
        self.log("flooded")
        if self.params.get("flooded"):  # a full disk may lose the entry: say it here too
            open(self.params["flooded"], "w").close()
        while not os.path.exists(self.params["release"]):
            time.sleep(0.02)
        self.log("last line")
'''


@pytest.fixture
def start_server(servers, tmp_path):
    workers = workers_folder(tmp_path / "workers", {"Flood": FLOOD}, samples=())

    def start(*args):
        return servers(*args, workers_dir=workers).wait_ready()
    return start


def last_messages(server, job_id, count=5):
    total = server.job(job_id)["log_count"]
    return [e["message"] for e in server.api("GET", "/jobs/%s/log?offset=%d&limit=%d"
                                             % (job_id, max(0, total - count), count))]


def test_a_job_flooding_its_log_keeps_head_and_tail_and_little_disk(start_server, tmp_path):
    server = start_server("--max-log-bytes", "2M")
    release = tmp_path / "release"
    job_id = server.create_job("Flood", {"count": 200000, "release": str(release)})["id"]
    # ~19 MB of entries
    until(lambda: "flooded" in last_messages(server, job_id), timeout=120, what="the flood")
    # The spool is ~20 MB long but holds only what is not stored yet on disk.
    spool = os.stat(server.data_dir / "jobs" / job_id / "log.spool")
    assert spool.st_size > 15 * 1024 * 1024
    assert spool.st_blocks * 512 < 4 * 1024 * 1024
    release.touch()
    final = server.wait_for_job(job_id)
    assert final["status"] == "done", final
    total = final["log_count"]
    assert total == 200000 + 5  # STARTED, 200,000 lines, flooded, last line, ENDED; the marker
    head = server.api("GET", "/jobs/%s/log?limit=100000" % job_id)
    assert head[0]["message"].startswith("STARTED")
    lines = [e for e in head if e["message"].startswith("line ")]
    assert [e["message"][:13] for e in lines] == ["line %08d" % i for i in range(len(lines))]
    marker = head[len(lines) + 1]
    assert marker["message"].startswith("[JobJoker]") and "dropped here" in marker["message"]
    assert marker["seq"] == len(lines) + 1
    tail = last_messages(server, job_id, 3)
    assert tail[0] == "last line" or tail[1] == "last line"
    assert tail[-1].startswith("ENDED done")
    # What is stored stays within the cap.
    with sqlite3.connect(server.data_dir / "jobjoker.sqlite3") as db:
        (stored,) = db.execute("SELECT SUM(LENGTH(data)) FROM chunk WHERE job = ? AND "
                               "stream = 0", (job_id,)).fetchone()
    assert 1.8 * 1024 * 1024 < stored <= 2 * 1024 * 1024
    # A follower from the start gets the head, the marker, then the tail, told of the gap.
    client = Client(server.url, *server.auth)
    seqs = [event.seq for event in client.follow(job_id) if event.kind == "log"]
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    assert len(gaps) == 1 and gaps[0][0] == marker["seq"]
    assert seqs[0] == 0 and seqs[-1] == total - 1


@pytest.fixture
def small_disk(tmp_path):
    """tmp_path/data on a 48 MiB tmpfs of its own (root only; CI runs as root)."""
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs",
                              str(data)], capture_output=True, text=True)
    if mounted.returncode != 0:
        unavailable("a full disk is tested on a tmpfs, which needs root to mount: %s"
                    % mounted.stderr.strip())
    yield data
    subprocess.run(["umount", "-l", str(data)], check=False)


def fill(path, leave):
    """Fill the file system of ``path`` with a ballast file, then give ``leave`` bytes back."""
    ballast = path / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1024 * 1024))
        except OSError:
            pass
        f.truncate(max(0, os.fstat(f.fileno()).st_size - leave))
    return ballast


def test_a_full_disk_truncates_the_log_with_a_marker_and_health_says_so(
        start_server, small_disk, tmp_path):
    server = start_server()
    release = tmp_path / "release"
    flooded = tmp_path / "flooded"
    job_id = server.create_job("Flood", {"count": 60000, "pause": 0.001, "release": str(release),
                                         "flooded": str(flooded)})["id"]
    until(lambda: server.job(job_id)["log_count"] > 100, what="the first entries")
    ballast = fill(small_disk, leave=256 * 1024)
    health = until(lambda: (lambda reply: reply.code == 503 and reply)(
        server.call("GET", "/health")), timeout=60, what="/health to report the full disk")
    assert "the disk is full" in health.json["message"]
    # Nothing crashed: the server answers, and the job logs the rest of its flood into the full
    # disk and waits for its release, still active (its logging does not fail it).
    assert server.job(job_id)["status"] == "active"
    until(flooded.exists, timeout=120, what="the flood")
    assert server.job(job_id)["status"] == "active"
    ballast.unlink()  # room again
    until(lambda: server.call("GET", "/health").code == 200, timeout=60,
          what="/health to recover")
    release.touch()
    final = server.wait_for_job(job_id)
    assert final["status"] == "done", final
    messages = server.messages(job_id)
    lost = [m for m in messages if m.startswith("[JobJoker]")]
    assert lost and all("the disk was full" in m for m in lost), lost
    lines = [int(m.split()[1]) for m in messages if m.startswith("line ")]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)  # in order, never twice
    counted = sum(int(m.split()[1]) for m in lost)
    # Each entry stored, or counted as lost ("flooded" itself may be lost).
    assert len(lines) + ("flooded" in messages) + counted == 60001
    assert messages[-2:] == ["last line", messages[-1]] and messages[-1].startswith("ENDED done")


def test_a_job_ending_on_a_full_disk_ends_done_with_the_marker_and_nothing_torn(
        start_server, small_disk, tmp_path):
    # Issue 12, High 2: the job floods its log into a full disk and ends while it is still
    # full. Its held entries and the count of the lost ones must not go with it, its end must
    # not be taken for a lost process, and another job must not be orphaned.
    server = start_server()
    release, other_release = tmp_path / "release", tmp_path / "other-release"
    flooded = tmp_path / "flooded"
    job_id = server.create_job("Flood", {"count": 200000, "pause": 0.001, "release": str(release),
                                         "flooded": str(flooded)})["id"]
    other = server.create_job("Flood", {"count": 10, "release": str(other_release)})["id"]
    until(lambda: server.job(job_id)["log_count"] > 100, what="the first entries")
    jobs_pids = {server.job(job_id)["pid"], server.job(other)["pid"]}
    (supervisor,) = set(processes_of(server.supervisor_socket)) - jobs_pids
    ballast = fill(small_disk, leave=0)
    until(flooded.exists, timeout=120, what="the flood")
    release.touch()  # it ends while the disk is full
    until(lambda: not (tmp_path / "data" / "jobs" / job_id / "log.spool").exists()
          or (tmp_path / "data" / "jobs" / job_id / "run-end.json").exists(),
          timeout=60, what="the job's end")
    ballast.unlink()
    final = server.wait_for_job(job_id)
    assert final["status"] == "done", final  # not "error" as lost
    messages = server.messages(job_id)
    lost = [m for m in messages if m.startswith("[JobJoker]")]
    assert lost and all("the disk was full" in m for m in lost), lost
    lines = [m for m in messages if m.startswith("line ")]
    assert all(len(m) == len("line 00000000 ") + 64 for m in lines)  # no entry torn
    counted = sum(int(m.split()[1]) for m in lost)
    named = {"flooded", "last line"} & set(messages)
    assert len(lines) + len(named) + counted == 200002  # each stored, or counted as lost
    assert messages[-1].startswith("ENDED done")
    other_release.touch()
    assert server.wait_for_job(other)["status"] == "done"
    assert server.call("GET", "/health").code == 200
    assert supervisor in processes_of(server.supervisor_socket)  # the same one, alive


RAW = '''import os
from jobjoker import Worker


class Raw(Worker):
    """Writes `megabytes` MB of raw output lines to its stdout as fast as it can, then ends."""

    def run(self):
        block = (b"r" * 99 + b"\\n") * 10000  # 1 MB of 100-byte lines
        for _ in range(self.params["megabytes"]):
            os.write(1, block)
'''


def test_requests_are_served_while_an_ended_jobs_backlog_is_stored(servers, tmp_path):
    # Issue 12, High 6: the end of a job that left a big backlog in its spool is stored in the
    # same paced passes as a running job's entries, not in one long transaction that holds the
    # database's writer (and every request that writes) until all of it is stored.
    workers = workers_folder(tmp_path / "workers", {"Raw": RAW}, samples=())
    server = servers("--max-log-bytes", "1G", workers_dir=workers).wait_ready()
    probes, done = [], threading.Event()

    def probe():  # a read and a write (which waits for the database's writer), in turn
        while not done.is_set():
            for method, path, body in (("GET", "/health", None),
                                       ("POST", "/jobs", {"worker": "Raw", "start": False})):
                began = time.monotonic()
                reply = server.call(method, path, body)
                probes.append((began, time.monotonic() - began, method, reply.code))
            time.sleep(0.05)
    job_id = server.create_job("Raw", {"megabytes": 200})["id"]
    run_end = server.data_dir / "jobs" / job_id / "run-end.json"
    # While the job writes, the disk is busy with its 200 MB: what counts is after its end.
    until(run_end.exists, timeout=120, what="the job's process to end")
    ended = time.monotonic()
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        final = server.wait_for_job(job_id, timeout=300)
    finally:
        done.set()
        prober.join(timeout=60)
    assert final["status"] == "done", final
    assert final["log_count"] == 2 * 1000 * 1000 + 2  # STARTED, 2M lines, ENDED
    during = [p for p in probes if p[0] >= ended]
    worst = max(latency for _, latency, _, _ in during)
    print("draining %.1f s: %d probes, worst %.3f s" % (time.monotonic() - ended, len(during),
                                                        worst))
    assert all(code in (200, 201) for _, _, _, code in during), during
    assert worst < 2.0, sorted(during, key=lambda p: p[1])[-5:]


ENDS_AT_ONCE = '''import os, time
from jobjoker import Worker


class EndsAtOnce(Worker):
    """Logs, waits for `release`, then leaves by os._exit(0) (no last words from the runner)."""

    def run(self):
        self.log("waiting")
        while not os.path.exists(self.params["release"]):
            time.sleep(0.02)
        os._exit(0)
'''


def test_an_exit_the_disk_refused_is_learned_from_the_supervisor_after_a_restart(
        servers, small_disk, tmp_path):
    # Issue 12, High 2: the supervisor cannot write a job's exit record (its disk is full)
    # while no server is connected; the next server must not record the job as lost.
    workers = workers_folder(tmp_path / "workers", {"EndsAtOnce": ENDS_AT_ONCE}, samples=())
    database = "sqlite:///%s" % (tmp_path / "elsewhere.sqlite3")  # the database has room
    server = servers("--database", database, workers_dir=workers).wait_ready()
    release = tmp_path / "release"
    job_id = server.create_job("EndsAtOnce", {"release": str(release)})["id"]
    until(lambda: "waiting" in server.messages(job_id), what="the job to run")
    pid = server.job(job_id)["pid"]
    server.kill()
    ballast = fill(small_disk, leave=0)
    release.touch()
    until(lambda: not process_alive(pid), what="the job to end")
    try:
        # The scenario holds: the supervisor could not write the exit record.
        assert not (small_disk / "jobs" / job_id / "exit.json").exists()
        server.start().wait_ready()
        final = server.wait_for_job(job_id)
        assert final["status"] == "done", final  # from the supervisor's memory, not "lost"
    finally:
        ballast.unlink()
