"""``jobjoker backup`` and a restore, as docs/deploy.md ("Backups and restores") tells them.

The round trip runs real servers (``ServerProcess``) on SQLite, MariaDB and PostgreSQL: jobs with
logs and responses, an idle job holding a sealed secret, a job left running; ``jobjoker backup``
while the server runs; the backup restored the documented way (the directory becomes the data
dir; a dump is loaded with ``mysql``/``psql`` into a new database); a server started on the copy
finds every job, log and response, and opens the secret. Beside the original the copy is
refused under the original's node name and, under another one, leaves the original's running job
alone; once the original is gone, the copy takes its node over and ends that job as lost.
"""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import urllib.parse

import pytest

from jobjoker import backup
from tests.conftest import scratch_database
from tests.support import (ROOT, TICKER_WORKER, LINES_WORKER, ServerProcess, process_alive,
                           unavailable, until, workers_folder)

SECRET = "s3cr3t-for-the-backup"
SECRET_WORKER = '''from jobjoker import Worker


class Sealed(Worker):
    """Answers its secret reversed (the secret itself would be masked)."""

    parameters = {"token": {"type": "string", "secret": True}}

    def run(self):
        self.response(self.params["token"][::-1])
'''
LINES = 2500


def jobjoker(*args, env=None):
    """The ``jobjoker`` command of this checkout."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "jobjoker.cli", *args], capture_output=True,
                          text=True, timeout=300, env=environ, cwd=ROOT)


# --- the databases ------------------------------------------------------------------------------

@pytest.fixture
def databases(request):
    """(original URL or None for the data dir's SQLite, restored URL or None, load(dump)):
    two empty databases of the parametrised kind, dropped afterwards."""
    kind = request.param
    if kind == "sqlite":
        yield None, None, None
        return
    tool, package = ("mysql", "mariadb-client") if kind == "mysql" else \
        ("psql", "postgresql-client")
    if shutil.which(tool) is None:
        unavailable("the %s tool is not installed (apt-get install %s)" % (tool, package))
    made = [scratch_database(request, kind, "jobjoker_backup_%s_%d" % (role, os.getpid()))
            for role in ("original", "restored")]
    yield made[0], made[1], lambda dump: load_dump(kind, made[1], dump)


def load_dump(kind, url, dump):
    """Load ``dump`` into the database of ``url`` with the command docs/deploy.md gives."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.strip("/")
    if kind == "mysql":
        command = ["mysql", "--user=%s" % (parts.username or "root"), "--host=%s" % parts.hostname,
                   "--port=%d" % (parts.port or 3306), name]
        environ = dict(os.environ, MYSQL_PWD=parts.password or "")
    else:
        command = ["psql", "--no-password", "--quiet", "--set=ON_ERROR_STOP=1",
                   "--username=%s" % (parts.username or "postgres"), "--host=%s" % parts.hostname,
                   "--port=%d" % (parts.port or 5432), "--dbname=%s" % name]
        environ = dict(os.environ, PGPASSWORD=parts.password or "")
    with open(dump, "rb") as source:
        result = subprocess.run(command, stdin=source, capture_output=True, env=environ,
                                timeout=300)
    assert result.returncode == 0, result.stderr.decode()


# --- the round trip -----------------------------------------------------------------------------

@pytest.mark.timeout(600)
@pytest.mark.parametrize("databases", ["sqlite", "mysql", "postgresql"], indirect=True)
def test_a_backup_restores_every_job_log_response_and_secret(tmp_path, databases):
    original_url, restored_url, load = databases
    workers = workers_folder(tmp_path / "workers", {"Lines": LINES_WORKER,
                                                    "Ticker": TICKER_WORKER,
                                                    "Sealed": SECRET_WORKER}, samples=())
    database = ("--database", original_url) if original_url else ()
    servers = []
    try:
        original = ServerProcess(tmp_path, *database, workers_dir=workers)
        servers.append(original)
        original.wait_ready()
        done = original.create_job("Lines", {"count": LINES})
        sealed = original.create_job("Sealed", {"token": SECRET}, start=False)
        gate = tmp_path / "never"
        running = original.create_job("Ticker", {"count": 100000, "pause_at": 3,
                                                 "gate": str(gate), "every": 0.01})
        assert original.wait_for_job(done["id"])["status"] == "done"
        until(lambda: "tick 2" in original.messages(running["id"]), what="tick 2 stored")

        target = tmp_path / "backup"
        result = jobjoker("backup", str(target), "--data-dir", str(original.data_dir),
                          "--workers-dir", str(workers), *database)
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
        manifest = json.loads((target / backup.MANIFEST).read_text())
        assert manifest["jobs"]["copied"] == [running["id"]]
        assert (target / "jobs" / running["id"] / "log.spool").stat().st_size > 0
        assert (target / "secret.key").read_bytes() == (original.data_dir
                                                         / "secret.key").read_bytes()
        assert sorted(os.listdir(target / "workers")) == ["Lines.py", "Sealed.py", "Ticker.py"]

        # Restore: the backup becomes a data dir (and its dump a database).
        data = tmp_path / "restored"
        shutil.copytree(target, data)
        restored_database = ()
        if restored_url:
            load(data / backup.DUMP_FILE)
            restored_database = ("--database", restored_url)
        copy_args = (*restored_database,)

        # Beside the running original, under its node name: refused before changing anything.
        refused = ServerProcess(tmp_path, *copy_args, data_dir=data, workers_dir=data / "workers")
        servers.append(refused)
        assert refused.process.wait(timeout=120) == 1
        assert "held by another JobJoker server" in refused.stderr

        # Under another node name: every job is there, and the original's job is left alone.
        beside = ServerProcess(tmp_path, *copy_args, "--node", "restore-check", data_dir=data,
                               workers_dir=data / "workers")
        servers.append(beside)
        beside.wait_ready()
        check_restored(beside, done, sealed, running, original=True)
        assert process_alive(running["pid"])
        assert original.job(running["id"])["status"] == "active"
        started = beside.api("PUT", "/jobs/%s/status" % sealed["id"], {"status": "start"})
        assert started  # the sealed secret opened with the copied key, or the start fails
        assert beside.wait_for_job(sealed["id"])["status"] == "done"
        assert beside.messages(sealed["id"], "response") == [SECRET[::-1]]
        assert beside.stop() == 0

        # The original gone (its server, supervisor and jobs), the copy takes over its node.
        original.discard()
        until(lambda: not process_alive(running["pid"]), what="the original's job to be gone")
        taking_over = ServerProcess(tmp_path, *copy_args, data_dir=data,
                                    workers_dir=data / "workers")
        servers.append(taking_over)
        taking_over.wait_ready()
        assert "took over the lease" in taking_over.stderr
        check_restored(taking_over, done, sealed, running, original=False)
    finally:
        for server in servers:
            server.discard()


def check_restored(server, done, sealed, running, original):
    """Every job of the original on the restored server, with its whole log and response."""
    assert server.job(done["id"])["status"] == "done"
    log = server.messages(done["id"])
    assert [m for m in log if m.startswith("line ")] == ["line %d " % i for i in range(LINES)]
    assert server.messages(done["id"], "response") == ["response %d" % i
                                                       for i in range(0, LINES, 1000)]
    if original:
        assert server.job(sealed["id"])["status"] == "idle"
        assert server.job(running["id"])["status"] == "active"
    else:
        ended = server.wait_for_job(running["id"])
        assert ended["status"] == "error"
        assert "lost" in ended["error"], ended
    ticks = [m for m in server.messages(running["id"]) if m.startswith("tick")]
    assert ticks[:3] == ["tick 0", "tick 1", "tick 2"]


# --- refusals -----------------------------------------------------------------------------------

def test_a_backup_never_overwrites(tmp_path):
    target = tmp_path / "exists"
    target.mkdir()
    result = jobjoker("backup", str(target), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "already exists" in result.stderr


def test_a_backup_of_no_database_says_so_and_leaves_nothing(tmp_path):
    target = tmp_path / "backup"
    result = jobjoker("backup", str(target), "--data-dir", str(tmp_path / "nothing-here"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert not target.exists()


def test_holes_in_a_spool_stay_holes(tmp_path):
    """The ingester punches out what it stored: a copy must neither fill nor lose them."""
    source = tmp_path / "spool"
    with open(source, "wb") as f:
        f.truncate(64 * 1024 * 1024)
        f.seek(32 * 1024 * 1024)
        f.write(b"the middle")
        f.seek(0, os.SEEK_END)
        f.write(b"the end")
    fd = os.open(source, os.O_RDONLY)
    try:
        backup._copy_sparse(fd, str(tmp_path / "copy"))
    finally:
        os.close(fd)
    copy = tmp_path / "copy"
    assert copy.read_bytes() == source.read_bytes()
    assert copy.stat().st_blocks * 512 < 1024 * 1024


def test_a_backup_as_another_user_than_the_servers_is_refused(tmp_path):
    """SQLite may make its -wal and -shm files beside the database: made by root, they would
    lock the server's own user out."""
    if os.geteuid() != 0:
        unavailable("this test makes a database of another user: it needs root")
    data = tmp_path / "data"
    data.mkdir()
    database = data / "jobjoker.sqlite3"
    sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.close()
    os.chown(database, 65534, 65534)
    result = jobjoker("backup", str(tmp_path / "backup"), "--data-dir", str(data))
    assert result.returncode == 1
    assert "run the backup as the server's user (uid 65534" in result.stderr
    assert sorted(os.listdir(data)) == ["jobjoker.sqlite3"]


def test_a_backup_where_it_cannot_write_says_so(tmp_path):
    result = jobjoker("backup", "/proc/no-backup-here", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "cannot make /proc/no-backup-here" in result.stderr
    assert "Traceback" not in result.stderr
