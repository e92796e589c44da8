"""The server as users run it: ``python run_server.py`` in its own process."""
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, path, method="GET", body=None, auth=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=body)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class ServerProcess:
    def __init__(self, tmp_path, env=None, args=(), command=None):
        """``command``: how to start the server, ``run_server.py`` by default; the options
        follow it."""
        self.port = free_port()
        self.data_dir = tmp_path / "data"
        self.stderr_path = tmp_path / ("server-%d.err" % self.port)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
        environ.update(env or {})
        command = command or [sys.executable, str(ROOT / "run_server.py")]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--workers-dir", str(ROOT / "workers"), *args],
            stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "wb"), env=environ)

    @property
    def stderr(self):
        return self.stderr_path.read_text()

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("server exited %s: %s" % (self.process.returncode,
                                                                self.stderr))
            try:
                if request(self.port, "/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server not ready: %s" % self.stderr)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        return self.process.returncode


def test_first_start_creates_admin_prints_its_password_once_and_requires_auth(servers):
    server = servers().wait_ready()
    banner = server.stderr
    assert "listening on http://127.0.0.1:%d/" % server.port in banner
    password = banner.split("Created user 'admin' with password: ")[1].split()[0]
    assert request(server.port, "/workers")[0] == 401
    assert request(server.port, "/workers", auth=("admin", "wrong"))[0] == 401
    status, body = request(server.port, "/workers", auth=("admin", password))
    assert status == 200 and {w["name"] for w in body["data"]} >= {"Foobar", "TestWorker"}
    assert server.stop() == 0
    # The password was shown once: a second start has a user already and prints none.
    again = servers().wait_ready()
    assert "Created user" not in again.stderr
    assert password not in again.stderr
    assert again.stop() == 0


def test_sigterm_leaves_running_jobs_running_and_a_restart_adopts_them(servers):
    auth = ("admin", "pw")
    server = servers(env={"JOBJOKER_ADMIN_PASSWORD": "pw"}).wait_ready()
    status, body = request(server.port, "/jobs", "POST", json.dumps(
        {"worker": "TestWorker", "parameters": {"count": 1000, "sleep": 0.05}}).encode(), auth)
    assert status == 201
    job_id = body["data"][0]["id"]
    status, body = request(server.port, "/jobs/%s/status" % job_id, "PUT", b"start", auth)
    pid = body["data"][0]["pid"]
    assert server.stop() == 0
    os.kill(pid, 0)  # still running without its server

    again = servers(env={"JOBJOKER_ADMIN_PASSWORD": "pw"}).wait_ready()
    status, body = request(again.port, "/jobs/%s/status" % job_id, "PUT", b"kill", auth)
    assert status == 202, body
    deadline = time.monotonic() + 10
    while request(again.port, "/jobs/%s" % job_id, auth=auth)[1]["data"][0]["status"] \
            == "active":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, body = request(again.port, "/jobs/%s/log?limit=100000" % job_id, auth=auth)
    numbered = [e["message"] for e in body["data"] if e["message"].startswith("log ")]
    assert numbered == ["log %d" % i for i in range(len(numbered))] and len(numbered) > 1
    assert again.stop() == 0


def test_a_second_server_on_the_same_data_dir_is_refused(servers):
    first = servers(env={"JOBJOKER_ADMIN_PASSWORD": "pw"}).wait_ready()
    second = servers(env={"JOBJOKER_ADMIN_PASSWORD": "pw"})
    assert second.process.wait(timeout=30) == 1
    assert "another JobJoker server (pid %d)" % first.process.pid in second.stderr
    assert request(first.port, "/health")[0] == 200
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
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the jobjoker console command is not installed next to %s"
                        % sys.executable)
        pytest.skip("jobjoker is not installed in this environment (pip install -e .)")
    result = subprocess.run([command, "serve", "--help"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    assert "--data-dir" in result.stdout and "JOBJOKER_DATA_DIR" in result.stdout
    bare = subprocess.run([command], capture_output=True, text=True, timeout=30)
    assert bare.returncode == 2 and "serve" in bare.stdout
