"""The ``jobjoker`` command's client subcommands, run as real processes against a real server
process: output as text and as JSON, exit codes, live following, and a password that never comes
from a flag."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from jobjoker.client import Client
from jobjoker.parameters import unchecked_note
from tests.support import FAILING_WORKER, HELLO_WORKER, OPEN_WORKER, PASSWORD, ROOT, free_port, \
    until, wait_for_end


def environment(url, password=PASSWORD, **extra):
    """The environment the command runs in: ours without any JOBJOKER_ variable, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    env.update({"JOBJOKER_URL": url, "JOBJOKER_USER": "admin"}, **extra)
    if password is not None:
        env["JOBJOKER_PASSWORD"] = password
    return env


def command(*args):
    return [sys.executable, "-m", "jobjoker.cli", *args]


@pytest.fixture
def jj(server_process):
    """``jj(*args, input=None, env=None)``: run ``jobjoker ARGS`` against the module's server;
    the completed process, with ``json``: stdout parsed when it is one JSON document."""
    def run(*args, input=None, env=None):
        result = subprocess.run(command(*args), input=input, capture_output=True, text=True,
                                timeout=60, cwd=ROOT,
                                env=env or environment(server_process.url))
        try:
            result.json = json.loads(result.stdout)
        except ValueError:  # text, or one JSON document per line (see json_lines)
            result.json = None
        return result
    return run


@pytest.fixture
def client(server_process):
    return Client(server_process.url, "admin", PASSWORD)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("args", [
    [], ["workers"], ["workers", "ls"], ["workers", "show"], ["workers", "push"],
    ["workers", "pull"], ["workers", "rm"], ["jobs"], ["jobs", "ls"], ["jobs", "show"],
    ["jobs", "start"], ["jobs", "stop"], ["jobs", "kill"], ["jobs", "pause"], ["jobs", "resume"],
    ["jobs", "rm"], ["logs"], ["run"], ["pause"], ["resume"],
    ["users"], ["users", "ls"], ["users", "add"], ["users", "role"], ["users", "disable"],
    ["users", "enable"], ["users", "rm"], ["users", "passwd"], ["tokens"], ["tokens", "ls"],
    ["tokens", "create"], ["tokens", "revoke"], ["audit"]])
def test_every_command_has_help(args):
    result = subprocess.run(command(*args, "--help"), capture_output=True, text=True,
                            timeout=30, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: jobjoker")
    if len(args) == 2 or args in (["logs"], ["run"], ["audit"], ["pause"], ["resume"]):
        assert "JOBJOKER_PASSWORD" in result.stdout and "exit codes:" in result.stdout


def test_workers_push_ls_show_pull_and_rm(jj, tmp_path):
    source = tmp_path / "Hello.py"
    source.write_text(HELLO_WORKER)
    pushed = jj("workers", "push", str(source))
    assert pushed.returncode == 0 and pushed.stdout.startswith("worker Hello saved (")
    assert jj("workers", "push", "-", "--name", "Hello", "--json", input=HELLO_WORKER).json[
        "name"] == "Hello"
    listed = jj("workers", "ls")
    assert listed.stdout.split("\n")[0].split() == ["NAME", "SIZE", "MODIFIED", "DESCRIPTION"]
    assert any(line.startswith("Hello ") and line.endswith("Says hello.")
               for line in listed.stdout.splitlines())
    assert "Hello" in [w["name"] for w in jj("workers", "ls", "--json").json]
    shown = jj("workers", "show", "Hello")
    assert "description  Says hello." in shown.stdout
    assert jj("workers", "show", "Hello", "--json").json["description"] == "Says hello."
    assert jj("workers", "pull", "Hello").stdout == HELLO_WORKER
    pulled = tmp_path / "pulled.py"
    assert jj("workers", "pull", "Hello", "-o", str(pulled)).returncode == 0
    assert pulled.read_text() == HELLO_WORKER
    removed = jj("workers", "rm", "Hello")
    assert (removed.returncode, removed.stdout) == (0, "worker Hello deleted\n")
    missing = jj("workers", "rm", "Hello")
    assert missing.returncode == 5 and missing.stderr == "jobjoker: no worker named 'Hello'\n"


def test_pushing_bad_code_exits_1_with_the_servers_message(jj, tmp_path):
    source = tmp_path / "Broken.py"
    source.write_text("class Broken(:\n")
    result = jj("workers", "push", str(source))
    assert result.returncode == 1 and result.stderr.startswith("jobjoker: line 1")
    assert jj("workers", "push", str(tmp_path / "Nope.py")).returncode == 2
    empty = tmp_path / "Empty.py"
    empty.write_text("\n")
    result = jj("workers", "push", str(empty))
    assert (result.returncode, result.stderr) == (1, "jobjoker: the worker's code is empty: a "
                                                     "worker is a Python file defining class "
                                                     "Empty(jobjoker.Worker) with a run(self) "
                                                     "method\n")
    assert jj("workers", "push", "-", input="x").returncode == 2  # no --name for stdin


def test_run_without_follow_prints_the_id_and_jobs_commands_handle_it(jj, client):
    result = jj("run", "TestWorker", "-p", "count=100", "-p", "sleep=5")
    assert result.returncode == 0
    job_id = result.stdout.strip()
    assert client.job(job_id)["status"] == "active"
    shown = jj("jobs", "show", job_id)
    assert re.search(r"^status +active$", shown.stdout, re.M)
    assert re.search(r'^parameters +\{"count": 100, "sleep": 5\}$', shown.stdout, re.M)
    assert jj("jobs", "show", job_id, "--json").json["id"] == job_id
    listed = jj("jobs", "ls", "--worker", "TestWorker", "--status", "active")
    assert listed.stdout.split("\n")[0].split() == ["ID", "WORKER", "STATUS", "CREATED",
                                                    "DURATION", "REASON", "ATTEMPT"]
    assert re.search(r"^attempt +attempt 1 of 1$", shown.stdout, re.M)
    assert any(line.startswith(job_id + "  TestWorker  active  ")
               for line in listed.stdout.splitlines())
    as_json = jj("jobs", "ls", "--status", "active", "--limit", "1000", "--json").json
    assert job_id in [job["id"] for job in as_json]
    busy = jj("jobs", "rm", job_id)
    assert busy.returncode == 1 and "is active: stop or kill it" in busy.stderr
    stopped = jj("jobs", "stop", job_id, "--wait")
    assert (stopped.returncode, stopped.stdout) == (0, "job %s was stopped\n" % job_id)
    again = jj("jobs", "stop", job_id)
    assert again.returncode == 1 and "has already ended" in again.stderr
    assert jj("jobs", "rm", job_id, "--json").json["id"] == job_id
    gone = jj("jobs", "show", job_id)
    assert gone.returncode == 5 and gone.stderr == "jobjoker: no job with id '%s'\n" % job_id


def test_jobs_start_and_kill(jj, client):
    job = client.create_job("TestWorker", {"count": 100, "sleep": 5})
    started = jj("jobs", "start", job["id"])
    assert started.returncode == 0 and started.stdout.startswith("job %s started (pid " % job["id"])
    twice = jj("jobs", "start", job["id"])
    assert twice.returncode == 1 and "only an idle job can start" in twice.stderr
    killed = jj("jobs", "kill", job["id"], "--json")
    assert killed.returncode == 0 and killed.json["stop_requested"] is not None
    final = wait_for_end(client, job["id"])
    assert final["status"] == "stop" and final["exit_signal"] == 9


def test_parameters_from_p_and_params_json(jj, client):
    client.push_worker("Open", OPEN_WORKER)  # it declares none, so it takes any
    result = jj("run", "Open", "--json", "--params-json", '{"count": 1, "keep": "me"}',
                "-p", "count=2", "-p", "sleep=0.5", "-p", "name=hello", "-p", "flag=true",
                "-p", "items=[1, 2]", "-p", 'quoted="3"', "-p", "none=null", "-p", "empty=",
                "-p", "big=1e400", "-p", "nan=NaN", "-p", "eq=a=b")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "jobjoker: warning: %s\n" % unchecked_note(["Open"])
    assert result.json["parameters"] == {
        "count": 2, "keep": "me", "sleep": 0.5, "name": "hello", "flag": True, "items": [1, 2],
        "quoted": "3", "none": None, "empty": "", "big": "1e400", "nan": "NaN", "eq": "a=b"}
    for bad in (["-p", "novalue"], ["-p", "=3"], ["--params-json", "[1]"],
                ["--params-json", "{bad"]):
        refused = jj("run", "Foobar", *bad)
        assert refused.returncode == 2 and "usage: jobjoker run" in refused.stderr, bad


def test_run_warns_when_the_worker_checks_no_parameters(jj, client):
    client.push_worker("Open", OPEN_WORKER)
    typo = jj("run", "Open", "-p", "cuont=3")
    assert typo.returncode == 0 and typo.stderr == (
        "jobjoker: warning: worker Open declares no parameters, so they are not checked: a "
        "misspelt name reaches the job as it is\n")
    for quiet in (["Open"], ["TestWorker", "-p", "count=1", "-p", "sleep=0"], ["Foobar"]):
        result = jj("run", *quiet)
        assert (result.returncode, result.stderr) == (0, ""), quiet
    refused = jj("run", "TestWorker", "-p", "cuont=3")  # a declaring worker refuses the typo
    assert refused.returncode == 1 and "unknown parameter cuont (did you mean count?" in \
        refused.stderr


def test_run_follow_streams_the_log_then_prints_the_response_and_exits_0_on_done(jj):
    result = jj("run", "TestWorker", "-p", "count=3", "-p", "sleep=0.05", "--follow")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("STARTED job ") and lines[4].startswith("ENDED done")
    assert lines[1:4] == ["log 0", "log 1", "log 2"]
    assert lines[5:] == ["--- response ---", "response 0", "response 1", "response 2"]
    assert result.stderr == ""


def test_run_follow_without_a_response_ends_with_the_log(jj, client):
    client.push_worker("Quiet", HELLO_WORKER.replace("class Hello", "class Quiet"))
    result = jj("run", "Quiet", "--follow")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["hello world", result.stdout.splitlines()[-1]]
    assert result.stdout.splitlines()[-1].startswith("ENDED done")


def test_run_follow_exits_1_when_the_job_fails_with_its_error(jj, client):
    answering = FAILING_WORKER.replace("class Failing", "class Answering").replace(
        'self.log("about to fail")', 'self.log("about to fail")\n        self.response("partial")')
    client.push_worker("Answering", answering)
    result = jj("run", "Answering", "-f")
    assert result.returncode == 1
    assert "about to fail" in result.stdout and "ValueError: bad input" in result.stdout
    # What it answered before failing is printed too, after its log.
    assert result.stdout.endswith("\n--- response ---\npartial\n")
    assert result.stderr.startswith("jobjoker: job ")
    assert "ended with an error: ValueError: bad input" in result.stderr


def test_run_follow_prints_lines_as_they_come(server_process, client):
    process = subprocess.Popen(command("run", "TestWorker", "-p", "count=2", "-p", "sleep=3",
                                       "--follow"), stdout=subprocess.PIPE, text=True, cwd=ROOT,
                               env=environment(server_process.url))
    try:
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.startswith("STARTED job ") and second == "log 0\n"
        job_id = first.split()[2].rstrip(":")
        assert client.job(job_id)["status"] == "active"  # printed while it still runs
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.stdout.close()


def as_from_a_terminal():
    """In the child before exec: SIGINT as a shell in a terminal gives it (not ignored, not
    blocked), whatever this test process inherited or set up (a test runner's worker may run
    with SIGINT ignored, and an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def signal_state(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return "; ".join(line.strip() for line in f if line.startswith(("Sig", "State")))
    except OSError as e:
        return "unknown (%s)" % e


def test_ctrl_c_stops_following_and_leaves_the_job_running(server_process, client):
    process = subprocess.Popen(command("run", "TestWorker", "-p", "count=1000", "-p",
                                       "sleep=0.2", "-f"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env=environment(server_process.url),
                               preexec_fn=as_from_a_terminal)
    try:
        job_id = process.stdout.readline().split()[2].rstrip(":")
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=60) == 130
        except subprocess.TimeoutExpired:  # say what the process made of the signal
            pytest.fail("Ctrl-C did not end `jobjoker run -f` in 60 s; its signal state: %s"
                        % signal_state(process.pid))
        assert "stopped following; job %s keeps running" % job_id in process.stderr.read()
        # A stop or kill sent on the way out would have ended the job before it logs twice more.
        logged = client.job(job_id)["log_count"]
        until(lambda: client.job(job_id)["log_count"] >= logged + 2, what="the job to log on")
        assert client.job(job_id)["status"] == "active"
        client.kill(job_id)
    finally:
        process.kill()
        process.stdout.close()
        process.stderr.close()


def test_run_follow_json_gives_one_event_per_line(jj):
    result = jj("run", "TestWorker", "-p", "count=2", "-p", "sleep=0.05", "-f", "--json")
    assert result.returncode == 0
    events = json_lines(result.stdout)
    assert events[0]["kind"] == "status" and events[-1] == {"kind": "end", "status": "done"}
    log = [e for e in events if e["kind"] == "log"]
    assert [e["seq"] for e in log] == list(range(4)) and log[1]["message"] == "log 0"
    assert isinstance(log[1]["time"], float)
    assert [e["message"] for e in events if e["kind"] == "response"] == ["response 0",
                                                                         "response 1"]


def test_logs_prints_the_log_or_the_response_and_follows(jj, client):
    job = client.run("TestWorker", {"count": 2, "sleep": 0.05})
    client.append_log(job["id"], "two\nlines")
    log = jj("logs", job["id"])
    assert log.returncode == 0
    lines = log.stdout.splitlines()
    assert lines[1:3] == ["log 0", "log 1"] and lines[-2:] == ["two", "lines"]
    assert jj("logs", job["id"], "--response").stdout == "response 0\nresponse 1\n"
    entries = json_lines(jj("logs", job["id"], "--json").stdout)
    assert [e["seq"] for e in entries] == list(range(5)) and entries[-1]["message"] == \
        "two\nlines"
    stamped = jj("logs", job["id"], "--timestamps").stdout.splitlines()
    assert stamped[1].endswith(" log 0") and stamped[1][:2] == "20"
    followed = jj("logs", job["id"], "-f")
    assert followed.returncode == 0 and followed.stdout == log.stdout
    responses = json_lines(jj("logs", job["id"], "-f", "--response", "--json").stdout)
    assert [e["kind"] for e in responses] == ["status", "response", "response", "end"]
    failed = client.run("Failing")
    assert jj("logs", failed["id"]).returncode == 0
    assert jj("logs", failed["id"], "-f").returncode == 1
    assert jj("logs", "no-such-job").returncode == 5
    assert jj("logs", "no-such-job", "-f").returncode == 5


def test_a_short_id_works_wherever_a_job_id_does(jj, client):
    job = client.run("Foobar")
    short = job["id"][-6:]  # as the admin page shows it
    shown = jj("jobs", "show", short)
    assert shown.returncode == 0 and shown.stdout.split("\n")[0].split() == ["id", job["id"]]
    assert jj("jobs", "show", short, "--json").json["id"] == job["id"]
    log = jj("logs", short)
    assert log.returncode == 0 and "foobar" in log.stdout.splitlines()
    followed = jj("logs", short, "-f")
    assert (followed.returncode, followed.stdout) == (0, log.stdout)
    removed = jj("jobs", "rm", short)
    assert (removed.returncode, removed.stdout) == (0, "job %s deleted\n" % job["id"])
    missing = jj("jobs", "show", short)
    assert missing.returncode == 5 and short in missing.stderr


def test_logs_search_prints_the_matching_entries_with_their_seq(jj, client):
    job = client.create_job("TestWorker")
    for message in ("first Match", "no", "100% match", "no"):
        client.append_log(job["id"], message)
    assert jj("logs", job["id"], "--search", "match").stdout == "2: 100% match\n"
    found = jj("logs", job["id"], "--search", "MATCH", "-i")
    assert found.returncode == 0 and found.stdout == "0: first Match\n2: 100% match\n"
    entries = json_lines(jj("logs", job["id"], "--search", "%", "--json").stdout)
    assert [(e["seq"], e["message"]) for e in entries] == [(2, "100% match")]
    assert [e["seq"] for e in client.search(job["id"], "m", ignore_case=True)] == [0, 2]
    assert jj("logs", job["id"], "--search", "x", "-f").returncode != 0


def test_the_password_is_never_a_flag(jj, server_process):
    refused = jj("jobs", "ls", "--password", "s3cret")
    assert refused.returncode == 2
    assert "set JOBJOKER_PASSWORD instead" in refused.stderr
    assert "s3cret" not in refused.stderr
    assert jj("jobs", "ls", "--password").returncode == 2


def test_exit_codes_for_authentication_connection_and_usage(jj, server_process, stand_in):
    url = server_process.url
    wrong = jj("jobs", "ls", env=environment(url, password="wrong"))
    assert wrong.returncode == 4
    assert wrong.stderr.startswith("jobjoker: authentication required")
    assert "check JOBJOKER_PASSWORD" in wrong.stderr
    missing = jj("workers", "ls", env=environment(url, password=None))
    assert missing.returncode == 4 and "(set JOBJOKER_PASSWORD" in missing.stderr
    nobody = "http://127.0.0.1:%d" % free_port()
    unreachable = jj("jobs", "ls", env=environment(nobody))
    assert unreachable.returncode == 3
    assert unreachable.stderr.startswith("jobjoker: cannot reach the JobJoker server at " +
                                         nobody)
    assert jj("jobs", "ls", "--url", nobody).returncode == 3  # the flag beats the environment
    failing = jj("jobs", "ls", "--url", "http://127.0.0.1:%d" % stand_in.server_address[1])
    assert failing.returncode == 3 and "the database is unavailable" in failing.stderr
    assert jj("jobs", "ls", "--url", "localhost:8080").returncode == 2
    assert jj("jobs", "frobnicate").returncode == 2
    bad_limit = jj("jobs", "ls", "--limit", "5000")
    assert bad_limit.returncode == 1 and "limit may be at most 1000" in bad_limit.stderr


def test_a_closed_pipe_ends_the_output_quietly(jj, client):
    job = client.run("Lines", {"count": 20000})
    # A command that went on writing into the closed pipe, or hung there, would not end: the
    # timeout fails the test then.
    pipeline = subprocess.run("%s | head -n 2" % " ".join(command("logs", job["id"])),
                              shell=True, capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env=environment(client.url))
    assert pipeline.stdout.splitlines()[1] == "line 0 "
    assert "Traceback" not in pipeline.stderr and "BrokenPipeError" not in pipeline.stderr


# --- users, tokens and the audit trail ----------------------------------------------------------

def test_users_add_role_disable_enable_passwd_and_rm(jj, server_process):
    url = server_process.url
    added = jj("users", "add", "cliuser", "--role", "operator",
               env=environment(url, JOBJOKER_NEW_PASSWORD="cli-user-password-1"))
    assert added.returncode == 0 and added.stdout == "user cliuser added (operator)\n", added
    listed = jj("users", "ls", "--json").json
    assert {"username": "cliuser", "role": "operator"}.items() <= [
        u for u in listed if u["username"] == "cliuser"][0].items()
    as_user = environment(url, password="cli-user-password-1", JOBJOKER_USER="cliuser")
    assert jj("jobs", "ls", env=as_user).returncode == 0
    refused = jj("users", "ls", env=as_user)
    assert refused.returncode == 4 and "may not" in refused.stderr  # 403: not an admin
    assert jj("users", "role", "cliuser", "viewer").stdout == "user cliuser is now viewer\n"
    assert jj("users", "disable", "cliuser").stdout == "user cliuser disabled\n"
    assert jj("jobs", "ls", env=as_user).returncode == 4
    assert jj("users", "enable", "cliuser").returncode == 0
    changed = jj("users", "passwd", env=dict(as_user,
                                            JOBJOKER_NEW_PASSWORD="cli-user-password-2"))
    assert changed.returncode == 0, changed.stderr  # its own: the current one is the env's
    assert jj("jobs", "ls", env=dict(as_user, JOBJOKER_PASSWORD="cli-user-password-2")
              ).returncode == 0
    no_terminal = jj("users", "add", "other")  # no JOBJOKER_NEW_PASSWORD, no terminal
    assert no_terminal.returncode == 2 and "JOBJOKER_NEW_PASSWORD" in no_terminal.stderr
    assert jj("users", "rm", "cliuser").stdout == "user cliuser deleted\n"
    last = jj("users", "rm", "admin")
    assert last.returncode == 1 and "last active admin" in last.stderr


def test_tokens_create_use_ls_and_revoke(jj, server_process):
    url = server_process.url
    created = jj("tokens", "create", "from the cli", "--role", "viewer", "--json")
    assert created.returncode == 0, created.stderr
    token = created.json["token"]
    with_token = environment(url, password=None, JOBJOKER_TOKEN=token)
    assert jj("jobs", "ls", env=with_token).returncode == 0
    refused = jj("run", "Foobar", env=with_token)
    assert refused.returncode == 4  # a viewer token cannot run jobs
    listed = jj("tokens", "ls")
    assert created.json["id"] in listed.stdout and token not in listed.stdout
    assert jj("tokens", "revoke", created.json["id"]).stdout == \
        "token %s revoked\n" % created.json["id"]
    assert jj("jobs", "ls", env=with_token).returncode == 4


def test_audit_lists_what_happened(jj):
    jj("run", "Foobar")
    trail = jj("audit", "--action", "job.start", "--json")
    assert trail.returncode == 0 and trail.json and all(
        e["action"] == "job.start" and e["actor"] == "admin" for e in trail.json)
    text = jj("audit", "--limit", "5")
    assert text.stdout.startswith("TIME") and "ACTION" in text.stdout.splitlines()[0]
