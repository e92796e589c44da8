"""The server's log as an operator runs it (jobjoker/logsetup.py, jobjoker/cli.py): a log file
that SIGHUP reopens after logrotate renamed it, JSON lines, the access log on and off, the
first admin's password on a terminal or in a 0600 file, and no secret in any line."""
import json
import logging
import os
import pty
import select
import signal
import stat
import subprocess
import sys
import time

from jobjoker import logsetup
from jobjoker.config import load_config
from jobjoker.supervisor_client import socket_path_for
from tests.support import ROOT, kill_leftovers, until, workers_folder

SECRET_WORKER = '''from jobjoker import Worker


class Sealed(Worker):
    parameters = {"password": {"type": "string", "secret": True, "required": True}}

    def run(self):
        self.log("got a password of %d characters" % len(self.params["password"]))
'''


def log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_sighup_after_a_rename_sends_the_next_lines_to_a_new_file(servers, tmp_path):
    log_file = tmp_path / "server.log"
    server = servers("--log-file", str(log_file)).wait_ready()
    until(lambda: any("listening on" in line for line in log_lines(log_file)),
          what="the banner in the log file")
    assert "listening on" not in server.stderr  # the file, not the console
    rotated = tmp_path / "server.log.1"
    os.rename(log_file, rotated)  # what logrotate does before its postrotate
    server.process.send_signal(signal.SIGHUP)
    until(log_file.exists, what="a new log file")
    # The server still serves, and what it logs next goes to the new file only.
    assert server.call("GET", "/jobs?nope=1").code == 400
    until(lambda: any("400 GET /jobs?nope=1" in line for line in log_lines(log_file)),
          what="the request's line in the new file")
    assert not any("GET /jobs" in line for line in log_lines(rotated))
    assert "reopened the log file %s" % log_file in log_file.read_text()
    assert server.process.poll() is None
    assert server.stop() == 0


def test_sighup_without_a_log_file_does_not_end_the_server(servers):
    server = servers().wait_ready()
    server.process.send_signal(signal.SIGHUP)
    until(lambda: "nothing to reopen" in server.stderr, what="the SIGHUP to be handled")
    assert server.call("GET", "/health").code == 200
    assert server.stop() == 0


def test_json_lines_parse_with_time_level_logger_and_message(servers, tmp_path):
    log_file = tmp_path / "server.log"
    server = servers("--log-file", str(log_file), "--log-format", "json").wait_ready()
    assert server.call("GET", "/jobs", auth=None).code == 401
    until(lambda: any("401 GET /jobs" in line for line in log_lines(log_file)),
          what="the request's line")
    assert server.stop() == 0
    entries = [json.loads(line) for line in log_lines(log_file)]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["logger"] == "tornado.access" and e["level"] == "WARNING"
               and e["message"].startswith("401 GET /jobs") for e in entries)
    assert any(e["message"].startswith("SIGTERM: stopping") for e in entries)


def test_a_json_line_carries_the_exception_text():
    formatter = logsetup.JsonFormatter()
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("jobjoker.x", logging.ERROR, __file__, 1, "failed %s",
                                   ("here",), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line  # one object, one line
    entry = json.loads(line)
    assert entry["message"] == "failed here" and entry["level"] == "ERROR"
    assert entry["exception"].startswith("Traceback") and "ValueError: boom" in \
        entry["exception"]
    assert entry["time"].endswith("Z")


def test_under_a_base_path_the_probes_stay_at_debug_too(caplog):
    """The probes are recognised under ``--base-path`` (``/jobjoker/health``), and only there."""
    class Request:
        method, remote_ip = "GET", "127.0.0.1"

        def __init__(self, path):
            self.path = self.uri = path

        def request_time(self):
            return 0.001

    class Handler:
        def __init__(self, path):
            self.request = Request(path)

        def get_status(self):
            return 200

    log_request = logsetup.access_log(load_config({"base_path": "/jobjoker"}, environ={}))
    with caplog.at_level(logging.DEBUG, logger="tornado.access"):
        for path in ("/jobjoker/health", "/jobjoker/metrics", "/jobjoker/jobs", "/health"):
            log_request(Handler(path))
    levels = {record.getMessage().split()[2]: record.levelno for record in caplog.records}
    assert levels == {"/jobjoker/health": logging.DEBUG, "/jobjoker/metrics": logging.DEBUG,
                      "/jobjoker/jobs": logging.INFO, "/health": logging.INFO}


def test_the_access_log_on_leaves_probes_at_debug_and_off_drops_every_request(servers,
                                                                              tmp_path):
    on_file, off_file = tmp_path / "on.log", tmp_path / "off.log"
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    on = servers("--log-file", str(on_file), root=tmp_path / "on").wait_ready()
    off = servers("--log-file", str(off_file), "--access-log", "off",
                  root=tmp_path / "off").wait_ready()
    for server in (on, off):
        assert server.call("GET", "/health", auth=None).code == 200
        assert server.call("GET", "/jobs").code == 200
        assert server.call("GET", "/jobs", auth=None).code == 401
    until(lambda: any("401 GET /jobs" in line for line in log_lines(on_file)),
          what="the access lines")
    assert any("200 GET /jobs" in line for line in log_lines(on_file))
    assert not any("GET /health" in line for line in log_lines(on_file))  # at DEBUG
    assert on.stop() == 0 and off.stop() == 0
    assert any("SIGTERM: stopping" in line for line in log_lines(off_file))
    assert not any("tornado.access" in line for line in log_lines(off_file))
    assert not any("GET /" in line for line in log_lines(off_file))


def test_every_line_masks_secret_query_values_and_url_passwords():
    masked = logsetup.redact("400 GET /jobs?token=abc123&limit=5&Password=hunter2&api_key=k "
                             "(127.0.0.1)")
    assert masked == "400 GET /jobs?token=***&limit=5&Password=***&api_key=*** (127.0.0.1)"
    assert logsetup.redact("GET /jobs/01abc/log?search=x") == "GET /jobs/01abc/log?search=x"
    assert logsetup.redact("cannot open mysql://jj:s3cr%40t@db:3306/jobs: refused") == \
        "cannot open mysql://jj:***@db:3306/jobs: refused"
    assert logsetup.redact("see http://example.com:8080/x") == "see http://example.com:8080/x"
    # Whoever logs it, in either format: Tornado's own line of an uncaught exception repeats
    # the URL.
    record = logging.LogRecord("tornado.application", logging.ERROR, __file__, 1,
                               "Uncaught exception GET %s", ("/jobs?xsrf_token=abc",), None)
    for formatter in (logsetup.TextFormatter(), logsetup.JsonFormatter()):
        assert "abc" not in formatter.format(record)


def test_without_a_terminal_the_first_password_is_in_a_0600_file_and_in_no_log(servers,
                                                                                tmp_path):
    log_file = tmp_path / "server.log"
    server = servers("--log-file", str(log_file), password=None).wait_ready()
    secret_file = server.data_dir / "initial-admin-password"
    until(secret_file.exists, what="the password file")
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    password = secret_file.read_text().strip()
    assert len(password) >= 12
    assert server.call("GET", "/workers", auth=("admin", password)).code == 200
    until(lambda: str(secret_file) in log_file.read_text(), what="the file's path in the log")
    assert server.stop() == 0
    for text in (log_file.read_text(), server.stderr,
                 (server.data_dir / "run" / "supervisor.log").read_text()):
        assert password not in text


def test_on_a_terminal_the_console_shows_the_first_password_and_no_file_is_made(tmp_path):
    controller, terminal = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_server.py"), "--port", "0",
         "--data-dir", str(data_dir), "--workers-dir", str(ROOT / "workers")],
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=environ)
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"Sign in with it" not in seen and time.monotonic() < deadline:
            if select.select([controller], [], [], 1)[0]:
                try:
                    seen += os.read(controller, 65536)
                except OSError:  # the server ended: the terminal has no writer
                    break
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
        kill_leftovers(socket_path_for(str(data_dir / "run")))
    text = seen.decode(errors="replace")
    assert "Created user 'admin' with password: " in text, text
    assert not (data_dir / "initial-admin-password").exists()


def test_no_secret_reaches_the_log_even_at_debug(servers, tmp_path):
    """Passwords (the first admin's, a new user's, a sign-in's), a token, a secret parameter and
    a token put in a URL: none is in any line of a DEBUG log."""
    log_file = tmp_path / "server.log"
    workers = workers_folder(tmp_path / "workers", {"Sealed": SECRET_WORKER})
    server = servers("--log-file", str(log_file), "--log-level", "DEBUG",
                     password="first-admin-pw-4711", workers_dir=workers).wait_ready()
    assert server.call("POST", "/users", {"username": "ann", "password": "ann-pw-0815-xyz",
                                          "role": "viewer"}).code == 201
    token = server.call("POST", "/tokens", {"name": "script"}).data[0]["token"]
    assert server.call("GET", "/jobs", auth=None,
                       headers={"Authorization": "Bearer " + token}).code == 200
    assert server.call("GET", "/jobs?token=" + token, auth=None).code == 401
    assert server.call("GET", "/jobs", auth=("ann", "ann-pw-0815-xyz")).code == 200
    assert server.call("POST", "/session", {"username": "ann", "password": "wrong-pw-9999"},
                       auth=None).code == 401
    job = server.create_job("Sealed", {"password": "sealed-value-31337"})
    server.wait_for_job(job["id"])
    assert server.stop() == 0
    text = log_file.read_text() + server.stderr
    assert "200 GET /jobs" in text  # the access log was on, at DEBUG
    for secret in ("first-admin-pw-4711", "ann-pw-0815-xyz", "wrong-pw-9999", token,
                   "sealed-value-31337"):
        assert secret not in text, secret


def test_bad_log_options_are_refused_saying_what_to_give(tmp_path):
    from jobjoker.config import load_config
    from jobjoker.errors import StartupError
    for flags, expected in (
            ({"log_format": "xml"}, "log_format must be one of text, json (got 'xml')"),
            ({"log_file": str(tmp_path / "no" / "such" / "server.log")},
             "the folder %s does not exist" % (tmp_path / "no" / "such")),
            ({"access_log": "maybe"}, "access_log='maybe' is not a valid yes/no value")):
        try:
            load_config(dict(flags, data_dir=str(tmp_path)), environ={})
        except StartupError as e:
            assert expected in e.message, e.message
        else:
            raise AssertionError("%r was accepted" % flags)
    config = load_config({"data_dir": str(tmp_path), "log_format": "JSON",
                          "access_log": "off"}, environ={})
    assert config.log_format == "json" and config.access_log is False


def same_file(a, b):
    first, second = os.stat(a), os.stat(b)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def test_sighup_makes_the_supervisor_reopen_its_log_too(servers, tmp_path):
    """One postrotate for both logs: the server asks its supervisor to reopen, and a SIGHUP of
    the supervisor's own does the same (and does not end it)."""
    server = servers("--log-file", str(tmp_path / "server.log")).wait_ready()
    supervisor_log = server.data_dir / "run" / "supervisor.log"
    [supervisor] = server.api("GET", "/health")[0]["supervisors"]
    rotated = tmp_path / "supervisor.log.1"
    os.rename(supervisor_log, rotated)
    before = rotated.read_bytes()
    server.process.send_signal(signal.SIGHUP)
    until(lambda: "reopened the log %s (asked by the server)" % supervisor_log
          in "\n".join(log_lines(supervisor_log)), what="the supervisor's line in its new log")
    assert same_file("/proc/%d/fd/2" % supervisor["pid"], supervisor_log)
    assert stat.S_IMODE(os.stat(supervisor_log).st_mode) == 0o600
    # Its own SIGHUP: the same, and it serves on.
    os.rename(supervisor_log, tmp_path / "supervisor.log.2")
    os.kill(supervisor["pid"], signal.SIGHUP)
    until(lambda: "(SIGHUP)" in "\n".join(log_lines(supervisor_log)),
          what="the supervisor's line in its newer log")
    assert same_file("/proc/%d/fd/2" % supervisor["pid"], supervisor_log)
    assert "(SIGHUP)" not in (tmp_path / "supervisor.log.2").read_text()
    assert rotated.read_bytes() == before
    job = server.create_job("Foobar")
    assert server.wait_for_job(job["id"])["status"] == "done"
    [supervisor_now] = server.api("GET", "/health")[0]["supervisors"]
    assert supervisor_now["pid"] == supervisor["pid"]
    assert server.stop() == 0


def test_a_new_log_file_is_0640_whatever_the_umask_and_an_old_one_keeps_its_mode(tmp_path):
    made = tmp_path / "made.log"
    kept = tmp_path / "kept.log"
    kept.touch()
    os.chmod(kept, 0o600)
    for umask in (0o077, 0o000):
        previous = os.umask(umask)
        try:
            for path in (made, kept):
                handler = logsetup.ReopenableFileHandler(path)
                handler.reopen()
                handler.close()
        finally:
            os.umask(previous)
        assert stat.S_IMODE(os.stat(made).st_mode) == 0o640
        assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
        made.unlink()
