"""The server as users run it: ``python run_server.py`` in its own process."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time

import pytest

from tests.support import FAILING_WORKER, ROOT, unavailable, until, workers_folder


def test_first_start_creates_admin_gives_its_password_once_and_requires_auth(servers):
    server = servers(password=None).wait_ready()
    banner = server.stderr
    url = "http://127.0.0.1:%d/" % server.port
    assert "listening on %s" % url in banner
    # Its stderr is no terminal (a service's is not): the password is in a file only the
    # server's user reads, and the log says where (tests/test_logs.py: on a terminal).
    secret_file = server.data_dir / "initial-admin-password"
    password = secret_file.read_text().strip()
    assert password not in banner
    # People sign in through the form: the log sends them there, not to HTTP Basic.
    assert "its password is in %s" % secret_file in banner
    assert "sign in at %s, change it, then delete the file" % url in banner
    assert "HTTP Basic" not in banner
    assert server.call("GET", "/workers", auth=None).code == 401
    assert server.call("GET", "/workers", auth=("admin", "wrong")).code == 401
    reply = server.call("GET", "/workers", auth=("admin", password))
    assert reply.code == 200 and {w["name"] for w in reply.data} >= {"Foobar", "TestWorker"}
    assert server.stop() == 0
    # The password was given once: a second start has a user already and writes none.
    secret_file.unlink()
    again = servers(password=None).wait_ready()
    assert "Created user" not in again.stderr and "its password is in" not in again.stderr
    assert not secret_file.exists()
    assert "sign in at %s/ with an existing user" % again.url in again.stderr
    assert "HTTP Basic" not in again.stderr
    assert again.stop() == 0


def test_the_banner_says_where_the_command_line_is_when_path_does_not_reach_it(servers):
    bin_dir = os.path.dirname(sys.executable)
    if not os.path.exists(os.path.join(bin_dir, "jobjoker")):
        unavailable("jobjoker is not installed next to %s (pip install -e .)" % sys.executable)
    # As after `make serve`: the venv's python runs the server, its bin/ is not on PATH.
    elsewhere = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                                if os.path.realpath(d) != os.path.realpath(bin_dir))
    server = servers(env={"PATH": elsewhere}).wait_ready()
    shown = os.path.relpath(bin_dir)  # as the server shows it: relative when inside its cwd
    shown = bin_dir if shown.startswith("..") else shown
    assert "the command line is %s/jobjoker; `. %s/activate` in a shell puts it on PATH" % (
        shown, shown) in server.stderr
    assert server.stop() == 0
    # Once PATH reaches it, there is nothing to say.
    on_path = servers(env={"PATH": bin_dir + os.pathsep + elsewhere}).wait_ready()
    assert "the command line is" not in on_path.stderr


def test_sigterm_leaves_running_jobs_running_and_a_restart_adopts_them(servers):
    server = servers().wait_ready()
    job = server.create_job("TestWorker", {"count": 1000, "sleep": 0.05})
    assert server.stop() == 0
    os.kill(job["pid"], 0)  # still running without its server

    again = servers().wait_ready()
    reply = again.call("PUT", "/jobs/%s/status" % job["id"], "kill")
    assert reply.code == 202, reply
    again.wait_for_job(job["id"])
    numbered = [m for m in again.messages(job["id"]) if m.startswith("log ")]
    assert numbered == ["log %d" % i for i in range(len(numbered))] and len(numbered) > 1
    assert again.stop() == 0


LINGERING_WORKER = '''import time
from jobjoker import Worker


class Lingering(Worker):
    """Runs until asked to stop, then takes `linger` seconds to wind down."""
    def run(self):
        self.log("running")
        while self.is_active():
            time.sleep(0.02)
        time.sleep(self.params["linger"])
'''


def test_jobs_that_end_while_the_server_is_down_keep_their_real_end(servers, tmp_path):
    """Done, error and stop: the stoptime, the duration and ENDED's "after N s" are those of
    the process's end, not of the restart that recorded it."""
    workers = workers_folder(tmp_path / "workers", {"Failing": FAILING_WORKER,
                                                    "Lingering": LINGERING_WORKER})
    server = servers(workers_dir=workers).wait_ready()
    lingering = server.create_job("Lingering", {"linger": 1.5})
    until(lambda: "running" in server.messages(lingering["id"]), what="the job to run")
    assert server.call("PUT", "/jobs/%s/status" % lingering["id"], "stop").code == 202
    jobs = {"stop": lingering, "done": server.create_job("TestWorker", {"sleep": 0.5}),
            "error": server.create_job("Failing")}
    assert server.stop() == 0  # while all three still run

    def exit_record(job):
        try:
            with open(server.data_dir / "jobs" / job["id"] / "exit.json") as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None
    ended_at = {status: until(lambda: exit_record(job), what="the %s job's end" % status)["time"]
                for status, job in jobs.items()}
    # The server stays away a while after the ends, so the restart's time is not theirs.
    until(lambda: time.time() > max(ended_at.values()) + 3, what="3 s after the ends", every=0.1)
    restarted_at = time.time()
    again = servers(workers_dir=workers).wait_ready()
    for status, job in jobs.items():
        final = again.job(job["id"])
        assert final["status"] == status, final
        assert final["stoptime"] == pytest.approx(ended_at[status], abs=0.01), status
        assert final["stoptime"] < restarted_at - 1
        duration = final["stoptime"] - final["starttime"]
        assert final["duration"] == pytest.approx(duration, abs=0.01)
        closing = re.fullmatch(r"ENDED %s \(.*\) after ([0-9.]+) s" % status,
                               again.messages(job["id"])[-1])
        assert closing and float(closing.group(1)) == pytest.approx(duration, abs=0.01), status
    assert again.stop() == 0


def test_a_second_server_on_the_same_data_dir_is_refused(servers):
    first = servers().wait_ready()
    second = servers()
    assert second.process.wait(timeout=60) == 1
    assert "another JobJoker server (pid %d)" % first.process.pid in second.stderr
    assert first.call("GET", "/health").code == 200
    assert first.stop() == 0


def test_a_workers_folder_the_server_creates_is_0755_and_so_are_its_new_parents(servers,
                                                                              tmp_path):
    """A --run-as job imports the helpers beside its worker by path: every folder the server
    makes on the way to the workers folder must let it through (the server's umask is 077),
    while the data dir stays the server's alone. The README and SECURITY.md say so."""
    (tmp_path / "srv").mkdir(mode=0o711)
    workers = tmp_path / "srv" / "jobjoker" / "workers"
    server = servers(workers_dir=workers).wait_ready()
    for folder in (workers, workers.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    assert stat.S_IMODE((tmp_path / "srv").stat().st_mode) == 0o711  # not ours to change
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    shutil.rmtree(workers)  # a save makes it again, the same way
    assert server.call("PUT", "/workers/Made", "from jobjoker import Worker\n\n\nclass Made("
                       "Worker):\n    def run(self):\n        pass\n").code == 201
    assert stat.S_IMODE(workers.stat().st_mode) == 0o755
    assert stat.S_IMODE((workers / "Made.py").stat().st_mode) == 0o644
    assert server.stop() == 0


def test_bad_options_exit_2_with_the_reason(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "run_server.py"), "--port", "x"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "port='x' is not a valid int" in result.stderr


def test_help_lists_every_option_with_its_environment_variable():
    result = subprocess.run([sys.executable, "-m", "jobjoker.cli", "serve", "--help"],
                            capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 0
    for flag, variable in [("--host", "JOBJOKER_HOST"), ("--port", "JOBJOKER_PORT"),
                           ("--data-dir", "JOBJOKER_DATA_DIR"),
                           ("--workers-dir", "JOBJOKER_WORKERS_DIR"),
                           ("--database", "JOBJOKER_DATABASE_URL")]:
        assert flag in result.stdout and variable in result.stdout


def test_the_installed_console_command_serves_the_same_options():
    command = os.path.join(os.path.dirname(sys.executable), "jobjoker")
    if not os.path.exists(command):
        unavailable("jobjoker is not installed next to %s (pip install -e .)" % sys.executable)
    result = subprocess.run([command, "serve", "--help"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    assert "--data-dir" in result.stdout and "JOBJOKER_DATA_DIR" in result.stdout
    bare = subprocess.run([command], capture_output=True, text=True, timeout=30)
    assert bare.returncode == 2 and "serve" in bare.stdout
