"""``--run-as``: a job running as an unprivileged user cannot make the root server or supervisor
read, zero, overwrite or wait on anything through its job folder (jobjoker.jobdir's layout and
safe opens), and cannot reach the server's files.

The attack tests start a real server as root with ``--run-as jjattack`` (a system user made here)
and run workers that try each attack on their own folder: through a descriptor of it if they
inherited one (the layout before protocol 3 gave them one), else by its path. Each attack must be
refused or harmless, the job must end and the server keep answering. Then: the startup checks of
the workers folder, data dir and secrets; jobdir's safe opens tried directly on a folder as an
older supervisor left it (owned by the job's user); an older supervisor replaced when idle; and,
end to end, what such a job could have planted in its folder (planted here by root).
"""
import grp
import hashlib
import os
import pathlib
import json
import pwd
import shutil
import socket
import stat
import subprocess
import sys

import pytest

from jobjoker import jobdir
from jobjoker.config import load_config
from jobjoker.errors import StartupError
from support import kill_leftovers, until, workers_folder

JOB_USER = "jjattack"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs the tests to run as "
                                                          "root (to start a root server that "
                                                          "drops jobs to another user)")

# --- attacking workers ------------------------------------------------------------------------

ATTACK_TEMPLATE = '''import os, time
from jobjoker import Worker


def job_folder():
    """A descriptor of the job's folder: an inherited one if any, else opened by its path."""
    job_id = os.environ["JOBJOKER_JOB_ID"]
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + name)
        except OSError:
            continue
        if os.path.basename(target) == job_id:
            return int(name)
    return os.open(os.path.dirname(os.readlink("/proc/self/fd/1")), os.O_RDONLY | os.O_DIRECTORY)


def replace(fd, name):
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass


class {name}(Worker):
    def run(self):
        try:
            fd = job_folder()
{body}
            self.log("ATTACK DONE")
        except OSError as e:
            self.log("ATTACK REFUSED: %r" % e)
{after}
'''


def attack_worker(name, body, after=""):
    indent = lambda text, n: "\n".join(" " * n + line for line in text.strip("\n").split("\n"))
    return ATTACK_TEMPLATE.format(name=name, body=indent(body, 12),
                                  after=indent(after, 8) if after else "")


@pytest.fixture(scope="module")
def job_user():
    try:
        return pwd.getpwnam(JOB_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", JOB_USER], check=True)
        return pwd.getpwnam(JOB_USER)


@pytest.fixture
def root_files(tmp_path):
    """Files only root may read or write: a secret, a large bait for hole punching, a target
    for overwriting; with their sha256 to prove them intact."""
    folder = tmp_path / "root-only"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    files = {
        "secret": "".join("root-secret-%06d\n" % i for i in range(2000)),
        "bait": "".join("bait-line-%08d-%s\n" % (i, "b" * 60) for i in range(64 * 1024)),
        "target": "the target's own content, root's only\n" * 100,
    }
    paths = {}
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        os.chmod(path, 0o600)
        paths[name] = str(path)
    return paths


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def runas_server(servers, tmp_path, job_user, root_files):
    """``runas_server(workers)``: a root server with ``--run-as jjattack`` on a workers folder
    holding ``workers`` ({name: source})."""
    def start(workers):
        folder = workers_folder(tmp_path / "workers", workers)
        return servers("--run-as", JOB_USER, "--stop-grace", "2",
                       workers_dir=folder).wait_ready()
    return start


def run_attack(server, name):
    """Run the worker ``name`` to its end; returns (job, its log messages). The server must
    answer /health all along, and the job must end."""
    job = server.create_job(name)
    ended = server.wait_for_job(job["id"], timeout=60)
    assert server.call("GET", "/health", auth=None).code == 200
    return ended, server.messages(job["id"])


def assert_refused_or_harmless(messages):
    """The attack could not even reach the folder (refused), which is the layout's promise."""
    assert any(m.startswith("ATTACK REFUSED") for m in messages), messages


def test_a_symlinked_log_spool_does_not_leak_a_root_file(runas_server, root_files):
    server = runas_server({"SymlinkLog": attack_worker("SymlinkLog", '''
replace(fd, "log.spool")
os.symlink(%r, "log.spool", dir_fd=fd)
''' % root_files["secret"], after='''
self.log("after the attack")
time.sleep(1)
''')})
    job, messages = run_attack(server, "SymlinkLog")
    assert not any("root-secret" in m for m in messages), messages[:5]
    assert "after the attack" in messages
    assert_refused_or_harmless(messages)


def test_hole_punching_cannot_zero_a_root_file(runas_server, root_files):
    before = digest(root_files["bait"])
    server = runas_server({"PunchBait": attack_worker("PunchBait", '''
replace(fd, "log.spool")
os.symlink(%r, "log.spool", dir_fd=fd)
''' % root_files["bait"], after='''
for i in range(3000):
    self.log("own line %d %s" % (i, "x" * 500))
time.sleep(1)
''')})
    job, messages = run_attack(server, "PunchBait")
    assert digest(root_files["bait"]) == before
    assert not any(m.startswith("bait-line") for m in messages)
    assert_refused_or_harmless(messages)


def test_the_supervisor_does_not_write_through_a_planted_temporary_name(runas_server,
                                                                        root_files):
    before = digest(root_files["target"])
    server = runas_server({"PlantTemporary": attack_worker("PlantTemporary", '''
for name in ("exit.json.tmp", "run-end.json.tmp", "result.json.tmp"):
    os.symlink(%r, name, dir_fd=fd)
''' % root_files["target"])})
    job, messages = run_attack(server, "PlantTemporary")
    assert digest(root_files["target"]) == before
    assert job["status"] == "done", job
    assert_refused_or_harmless(messages)


def test_a_fifo_for_a_spool_does_not_hang_the_server(runas_server):
    server = runas_server({"FifoSpool": attack_worker("FifoSpool", '''
for name in ("response.spool", "log.spool"):
    replace(fd, name)
    os.mkfifo(name, dir_fd=fd)
''', after='''
self.response("an answer")
''')})
    job, messages = run_attack(server, "FifoSpool")
    assert job["status"] in ("done", "error"), job
    assert_refused_or_harmless(messages)


def test_records_pointing_at_dev_zero_are_read_within_bounds(runas_server):
    server = runas_server({"ZeroRecord": attack_worker("ZeroRecord", '''
for name in ("run-end.json", "result.json", "exit.json"):
    replace(fd, name)
    os.symlink("/dev/zero", name, dir_fd=fd)
''', after='''
os._exit(0)  # leave no run-end record of its own: the server reads what is there
''')})
    job, messages = run_attack(server, "ZeroRecord")
    assert job["status"] in ("done", "error"), job
    assert_refused_or_harmless(messages)


def test_a_hard_link_to_a_root_file_is_not_read(runas_server, root_files):
    server = runas_server({"HardLink": attack_worker("HardLink", '''
replace(fd, "log.spool")
os.link(%r, "log.spool", dst_dir_fd=fd)
''' % root_files["secret"], after='''
self.log("after the attack")
''')})
    job, messages = run_attack(server, "HardLink")
    assert not any("root-secret" in m for m in messages), messages[:5]
    assert_refused_or_harmless(messages)


def test_a_spool_replaced_by_a_folder_does_not_stop_the_job_ending(runas_server):
    server = runas_server({"FolderSpool": attack_worker("FolderSpool", '''
replace(fd, "log.spool")
os.mkdir("log.spool", dir_fd=fd)
''')})
    job, messages = run_attack(server, "FolderSpool")
    assert job["status"] == "done", job
    assert_refused_or_harmless(messages)


def test_renaming_spools_during_reads_leaks_nothing(runas_server, root_files):
    server = runas_server({"RenameDuringReads": attack_worker("RenameDuringReads", '''
for i in range(300):
    self.log("own line %%d" %% i)
    os.rename("log.spool", "log.spool.away", src_dir_fd=fd, dst_dir_fd=fd)
    os.symlink(%r, "log.spool", dir_fd=fd)
    time.sleep(0.005)
    os.unlink("log.spool", dir_fd=fd)
    os.rename("log.spool.away", "log.spool", src_dir_fd=fd, dst_dir_fd=fd)
''' % root_files["secret"], after='''
self.log("after the attack")
''')})
    job, messages = run_attack(server, "RenameDuringReads")
    assert not any("root-secret" in m for m in messages), messages[:5]
    assert job["status"] == "done", job
    assert_refused_or_harmless(messages)


def test_a_job_holds_no_descriptor_of_a_folder(runas_server, tmp_path):
    server = runas_server({"ListFds": '''import os
from jobjoker import Worker


class ListFds(Worker):
    def run(self):
        for name in sorted(os.listdir("/proc/self/fd"), key=int):
            try:
                self.log("FD %s %s" % (name, os.readlink("/proc/self/fd/" + name)))
            except OSError:
                pass
        self.log("CAN WRITE FOLDER %s" % os.access(
            os.path.dirname(os.readlink("/proc/self/fd/1")), os.W_OK))
        self.log("STDOUT BLOCKING %s" % os.get_blocking(1))
'''})
    job, messages = run_attack(server, "ListFds")
    assert job["status"] == "done", job
    targets = [m.split(" ", 2)[2] for m in messages if m.startswith("FD ")]
    assert targets, messages
    folder = os.path.join(server.data_dir, "jobs", job["id"])
    # Only files: /dev/null, the spools, the run-end record (and the listing's own descriptor,
    # gone by the time it is read); never a directory, of the job's folder or any other.
    assert not [t for t in targets if t.startswith("/") and os.path.isdir(t)], targets
    assert folder not in targets
    assert "CAN WRITE FOLDER False" in messages
    assert "STDOUT BLOCKING True" in messages  # what its programs inherit is a plain file


# --- the workers folder and the data dir ------------------------------------------------------

def test_a_workers_folder_the_job_user_can_write_is_refused(tmp_path, job_user):
    workers = workers_folder(tmp_path / "workers")
    os.chown(workers / "Foobar.py", job_user.pw_uid, job_user.pw_gid)
    with pytest.raises(StartupError, match="Foobar.py.*%s" % JOB_USER):
        load_config({"run_as": JOB_USER, "workers_dir": workers,
                     "data_dir": tmp_path / "data"}, environ={})
    os.chown(workers / "Foobar.py", 0, 0)
    os.chmod(workers, 0o777)
    with pytest.raises(StartupError, match="workers.*writable by %s" % JOB_USER):
        load_config({"run_as": JOB_USER, "workers_dir": workers,
                     "data_dir": tmp_path / "data"}, environ={})
    os.chmod(workers, 0o755)
    load_config({"run_as": JOB_USER, "workers_dir": workers, "data_dir": tmp_path / "data"},
                environ={})


def test_a_data_dir_of_the_job_user_is_refused(tmp_path, job_user):
    workers = workers_folder(tmp_path / "workers")
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, job_user.pw_uid, job_user.pw_gid)
    with pytest.raises(StartupError, match="data.*%s" % JOB_USER):
        load_config({"run_as": JOB_USER, "workers_dir": workers, "data_dir": data},
                    environ={})


def test_a_tls_key_the_job_user_can_read_is_refused(tmp_path, job_user):
    workers = workers_folder(tmp_path / "workers")
    key = tmp_path / "server.key"
    key.write_text("not really a key")
    os.chmod(key, 0o644)
    flags = {"run_as": JOB_USER, "workers_dir": workers, "data_dir": tmp_path / "data",
             "tls_cert": "/etc/hostname", "tls_key": key}
    with pytest.raises(StartupError, match="server.key is readable by %s" % JOB_USER):
        load_config(flags, environ={})
    os.chmod(key, 0o600)
    load_config(flags, environ={})


def test_the_server_keeps_its_data_dir_from_the_job_user(runas_server, job_user):
    server = runas_server({})
    for path in (server.data_dir, server.data_dir / "jobs", server.data_dir / "run"):
        info = os.stat(path)
        assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o700, path
    info = os.stat(server.data_dir / "jobjoker.sqlite3")
    assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o600


# --- jobdir's safe opens, directly --------------------------------------------------------------

@pytest.fixture
def legacy_folder(tmp_path, job_user):
    """A job folder as an older supervisor left it: owned by the job's user, who can write
    anything there; plus a root-only file outside."""
    folder = tmp_path / "jobs" / "job1"
    folder.mkdir(parents=True)
    os.chown(folder, job_user.pw_uid, job_user.pw_gid)
    secret = tmp_path / "secret"
    secret.write_text('{"outcome": "done", "secret": "root-only"}')
    os.chmod(secret, 0o600)
    return folder, str(secret)


def owned_by(path, user):
    os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


def owners(user):
    return jobdir.owners_for(user.pw_name)


def test_safe_reads_accept_the_files_of_the_job_and_of_the_server(legacy_folder, job_user):
    folder, _ = legacy_folder
    (folder / "log.spool").write_bytes(b"spooled")
    owned_by(folder / "log.spool", job_user)
    (folder / "exit.json").write_text('{"returncode": 0}')  # the root supervisor's
    assert jobdir.read_spool(folder, "log.spool", 0, 100, owners(job_user))[0] == b"spooled"
    assert jobdir.read_record(folder, "exit.json", owners(job_user)) == {"returncode": 0}
    assert jobdir.read_spool(folder, "response.spool", 0, 100, owners(job_user))[0] == b""


def test_a_legacy_run_end_record_of_the_job_is_read(legacy_folder, job_user):
    folder, _ = legacy_folder
    (folder / "result.json").write_text('{"outcome": "error", "error": "E"}')
    owned_by(folder / "result.json", job_user)
    assert jobdir.read_run_end(folder, owners(job_user)) == {"outcome": "error", "error": "E"}
    (folder / "run-end.json").write_text("")  # made by the supervisor, never written
    assert jobdir.read_run_end(folder, owners(job_user))["outcome"] == "error"


@pytest.mark.parametrize("make", ["symlink", "fifo", "folder", "hard link", "other owner",
                                  "device"])
def test_safe_opens_refuse_what_is_not_a_plain_file_of_the_job(legacy_folder, job_user,
                                                                make):
    folder, secret = legacy_folder
    for name in ("log.spool", "run-end.json", "exit.json"):
        path = folder / name
        if make == "symlink":
            os.symlink(secret, path)
        elif make == "fifo":
            os.mkfifo(path)
        elif make == "folder":
            os.mkdir(path)
        elif make == "hard link":
            os.link(secret, path)
        elif make == "other owner":
            shutil.copy(secret, path)
            os.chown(path, 12345, grp.getgrnam("nogroup").gr_gid if _has_group("nogroup")
                     else 12345)
        elif make == "device":
            os.symlink("/dev/zero", path)
    assert jobdir.read_spool(folder, "log.spool", 0, 1 << 20, owners(job_user))[0] == b""
    assert jobdir.read_record(folder, "run-end.json", owners(job_user)) is None
    assert jobdir.read_record(folder, "exit.json", owners(job_user)) is None
    assert jobdir.punch_hole(folder, "log.spool", 0, 4096, owners(job_user)) is False
    assert open(secret).read().startswith('{"outcome"')


def _has_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_an_oversized_record_is_not_read(legacy_folder, job_user):
    folder, _ = legacy_folder
    path = folder / "run-end.json"
    path.write_text('{"outcome": "done", "pad": "%s"}' % ("x" * jobdir.MAX_RECORD_BYTES))
    owned_by(path, job_user)
    assert jobdir.read_record(folder, "run-end.json", owners(job_user)) is None


def test_a_record_is_never_written_through_a_planted_temporary_name(legacy_folder):
    folder, secret = legacy_folder
    os.symlink(secret, folder / "exit.json.tmp")
    jobdir.write_record(folder, "exit.json", {"returncode": 0})
    assert open(secret).read().startswith('{"outcome"')
    assert jobdir.read_record(folder, "exit.json", (0,)) == {"returncode": 0}


def test_a_symlinked_job_folder_is_not_followed(tmp_path, job_user):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "log.spool").write_bytes(b"not the job's")
    (tmp_path / "jobs").mkdir()
    os.symlink(real, tmp_path / "jobs" / "job1")
    assert jobdir.read_spool(tmp_path / "jobs" / "job1", "log.spool", 0, 100,
                             owners(job_user))[0] == b""


# --- an older supervisor after an upgrade -----------------------------------------------------

OLD_SUPERVISOR = ("import sys; import jobjoker.supervisor as s; s.PROTOCOL = 2; "
                  "s.main(['--socket', sys.argv[1]])")


def legacy_socket_path(run_dir):
    """Where a supervisor before protocol 4 listened: one name, whatever its code."""
    from jobjoker.supervisor_client import _socket_prefix
    return _socket_prefix(str(run_dir)) + ".sock"


@pytest.fixture
def old_supervisor(tmp_path):
    """A supervisor that says it speaks protocol 2 (the layout that gave a job its folder),
    listening on ``tmp_path/run``'s socket of that time; ``(process, run dir)``."""
    from jobjoker.supervisor_client import supervisor_environment
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    socket_path = legacy_socket_path(run_dir)
    process = subprocess.Popen([sys.executable, "-c", OLD_SUPERVISOR, socket_path],
                               env=supervisor_environment(), start_new_session=True)
    until(lambda: os.path.exists(socket_path), 30, "the old supervisor's socket")
    yield process, run_dir
    kill_leftovers(socket_path)
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.mark.gen_test(timeout=60)
async def test_an_idle_older_supervisor_is_replaced(old_supervisor):
    from jobjoker.supervisor import PROTOCOL
    from jobjoker.supervisors import Supervisors
    process, run_dir = old_supervisor
    supervisors = Supervisors(run_dir, lambda event: None, None, lambda: None)
    await supervisors.connect()
    try:
        assert supervisors.current.supervisor_protocol == PROTOCOL
        assert supervisors.current.supervisor_pid != process.pid
        await supervisors.drain_others()
        assert process.wait(timeout=30) == 0
    finally:
        await supervisors.close(shutdown=True)


@pytest.mark.gen_test(timeout=60)
async def test_an_older_supervisor_with_jobs_keeps_them(old_supervisor, tmp_path):
    from jobjoker.supervisor import PROTOCOL
    from jobjoker.supervisors import Supervisors
    process, run_dir = old_supervisor
    workers = workers_folder(tmp_path / "workers", {"Sleeper": (
        "import time\nfrom jobjoker import Worker\n\n\nclass Sleeper(Worker):\n"
        "    def run(self):\n        time.sleep(60)\n")})
    job_dir = tmp_path / "jobs" / "job1"
    jobdir.create(job_dir)
    with socket.socket(socket.AF_UNIX) as raw:  # as the server of the earlier version did
        raw.connect(legacy_socket_path(run_dir))
        raw.sendall(json.dumps({"id": 1, "op": "start", "spec": {
            "job_id": "job1", "worker": "Sleeper", "worker_file": str(workers / "Sleeper.py"),
            "params": {}, "job_dir": str(job_dir), "cwd": str(workers)}}).encode() + b"\n")
        assert json.loads(raw.makefile().readline())["ok"]
    supervisors = Supervisors(run_dir, lambda event: None, None, lambda: None)
    await supervisors.connect()
    try:
        [old] = supervisors.others  # it drains; new jobs go to one of this version
        assert old.supervisor_protocol == 2 and old.supervisor_pid == process.pid
        assert supervisors.current.supervisor_protocol == PROTOCOL
        await supervisors.drain_others()
        assert old.draining and process.poll() is None  # its job still runs, and so does it
    finally:
        await supervisors.close(shutdown=True, kill_jobs=True)
    assert process.wait(timeout=30) == 0


def test_a_job_imports_helpers_beside_its_worker_but_cannot_change_them(servers, tmp_path,
                                                                         job_user):
    """The layout SECURITY.md describes: a workers folder the job's user can reach (every folder
    above it searchable) but not write."""
    import tempfile
    workers = pathlib.Path(tempfile.mkdtemp(prefix="jobjoker-runas-workers-"))
    try:
        os.chmod(workers, 0o755)
        workers_folder(workers, {"UsesHelper": '''import os
from jobjoker import Worker
import runas_helper


class UsesHelper(Worker):
    def run(self):
        self.log(runas_helper.GREETING)
        try:
            with open(runas_helper.__file__, "a") as f:
                f.write("GREETING = 'changed'")
            self.log("HELPER CHANGED")
        except OSError as e:
            self.log("HELPER REFUSED %r" % e)
'''})
        (workers / "runas_helper.py").write_text("GREETING = 'hello from a helper'\n")
        server = servers("--run-as", JOB_USER, workers_dir=workers).wait_ready()
        job = server.create_job("UsesHelper")
        assert server.wait_for_job(job["id"])["status"] == "done"
        messages = server.messages(job["id"])
        assert "hello from a helper" in messages
        assert any(m.startswith("HELPER REFUSED") for m in messages), messages
        assert "changed" not in (workers / "runas_helper.py").read_text()
    finally:
        shutil.rmtree(workers)


# --- the server's safe opens, end to end: what a job of the old layout could plant ------------

PATIENT_WORKER = '''import time
from jobjoker import Worker


class Patient(Worker):
    def run(self):
        self.log("READY")
        while self.is_active():
            time.sleep(0.02)
        self.log("own line after the plant")
        self.response("own answer")
'''


@pytest.mark.parametrize("plant", ["symlinks", "fifos", "folders", "hard links"])
def test_whatever_is_planted_in_a_job_folder_is_refused_by_the_server(runas_server,
                                                                      root_files, plant):
    """A job of a supervisor before protocol 3 owned its folder and could plant anything there;
    the test plants it here, as root, into a running job's folder. The server refuses each,
    keeps answering, and the job still ends."""
    server = runas_server({"Patient": PATIENT_WORKER})
    job = server.create_job("Patient")
    until(lambda: "READY" in server.messages(job["id"]), 60, "the job to be ready")
    folder = os.path.join(server.data_dir, "jobs", job["id"])
    bait = digest(root_files["bait"])
    for name in ("log.spool", "response.spool", "run-end.json", "exit.json.tmp"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            os.unlink(path)
        if plant == "symlinks":
            os.symlink(root_files["bait"] if name == "log.spool" else "/dev/zero", path)
        elif plant == "fifos":
            os.mkfifo(path)
        elif plant == "folders":
            os.mkdir(path)
        else:
            os.link(root_files["secret"], path)
    assert server.call("PUT", "/jobs/%s/status" % job["id"], "stop").code == 202
    ended = server.wait_for_job(job["id"], timeout=60)
    assert ended["status"] in ("stop", "done", "error"), ended
    assert server.call("GET", "/health", auth=None).code == 200
    messages = server.messages(job["id"])
    assert not any("root-secret" in m or m.startswith("bait-line") for m in messages)
    assert digest(root_files["bait"]) == bait
    assert "root-secret-000000" in open(root_files["secret"]).read()


def test_a_refusal_is_logged_once(legacy_folder, job_user, caplog):
    folder, secret = legacy_folder
    os.symlink(secret, folder / "log.spool")
    for _ in range(3):
        assert jobdir.read_spool(folder, "log.spool", 0, 100, owners(job_user))[0] == b""
    refusals = [r for r in caplog.records if "log.spool" in r.getMessage()]
    assert len(refusals) == 1 and "job job1:" in refusals[0].getMessage()
