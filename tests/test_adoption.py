"""Adoption proves a live job belongs to this data dir (jobjoker/adoption.py): a copy of the data
dir (a backup restored, as tests/test_backup.py makes one) started on the same machine under the
same node name, while the original server is stopped but its job runs on, neither adopts nor
signals that job: it ends it ``error`` in its own database, saying why, and leaves the process
alone. The original, started again, adopts the job, which ends ``done`` with its whole log. Both
ways a copy can meet the job are tried: as an orphan (the copy's own supervisor does not know it:
``/proc/PID/fd`` decides) and through the original's supervisor (a copy restored at the
original's path, long enough for the socket to live in /tmp: the spool the supervisor says it
gave the job decides)."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from jobjoker import proc
from tests.support import ROOT, TICKER_WORKER, ServerProcess, process_alive, until, \
    workers_folder

TICKS = 8
SYSTEM_PYTHON = "/usr/bin/python3"  # one that another user can run (a venv in /root is not)


def backup(server, target):
    """``jobjoker backup`` of a running server's data dir into ``target``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    result = subprocess.run([sys.executable, "-m", "jobjoker.cli", "backup", str(target),
                             "--data-dir", str(server.data_dir), "--workers-dir",
                             str(server.workers_dir)], capture_output=True, text=True,
                            timeout=300, env=environ, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def gated_ticker(server, gate):
    """A job that logs 3 ticks, waits for the file ``gate``, then logs the rest and ends."""
    job = server.create_job("Ticker", {"count": TICKS, "pause_at": 3, "gate": str(gate),
                                       "every": 0.01})
    until(lambda: "tick 2" in server.messages(job["id"]), what="tick 2 stored")
    return job


def assert_disowned(copy, job):
    """The copy ended the job without touching its process, and says why."""
    ended = copy.job(job["id"])  # jobs found ended are final before the server is ready
    assert ended["status"] == "error", ended
    assert "not adopted" in ended["error"] and "another data dir" in ended["error"], ended
    assert "never signalled" in ended["error"], ended
    assert copy.call("PUT", "/jobs/%s/status" % job["id"], {"status": "stop"}).code == 409
    assert copy.call("PUT", "/jobs/%s/status" % job["id"], {"status": "kill"}).code == 409
    assert process_alive(job["pid"])
    assert "not adopted: its process (pid %s) still runs" % job["pid"] in copy.stderr


def assert_adopted_to_its_end(original, job, gate):
    """The original, started again, adopts the job, which ends ``done`` with every tick."""
    original.start().wait_ready()
    assert "adopted" in original.stderr
    gate.touch()
    ended = original.wait_for_job(job["id"])
    assert ended["status"] == "done", ended
    ticks = [m for m in original.messages(job["id"]) if m.startswith("tick")]
    assert ticks == ["tick %d" % i for i in range(TICKS)]
    assert original.messages(job["id"], "response") == ["finished"]


@pytest.mark.timeout(300)
def test_a_restored_copy_neither_adopts_nor_signals_the_originals_orphan(tmp_path):
    workers = workers_folder(tmp_path / "workers", {"Ticker": TICKER_WORKER}, samples=())
    gate = tmp_path / "gate"
    servers = []
    try:
        original = ServerProcess(tmp_path, workers_dir=workers)
        servers.append(original)
        job = gated_ticker(original.wait_ready(), gate)
        backup(original, tmp_path / "backup")
        assert original.stop() == 0  # its supervisor and job run on
        copy_dir = tmp_path / "restored"
        shutil.copytree(tmp_path / "backup", copy_dir)
        copy = ServerProcess(tmp_path, data_dir=copy_dir, workers_dir=copy_dir / "workers")
        servers.append(copy)
        copy.wait_ready()
        assert "took over the lease" in copy.stderr  # the same node name
        assert_disowned(copy, job)
        assert copy.stop() == 0
        assert_adopted_to_its_end(original, job, gate)
    finally:
        for server in servers:
            server.discard()


@pytest.mark.timeout(300)
def test_a_copy_restored_in_place_does_not_adopt_through_the_originals_supervisor(tmp_path):
    workers = workers_folder(tmp_path / "workers", {"Ticker": TICKER_WORKER}, samples=())
    gate = tmp_path / "gate"
    place = tmp_path / ("data-" + "d" * 90)  # the supervisor's socket goes to /tmp
    servers = []
    try:
        original = ServerProcess(tmp_path, data_dir=place, workers_dir=workers)
        servers.append(original)
        assert not original.supervisor_socket.startswith(str(place))
        job = gated_ticker(original.wait_ready(), gate)
        backup(original, tmp_path / "backup")
        assert original.stop() == 0
        # The data dir is replaced by the backup while the job runs on in the original's files.
        os.rename(place, tmp_path / "set-aside")
        shutil.copytree(tmp_path / "backup", place)
        copy = ServerProcess(tmp_path, data_dir=place, workers_dir=place / "workers")
        servers.append(copy)
        copy.wait_ready()
        assert_disowned(copy, job)
        assert copy.stop() == 0
        shutil.rmtree(place)
        os.rename(tmp_path / "set-aside", place)
        assert_adopted_to_its_end(original, job, gate)
    finally:
        for server in servers:
            server.discard()


def test_holds_file_finds_a_file_by_device_and_inode_even_renamed(tmp_path):
    held, other = tmp_path / "held", tmp_path / "other"
    other.write_text("")
    with open(held, "w") as f:
        identity = (os.fstat(f.fileno()).st_dev, os.fstat(f.fileno()).st_ino)
        os.rename(held, tmp_path / "renamed")
        assert proc.holds_file(os.getpid(), identity) is True
        stat = os.stat(other)
        assert proc.holds_file(os.getpid(), (stat.st_dev, stat.st_ino)) is False
    assert proc.holds_file(os.getpid(), identity) is False
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert proc.holds_file(gone.pid, identity) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to look as another user")
def test_holds_file_says_none_when_it_may_not_look(tmp_path):
    """Another user's process without CAP_SYS_PTRACE: /proc/PID/fd is closed to the caller,
    so nothing is proven: None, which adoption takes for "not this data dir's job"."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip("%s is missing (the tests' Python may be one nobody else can run)"
                    % SYSTEM_PYTHON)
    with open(tmp_path / "held", "w") as f:
        info = os.fstat(f.fileno())
        # proc.py's own source, run by the other user (who may not reach this checkout).
        script = pathlib.Path(proc.__file__).read_text() + "\nprint(holds_file(%d, (%d, %d)))" % (
            os.getpid(), info.st_dev, info.st_ino)
        result = subprocess.run([SYSTEM_PYTHON, "-c", script], user=65534, capture_output=True,
                                text=True, timeout=60, cwd="/")
        assert result.stdout.strip() == "None", result
        assert proc.holds_file(os.getpid(), (info.st_dev, info.st_ino)) is True
