"""Real job processes: how runs end, stop with grace and escalation, kill, process groups,
output capture, concurrency. Each test runs real workers through the real supervisor."""
import asyncio
import os
import signal

import pytest

from jobjoker import proc
from jobjoker.proc import start_time as process_start_time
from tests.support import poll, process_alive


async def log_messages(api, job_id):
    reply = await api("GET", "/jobs/%s/log?limit=100000" % job_id)
    return [entry["message"] for entry in reply.data]


def children_named(pid, name):
    """Pids of the living children of process ``pid`` whose command is ``name``."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        if proc.parent(int(entry)) != pid:
            continue
        try:
            with open("/proc/%s/comm" % entry) as f:
                if f.read().strip() == name:
                    found.append(int(entry))
        except OSError:
            pass  # gone meanwhile
    return found


async def wait_for_log(api, job_id, text):
    """The job's log once one of its entries contains ``text``."""
    async def logged():
        messages = await log_messages(api, job_id)
        return any(text in m for m in messages) and messages
    return await poll(logged, what="job %s to log %r" % (job_id, text))


# --- how a run ends ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_returning_means_done_with_start_and_end_markers(api, run_job):
    job = await run_job("Foobar", wait=True)
    assert job["status"] == "done"
    assert job["exit_code"] == 0 and job["exit_signal"] is None and job["error"] is None
    assert job["starttime"] <= job["stoptime"]
    messages = await log_messages(api, job["id"])
    assert messages[0].startswith("STARTED job %s" % job["id"])
    assert "pid %d" % job["pid"] in messages[0]
    assert messages[1] == "foobar"
    assert messages[-1].startswith("ENDED done (exit code 0) after ")
    response = await api("GET", "/jobs/%s/response" % job["id"])
    assert [e["message"] for e in response.data] == ["foobar"]


@pytest.mark.gen_test
async def test_exception_means_error_with_traceback(api, run_job, write_worker):
    write_worker("Boom", "from jobjoker import Worker\n\n"
                         "class Boom(Worker):\n"
                         "    def run(self):\n"
                         "        self.log('before')\n"
                         "        raise ValueError('kaboom')\n")
    job = await run_job("Boom", wait=True)
    assert job["status"] == "error"
    assert job["exit_code"] == 1
    assert job["error"] == "ValueError: kaboom (the log has the details)"
    messages = await log_messages(api, job["id"])
    assert messages[1] == "before"
    traceback_entry = messages[2]
    assert traceback_entry.startswith("Traceback (most recent call last):")
    assert "ValueError: kaboom" in traceback_entry  # one entry, newlines kept
    assert "\n" in traceback_entry
    assert messages[-1].startswith("ENDED error")


@pytest.mark.gen_test
async def test_os_exit_means_error_with_the_code(api, run_job, write_worker):
    write_worker("Quits", "import os\nfrom jobjoker import Worker\n\n"
                          "class Quits(Worker):\n"
                          "    def run(self):\n"
                          "        os._exit(3)\n")
    job = await run_job("Quits", wait=True)
    assert job["status"] == "error"
    assert job["exit_code"] == 3
    assert job["error"] == "exit code 3"


@pytest.mark.gen_test
async def test_death_by_signal_means_error_with_the_signal(api, run_job, write_worker):
    write_worker("Dies", "import os, signal\nfrom jobjoker import Worker\n\n"
                         "class Dies(Worker):\n"
                         "    def run(self):\n"
                         "        os.kill(os.getpid(), signal.SIGKILL)\n")
    job = await run_job("Dies", wait=True)
    assert job["status"] == "error"
    assert job["exit_signal"] == signal.SIGKILL
    assert job["error"] == "killed by SIGKILL"
    messages = await log_messages(api, job["id"])
    assert messages[-1].startswith("ENDED error (killed by SIGKILL)")


@pytest.mark.gen_test
async def test_sys_exit_zero_is_done_and_nonzero_is_error(api, run_job, write_worker):
    write_worker("ExitZero", "import sys\nfrom jobjoker import Worker\n\n"
                             "class ExitZero(Worker):\n"
                             "    def run(self):\n"
                             "        sys.exit(0)\n")
    write_worker("ExitMsg", "import sys\nfrom jobjoker import Worker\n\n"
                            "class ExitMsg(Worker):\n"
                            "    def run(self):\n"
                            "        sys.exit('giving up')\n")
    assert (await run_job("ExitZero", wait=True))["status"] == "done"
    job = await run_job("ExitMsg", wait=True)
    assert job["status"] == "error"
    assert "giving up" in await log_messages(api, job["id"])


# --- the worker API -----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_worker_api_params_values_and_output(api, run_job, write_worker):
    write_worker("Api", '''import subprocess, sys
from jobjoker import Worker

class Api(Worker):
    """Exercises the worker API."""
    def run(self):
        self.log(self.params)
        self.log(self.get_parameter("missing", "fallback"))
        self.log(self.job_id)
        self.log(42)
        self.log(None)
        self.log({"a": [1, 2]})
        self.log(object.__new__(Unserialisable))
        self.log(b"bytes")
        self.log("two\\nlines")
        self.log("back\\\\slash\\\\n")
        print("printed", "words")
        print("to stderr", file=sys.stderr)
        sys.stdout.write("partial ")
        sys.stdout.write("line\\n")
        subprocess.run(["echo", "from a child"])
        subprocess.run("echo child stderr >&2", shell=True)
        self.response({"result": self.params["n"] * 2})

class Unserialisable:
    def __str__(self):
        return "custom str"
''')
    job = await run_job("Api", {"n": 21, "name": "x"}, wait=True)
    assert job["status"] == "done", job
    messages = await log_messages(api, job["id"])
    body = messages[1:-1]
    assert body[:10] == ['{"n": 21, "name": "x"}', "fallback", job["id"], "42", "null",
                         '{"a": [1, 2]}', "custom str", "bytes", "two\nlines",
                         "back\\slash\\n"]
    assert body[10:13] == ["printed words", "to stderr", "partial line"]
    assert sorted(body[13:]) == ["child stderr", "from a child"]
    response = await api("GET", "/jobs/%s/response" % job["id"])
    assert [e["message"] for e in response.data] == ['{"result": 42}']



@pytest.mark.gen_test
async def test_crlf_output_is_stored_without_a_stray_carriage_return(api, run_job, write_worker):
    write_worker("Crlf", '''import subprocess, sys
from jobjoker import Worker

class Crlf(Worker):
    """Writes CRLF lines and a progress bar, printed and from a child."""
    def run(self):
        print("printed\\r")
        sys.stdout.write("written\\r\\n")
        subprocess.run(["printf", "child one\\\\r\\\\nchild two\\\\r\\\\n"])
        subprocess.run(["printf", "child 10%%\\\\rchild 100%%\\\\n"])
''')
    job = await run_job("Crlf", wait=True)
    assert job["status"] == "done", job
    messages = await log_messages(api, job["id"])
    assert messages[1:-1] == ["printed", "written", "child one", "child two",
                              "child 10%\rchild 100%"]



@pytest.mark.gen_test
async def test_a_childs_progress_bar_shows_before_its_newline(api, run_job, write_worker):
    write_worker("Progress", '''import subprocess
from jobjoker import Worker

class Progress(Worker):
    """A child rewrites a progress line with \\r, then waits long before its newline."""
    def run(self):
        subprocess.run(["sh", "-c", "printf 'fetch 10%%\\\\rfetch 50%%\\\\r '; sleep 60; echo"])
''')
    job = await run_job("Progress")
    messages = await wait_for_log(api, job["id"], "fetch 50%")
    assert messages[1] == "fetch 10%\rfetch 50%\r"  # the page shows "fetch 50%"
    assert (await api("PUT", "/jobs/%s/status" % job["id"], "kill")).code == 202


@pytest.mark.gen_test
async def test_job_environment_is_clean_and_parameters_stay_out_of_argv(
        api, run_job, write_worker, monkeypatch):
    write_worker("Env", '''import os
from jobjoker import Worker

class Env(Worker):
    def run(self):
        self.log(sorted(os.environ))
        self.log(open("/proc/self/cmdline", "rb").read().decode())
        self.log(os.getcwd())
''')
    job = await run_job("Env", {"secret": "hunter2"}, wait=True)
    messages = await log_messages(api, job["id"])
    environment = messages[1]
    assert "JOBJOKER_JOB_ID" in environment
    assert "JOBJOKER_ADMIN_PASSWORD" not in environment
    assert "JOBJOKER_DATABASE_URL" not in environment
    assert "hunter2" not in messages[2]


# --- stop and kill ------------------------------------------------------------------------------

@pytest.mark.parametrize("config_overrides", [{"stop_grace": 3600}])
@pytest.mark.gen_test
async def test_stop_honoured_by_the_worker_ends_stop(api, run_job, wait_for_status):
    job = await run_job("TestWorker", {"count": 100, "sleep": 3600})
    await wait_for_log(api, job["id"], "log 0")
    # A stop sent before the worker started its `sleep` child would not reach the child: the
    # worker would then wait for it, an hour (a busy machine widens that window).
    await poll(lambda: children_named(job["pid"], "sleep"), what="the worker's sleep child")
    reply = await api("PUT", "/jobs/%s/status" % job["id"], "stop")
    assert reply.code == 202
    assert reply.data[0]["stop_requested"] is not None
    # The worker's `sleep` child and the grace period both last an hour: the job can end within
    # the test's time only because SIGTERM reached the child too (the whole group), and the
    # worker then saw is_active() false and returned, with no SIGKILL.
    job_after = await wait_for_status(job["id"])
    assert job_after["status"] == "stop"
    assert job_after["exit_code"] == 143 and job_after["exit_signal"] is None
    messages = await log_messages(api, job["id"])
    assert "log 1" not in messages
    assert messages[-1].startswith("ENDED stop")
    assert not process_alive(job["pid"])


@pytest.mark.gen_test
async def test_stop_escalates_to_sigkill_after_the_grace_period(api, run_job, write_worker,
                                                                wait_for_status, config):
    write_worker("Stubborn", '''import signal, time
from jobjoker import Worker

class Stubborn(Worker):
    def run(self):
        signal.signal(signal.SIGTERM, lambda *a: self.log("ignoring SIGTERM"))
        self.log("ready")
        while True:
            time.sleep(0.05)
''')
    job = await run_job("Stubborn")
    await wait_for_log(api, job["id"], "ready")
    stopping = await api("PUT", "/jobs/%s/status" % job["id"], "stop")
    assert stopping.code == 202
    await wait_for_log(api, job["id"], "ignoring SIGTERM")
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "stop"
    assert ended["exit_signal"] == signal.SIGKILL  # the job ignores SIGTERM: escalated
    # It lived on through the grace period (2 s in tests), by the server's own clock.
    assert ended["stoptime"] - stopping.data[0]["stop_requested"] >= config.stop_grace - 0.1
    assert not process_alive(job["pid"])


@pytest.mark.gen_test
async def test_kill_takes_children_and_grandchildren(api, run_job, write_worker, tmp_path,
                                                     wait_for_status):
    pids_file = tmp_path / "pids"
    write_worker("Family", '''import os, subprocess, time
from jobjoker import Worker

class Family(Worker):
    def run(self):
        child = subprocess.Popen(["sh", "-c", "sleep 300 & echo $! > %(f)s.t; "
                                  "mv %(f)s.t %(f)s.g; wait"])
        while not os.path.exists("%(f)s.g"):
            time.sleep(0.01)
        with open("%(f)s", "w") as f:
            f.write("%%d %%d" %% (child.pid, int(open("%(f)s.g").read())))
        self.log("family ready")
        while True:
            time.sleep(0.1)
''' % {"f": pids_file})
    job = await run_job("Family")
    await wait_for_log(api, job["id"], "family ready")
    child, grandchild = map(int, pids_file.read_text().split())
    assert process_alive(child) and process_alive(grandchild)
    reply = await api("PUT", "/jobs/%s/status" % job["id"], "kill")
    assert reply.code == 202
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "stop"
    assert ended["exit_signal"] == signal.SIGKILL
    await poll(lambda: not process_alive(child) and not process_alive(grandchild), what="the family to die")


@pytest.mark.gen_test
async def test_leftover_background_children_die_when_the_job_returns(
        api, run_job, write_worker, tmp_path):
    pid_file = tmp_path / "bg"
    write_worker("Leaves", '''import subprocess
from jobjoker import Worker

class Leaves(Worker):
    def run(self):
        p = subprocess.Popen(["sleep", "300"])
        open("%s", "w").write(str(p.pid))
''' % pid_file)
    job = await run_job("Leaves", wait=True)
    assert job["status"] == "done"
    background = int(pid_file.read_text())
    await poll(lambda: not process_alive(background), what="the background child to die")


@pytest.mark.gen_test
async def test_no_zombies_stay_behind(api, run_job, server, wait_for_status):
    jobs = [await run_job("Foobar") for _ in range(5)]
    for job in jobs:
        await wait_for_status(job["id"])
    supervisor = server.processes.supervisor.supervisor_pid
    children = [line for line in os.popen("ps -o pid=,stat= --ppid %d" % supervisor)]
    assert [c for c in children if "Z" in c.split()[1]] == []


# --- concurrency ----------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=120)
async def test_a_hundred_concurrent_starts_give_one_process(api, wait_for_status):
    created = await api("POST", "/jobs", {"worker": "Foobar"})
    job_id = created.data[0]["id"]
    replies = await asyncio.gather(*[api("PUT", "/jobs/%s/status" % job_id, "start")
                                     for _ in range(100)])
    codes = sorted(r.code for r in replies)
    assert codes.count(200) == 1 and codes.count(409) == 99, codes
    await wait_for_status(job_id)
    messages = await log_messages(api, job_id)
    assert sum(m.startswith("STARTED") for m in messages) == 1
    assert messages.count("foobar") == 1


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=120)
async def test_many_jobs_at_once_each_end_done(api, run_job, wait_for_status):
    jobs = await asyncio.gather(*[run_job("Foobar") for _ in range(20)])
    for job in jobs:
        ended = await wait_for_status(job["id"])
        assert ended["status"] == "done"
        assert (await log_messages(api, job["id"]))[1] == "foobar"


# --- identity ---------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_pid_and_its_start_time_are_recorded(api, run_job, server):
    from jobjoker import models
    job = await run_job("TestWorker", {"count": 1, "sleep": 3})
    row = models.Job.get_by_id(job["id"])
    assert row.pid == job["pid"]
    assert row.pid_start_time == process_start_time(job["pid"])
    assert os.getpgid(job["pid"]) == job["pid"]  # it leads its own process group
    await api("PUT", "/jobs/%s/status" % job["id"], "kill")


@pytest.mark.gen_test
async def test_an_async_run_is_awaited(api, run_job, write_worker):
    write_worker("Async", '''import asyncio
from jobjoker import Worker

class Async(Worker):
    async def run(self):
        await asyncio.sleep(0.01)
        self.log("awaited")
''')
    job = await run_job("Async", wait=True)
    assert job["status"] == "done"
    assert "awaited" in await log_messages(api, job["id"])


@pytest.mark.gen_test
async def test_the_end_is_explained_in_words(api, run_job, write_worker):
    write_worker("Exit143", "import sys\nfrom jobjoker import Worker\n\n"
                            "class Exit143(Worker):\n"
                            "    def run(self):\n"
                            "        sys.exit(143)\n")
    job = await run_job("Exit143", wait=True)
    # 143 is also what a honoured stop exits with; the runner's account tells them apart.
    assert job["status"] == "error" and job["exit_code"] == 143
    assert job["error"] == "sys.exit(143) (the log has the details)"
    write_worker("Raises", "from jobjoker import Worker\n\n"
                           "class Raises(Worker):\n"
                           "    def run(self):\n"
                           "        raise KeyError('missing')\n")
    job = await run_job("Raises", wait=True)
    assert job["error"] == "KeyError: 'missing' (the log has the details)"


@pytest.mark.gen_test
async def test_an_outside_sigterm_the_worker_honours_ends_stop_with_the_reason(
        api, run_job, wait_for_status):
    job = await run_job("TestWorker", {"count": 100, "sleep": 5})
    await wait_for_log(api, job["id"], "log 0")
    os.killpg(job["pid"], signal.SIGTERM)  # an admin's kill, not a request through JobJoker
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "stop"
    assert ended["error"] == "stopped by a SIGTERM from outside JobJoker"


@pytest.mark.gen_test(timeout=120)
async def test_a_job_that_fails_at_once_still_started(api, write_worker, wait_for_status):
    """A start answers 200 even when the job has already ended by the time it answers."""
    write_worker("FailsFast", "from jobjoker import Worker\n\nclass FailsFast(Worker):\n"
                              "    def run(self):\n        raise ValueError('at once')\n")
    for _ in range(30):
        job_id = (await api("POST", "/jobs", {"worker": "FailsFast"})).data[0]["id"]
        started = await api("PUT", "/jobs/%s/status" % job_id, "start")
        assert started.code == 200, started
        assert (await wait_for_status(job_id))["status"] == "error"
