"""The supervisors of a data dir as an operator sees them: process titles, the environment a job
starts with, and an upgrade while jobs run (the old supervisor drains, the new one takes new
jobs, ``/health`` shows both, then one).

Real servers (``run_server.py`` in their own processes); the upgrade runs a copy of the package
installed in a temporary folder, and reinstalls it by changing a file of that copy, as ``pip
install`` over a running installation does.
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from jobjoker import codehash, jobenv
from jobjoker.proc import parent
from support import ROOT, poll, process_alive, until, workers_folder

JOB_USER = "jjattack"  # the unprivileged user test_runas.py makes too

ENVIRONMENT_WORKER = '''import json, os, time
from jobjoker import Worker


class Environment(Worker):
    """Logs its whole environment, then waits until stopped (so its title can be read)."""
    def run(self):
        self.log("ENV " + json.dumps(dict(os.environ)))
        while self.is_active() and self.params.get("wait"):
            time.sleep(0.02)
'''

SLEEPER_WORKER = '''import os, time
from jobjoker import Worker


class Sleeper(Worker):
    """Logs `count` numbered lines, one every `every` seconds, unless stopped; then, given a
    `release` file, waits for it to exist."""
    def run(self):
        for i in range(self.params["count"]):
            if not self.is_active():
                return
            self.log("line %d" % i)
            time.sleep(self.params["every"])
        while self.params.get("release") and not os.path.exists(self.params["release"]):
            time.sleep(0.02)
'''


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().rstrip(b"\0").decode()


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def logged_environment(server, job_id):
    line = until(lambda: [m for m in server.messages(job_id) if m.startswith("ENV ")],
                 what="the job's environment")[0]
    return json.loads(line[len("ENV "):])


# --- what the code hash covers ------------------------------------------------------------

def test_the_code_hash_covers_every_module_of_ours_the_supervisor_loads():
    """The list behind the hash is the list a real supervisor imports before it forks: a module
    added to the supervisor's imports and not to the list would escape the upgrade check."""
    loaded = subprocess.run(
        [sys.executable, "-P", "-c", "import sys, jobjoker.supervisor; print(' '.join(sorted("
         "m for m in sys.modules if m == 'jobjoker' or m.startswith('jobjoker.'))))"],
        capture_output=True, text=True, check=True, cwd="/",
        env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout.split()
    assert sorted(codehash.SUPERVISOR_MODULES) == sorted(
        "__init__" if name == "jobjoker" else name.split(".", 1)[1] for name in loaded)


def test_the_code_hash_changes_with_any_file_the_supervisor_loads(tmp_path):
    copy = tmp_path / "jobjoker"
    shutil.copytree(ROOT / "jobjoker", copy)
    before = codehash.code_hash(str(copy))
    assert codehash.code_hash(str(copy)) == before  # stable
    (copy / "app.py").write_text("# the server's code: jobs never run it\n")
    assert codehash.code_hash(str(copy)) == before
    with open(copy / "worker.py", "a") as f:
        f.write("# reinstalled\n")
    assert codehash.code_hash(str(copy)) != before


def test_each_code_has_its_socket_and_every_supervisor_of_a_data_dir_is_found(tmp_path):
    """One socket name per code hash, in the run dir or, when its path is too long for a
    socket, in a private folder; the names of releases before protocol 4 are found too."""
    from jobjoker.supervisor_client import MAX_UNIX_PATH, socket_path_for, supervisor_sockets
    for run_dir in (tmp_path / "run", tmp_path / ("x" * 80) / "run"):
        mine, theirs = socket_path_for(run_dir), socket_path_for(run_dir, "0" * 64)
        assert mine != theirs and len(os.fsencode(mine)) <= MAX_UNIX_PATH
        assert mine == socket_path_for(run_dir, codehash.code_hash())
        legacy = theirs[:-len("-000000000000.sock")] + ".sock"  # supervisor.sock, say
        made = [mine, theirs, legacy]
        try:
            for path in made:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "w").close()
            assert supervisor_sockets(run_dir) == sorted(made)
            assert supervisor_sockets(tmp_path / "other" / "run") == []
        finally:  # the private folder is shared by every data dir of this user
            for path in made:
                os.unlink(path)


@pytest.mark.gen_test(timeout=60)
async def test_the_socket_of_a_killed_supervisor_is_removed_and_a_live_one_kept(tmp_path):
    from jobjoker.supervisors import Supervisors
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    first = Supervisors(run_dir, lambda event: None, None, lambda: None)
    await first.connect()
    from jobjoker.supervisor_client import socket_path_for
    stale = socket_path_for(run_dir, "0" * 64)  # another code's
    with socket.socket(socket.AF_UNIX) as dead:  # bound, never listening: as after a SIGKILL
        dead.bind(stale)
    second = Supervisors(run_dir, lambda event: None, None, lambda: None)
    try:
        await second.connect()
        assert not os.path.exists(stale)
        assert os.path.exists(first.current.socket_path) and second.others == []
        assert second.current.supervisor_pid == first.current.supervisor_pid
    finally:
        await second.close()
        await first.close(shutdown=True)


# --- process titles -------------------------------------------------------------------------

def test_a_job_and_its_supervisor_are_named_in_ps(servers, tmp_path):
    workers = workers_folder(tmp_path / "workers", {"Environment": ENVIRONMENT_WORKER})
    server = servers(workers_dir=workers).wait_ready()
    job = server.create_job("Environment", {"wait": True})
    logged_environment(server, job["id"])  # it runs its worker by now
    assert cmdline(job["pid"]) == "jobjoker job %s Environment" % job["id"]
    assert comm(job["pid"]) == "jj Environment"
    supervisor = parent(job["pid"])
    [health] = server.api("GET", "/health")
    assert [s["pid"] for s in health["supervisors"]] == [supervisor]
    from jobjoker.supervisor_client import socket_path_for
    assert cmdline(supervisor) == "jobjoker supervisor %s on %s" % (
        server.data_dir, socket_path_for(str(server.data_dir / "run")))
    assert comm(supervisor) == "jj supervisor"
    assert server.call("PUT", "/jobs/%s/status" % job["id"], "stop").code == 202
    assert server.wait_for_job(job["id"])["status"] == "stop"


# --- the environment a job starts with ---------------------------------------------------------

LEAKY = {"AWS_SECRET_ACCESS_KEY": "leaked-secret", "PATH": "/leaky/bin:/usr/bin:/bin",
         "HOME": "/leaky-home", "SHELL": "/bin/leaky", "PYTHONPATH": "/leaky/python",
         "LANG": "C.UTF-8", "LC_TIME": "C", "TZ": "UTC"}


def test_a_job_starts_with_only_the_documented_environment(servers, tmp_path):
    """Whatever the server's environment holds (its secret key, a cloud token, a PATH of its
    own), the job gets the allowlist of jobjoker.jobenv, with its user's HOME and SHELL."""
    workers = workers_folder(tmp_path / "workers", {"Environment": ENVIRONMENT_WORKER})
    key = Fernet.generate_key().decode()
    server = servers(workers_dir=workers, env=dict(
        LEAKY, JOBJOKER_SECRET_KEY=key, TMPDIR=str(tmp_path))).wait_ready()
    job = server.create_job("Environment")
    env = logged_environment(server, job["id"])
    me = pwd.getpwuid(os.getuid())
    assert env == {"PATH": jobenv.job_path(), "HOME": me.pw_dir, "USER": me.pw_name,
                   "LOGNAME": me.pw_name, "SHELL": me.pw_shell, "LANG": "C.UTF-8",
                   "LC_TIME": "C", "TZ": "UTC", "TMPDIR": str(tmp_path),
                   "PYTHONUNBUFFERED": "1", "JOBJOKER_JOB_ID": job["id"],
                   "JOBJOKER_WORKER": "Environment"}
    assert jobenv.job_path().split(":")[0] == os.path.dirname(sys.executable)
    assert server.wait_for_job(job["id"])["status"] == "done"


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs the tests to run as root")
def test_a_run_as_job_gets_its_own_users_environment(servers, tmp_path):
    try:
        user = pwd.getpwnam(JOB_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", JOB_USER], check=True)
        user = pwd.getpwnam(JOB_USER)
    workers = workers_folder(tmp_path / "workers", {"Environment": ENVIRONMENT_WORKER})
    os.chmod(tmp_path, 0o755)  # the job's user reads its worker's helpers by path
    server = servers("--run-as", JOB_USER, workers_dir=workers,
                     env=dict(LEAKY, TMPDIR=str(tmp_path))).wait_ready()
    job = server.create_job("Environment")
    env = logged_environment(server, job["id"])
    assert env == {"PATH": jobenv.job_path(), "HOME": user.pw_dir, "USER": JOB_USER,
                   "LOGNAME": JOB_USER, "SHELL": user.pw_shell, "LANG": "C.UTF-8",
                   "LC_TIME": "C", "TZ": "UTC", "PYTHONUNBUFFERED": "1",
                   "JOBJOKER_JOB_ID": job["id"], "JOBJOKER_WORKER": "Environment"}
    assert server.wait_for_job(job["id"])["status"] == "done"


# --- an upgrade while jobs run ------------------------------------------------------------------

def install_copy(folder):
    """The server as installed in ``folder``: its own copy of the package, so that it can be
    reinstalled (changed) under a running supervisor."""
    folder.mkdir()
    for name in ("jobjoker", "handlers", "static"):
        shutil.copytree(ROOT / name, folder / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "run_server.py", folder / "run_server.py")
    return folder


def reinstall(folder):
    """What a new release changes: here the runner's first log line, so a job tells which code
    its supervisor forked it from."""
    runner = folder / "jobjoker" / "runner.py"
    source = runner.read_text()
    assert source.count('"STARTED job %s') == 1
    runner.write_text(source.replace('"STARTED job %s', '"STARTED (reinstalled) job %s'))


def test_an_upgrade_drains_the_old_supervisor_and_starts_new_jobs_on_the_new_code(servers,
                                                                                  tmp_path):
    installed = install_copy(tmp_path / "installed")
    workers = workers_folder(tmp_path / "workers", {"Sleeper": SLEEPER_WORKER})
    command = [sys.executable, str(installed / "run_server.py")]
    first = servers("--stop-grace", "5", command=command, workers_dir=workers).wait_ready()
    release = tmp_path / "release"
    finishing = first.create_job("Sleeper", {"count": 60, "every": 0.01,  # ends once released
                                              "release": str(release)})
    stopped = first.create_job("Sleeper", {"count": 100000, "every": 0.05})  # to be stopped
    [old] = first.api("GET", "/health")[0]["supervisors"]
    assert first.stop() == 0

    reinstall(installed)
    second = servers("--stop-grace", "5", command=command, workers_dir=workers,
                     port=first.port).wait_ready()
    current, draining = second.api("GET", "/health")[0]["supervisors"]
    # The same process, told to drain.
    assert draining == dict(old, role="draining", jobs=2, draining=True)
    assert current["pid"] != old["pid"] and not current["draining"]
    assert current["code_hash"] != old["code_hash"] and current["jobs"] == 0
    assert current["code_hash"] == codehash.code_hash(str(installed / "jobjoker"))

    # New jobs run the new code, under the new supervisor; the old ones stay where they are.
    new = second.create_job("Sleeper", {"count": 3, "every": 0.01})
    assert parent(new["pid"]) == current["pid"]
    assert parent(finishing["pid"]) == parent(stopped["pid"]) == old["pid"]
    assert second.wait_for_job(new["id"])["status"] == "done"
    assert second.messages(new["id"])[0].startswith("STARTED (reinstalled) job")
    # A job of the old supervisor is stopped through it, and one ends by itself, whole.
    assert second.call("PUT", "/jobs/%s/status" % stopped["id"], "stop").code == 202
    assert second.wait_for_job(stopped["id"])["status"] == "stop"
    assert process_alive(old["pid"])  # it still has a job
    release.touch()
    assert second.wait_for_job(finishing["id"])["status"] == "done"
    log = second.messages(finishing["id"])
    assert log[0].startswith("STARTED job")  # the old code ran it to its end
    assert [m for m in log if m.startswith("line ")] == ["line %d" % i for i in range(60)]
    assert log[-1].startswith("ENDED done")

    # Its last job over, the old supervisor exits, and /health shows the new one alone.
    until(lambda: not process_alive(old["pid"]), what="the old supervisor to exit")
    until(lambda: len(second.api("GET", "/health")[0]["supervisors"]) == 1,
          what="/health to show one supervisor")
    [alone] = second.api("GET", "/health")[0]["supervisors"]
    assert alone == dict(current, jobs=0)
    assert second.stop() == 0


# --- draining, at the protocol's level ----------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_a_drained_supervisor_keeps_its_job_exits_after_it_and_a_rollback_keeps_it(
        tmp_path):
    """A drain lets the job run and the supervisor exit after it; a server of the drained
    supervisor's own code (a rollback) finds it draining and makes it serve again."""
    from jobjoker import jobdir
    from jobjoker.supervisors import Supervisors
    workers = workers_folder(tmp_path / "workers", {"Sleeper": SLEEPER_WORKER})
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)

    def spec(job_id, count):
        jobdir.create(tmp_path / "jobs" / job_id)
        return {"job_id": job_id, "worker": "Sleeper", "worker_file": str(workers / "Sleeper.py"),
                "params": {"count": count, "every": 0.05}, "cwd": str(workers),
                "job_dir": str(tmp_path / "jobs" / job_id)}
    exits = []
    first = Supervisors(run_dir, exits.append, None, lambda: None)
    await first.connect()
    try:
        [started] = await first.current.start_many([spec("long", 100000)])
        await first.current.drain()
        assert (await first.current.request("ping"))["draining"]
        # The same code's next server: it takes the drained supervisor back.
        second = Supervisors(run_dir, exits.append, None, lambda: None)
        await second.connect()
        assert second.current.supervisor_pid == first.current.supervisor_pid
        assert not second.current.draining and second.others == []
        assert not (await first.current.request("ping"))["draining"]
        assert cmdline(first.current.supervisor_pid).endswith(".sock")  # not "(draining)"
        await second.close()
        # Drained again, it exits once its job has ended, not before.
        await first.current.drain()
        assert cmdline(first.current.supervisor_pid).endswith(" (draining)")
        pid = first.current.supervisor_pid
        assert (await first.current.request("status"))["running"]  # it still runs the job
        await first.current.request("signal", job_id="long", signal=15)
        await poll(lambda: not process_alive(pid), what="the drained supervisor to exit")
        assert [e["job_id"] for e in exits] == ["long"] and not process_alive(started["pid"])
    finally:
        await first.close(shutdown=True, kill_jobs=True)
