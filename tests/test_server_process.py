"""The server as users run it: ``python run_server.py`` in its own process."""
import os
import subprocess
import sys

from tests.support import ROOT, unavailable


def test_first_start_creates_admin_prints_its_password_once_and_requires_auth(servers):
    server = servers(password=None).wait_ready()
    banner = server.stderr
    url = "http://127.0.0.1:%d/" % server.port
    assert "listening on %s" % url in banner
    password = banner.split("Created user 'admin' with password: ")[1].split()[0]
    # People sign in through the form: the banner sends them there, not to HTTP Basic.
    assert "Sign in with it at %s; set JOBJOKER_ADMIN_PASSWORD to choose one." % url in banner
    assert "HTTP Basic" not in banner
    assert server.call("GET", "/workers", auth=None).code == 401
    assert server.call("GET", "/workers", auth=("admin", "wrong")).code == 401
    reply = server.call("GET", "/workers", auth=("admin", password))
    assert reply.code == 200 and {w["name"] for w in reply.data} >= {"Foobar", "TestWorker"}
    assert server.stop() == 0
    # The password was shown once: a second start has a user already and prints none.
    again = servers(password=None).wait_ready()
    assert "Created user" not in again.stderr
    assert password not in again.stderr
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


def test_a_second_server_on_the_same_data_dir_is_refused(servers):
    first = servers().wait_ready()
    second = servers()
    assert second.process.wait(timeout=60) == 1
    assert "another JobJoker server (pid %d)" % first.process.pid in second.stderr
    assert first.call("GET", "/health").code == 200
    assert first.stop() == 0


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
