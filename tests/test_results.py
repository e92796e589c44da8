"""A job's structured result (``self.result()``) through a real server and real job processes:
the last call wins; ``GET /jobs/ID`` carries it and ``GET /jobs/ID/result`` gives it alone (404
when none); a value that is not JSON-serializable raises ``TypeError`` in the worker; one over
``--max-result-bytes`` is refused with a log entry (by the runner, and by the server for a record
the job forged); secrets are masked inside it; and a result set while no server ran is stored by
the next one, from the spool offsets."""
import os

import pytest

from jobjoker import models
from jobjoker.app import JobJokerServer
from tests.support import PASSWORD, kill_leftovers, poll

CAP = 4000  # --max-result-bytes in this module


@pytest.fixture
def config_overrides():
    return {"max_result_bytes": CAP}


RESULTS = '''from jobjoker import Worker

class Results(Worker):
    parameters = {"password": {"type": "string", "secret": True, "default": "s3cret-value-1"},
                  "size": {"type": "integer", "default": 10}}

    def run(self):
        self.result({"first": True})
        try:
            self.result({"when": object()})
        except TypeError as e:
            self.log("caught: %s" % e)
        self.result("x" * self.params["size"])  # refused when over the cap: no exception
        secret = self.params["password"]
        self.result({"n": 3, "items": [1.5, None, "with " + secret], secret: "key"})
        self.progress(0.5, message="with " + secret)
        self.log("done")
'''

UNCAUGHT = '''from jobjoker import Worker

class Uncaught(Worker):
    def run(self):
        self.result({1, 2})
'''

FORGED = '''import os
from jobjoker import Worker, spool

class ForgedResult(Worker):
    def run(self):
        self.result(["kept"])
        os.system("true")  # a child starts: the runner writes what it buffered first
        os.write(1, spool.frame_control(b'{"type":"result","value":"%s"}' % (b"y" * %d)))
        os.write(1, spool.frame_control(b'{"type":"result","value":NaN}'))
'''

GATED = '''import os, time
from jobjoker import Worker

class Gated(Worker):
    def run(self):
        for name, value in [("one", {"step": 1}), ("two", {"step": 2})]:
            self.result(value)
            self.progress(value["step"], 3, "step %d" % value["step"])
            self.log("set %s" % name)
            while not os.path.exists(self.params[name]):
                time.sleep(0.01)
        self.result({"step": 3})
        self.progress(1.0, message="all done")
'''


async def log_of(api, job_id):
    return [e["message"] for e in (await api("GET", "/jobs/%s/log?limit=1000" % job_id)).data]


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=90)
async def test_the_last_result_wins_masked_and_readable_two_ways(api, run_job, write_worker):
    write_worker("Results", RESULTS)
    job = await run_job("Results", wait=True)
    assert job["status"] == "done"
    expected = {"n": 3, "items": [1.5, None, "with ********"], "********": "key"}
    reply = await api("GET", "/jobs/%s" % job["id"])
    assert reply.data[0]["result"] == expected
    assert reply.data[0]["result_size"] > 0
    alone = await api("GET", "/jobs/%s/result" % job["id"])
    assert alone.code == 200 and alone.data == [expected]
    listed = (await api("GET", "/jobs")).data
    assert all("result" not in item for item in listed)
    log = await log_of(api, job["id"])
    caught = [line for line in log if line.startswith("caught: ")]
    assert caught and "JSON-serializable" in caught[0] and "object" in caught[0]
    assert not any(line.startswith("result refused") for line in log)
    assert reply.data[0]["progress_message"] == "with ********"
    assert "s3cret-value-1" not in str(reply.data)


@pytest.mark.gen_test(timeout=90)
async def test_a_result_over_the_cap_is_refused_with_a_log_entry(api, run_job, write_worker):
    write_worker("Results", RESULTS)
    job = await run_job("Results", {"size": CAP * 2}, wait=True)
    assert job["status"] == "done"
    log = await log_of(api, job["id"])
    assert "result refused: %d bytes, over the cap of %d (--max-result-bytes)" % (
        CAP * 2 + 2, CAP) in log
    assert (await api("GET", "/jobs/%s/result" % job["id"])).data[0]["n"] == 3


@pytest.mark.gen_test(timeout=90)
async def test_a_result_that_is_not_json_fails_the_job_when_uncaught(api, run_job,
                                                                     write_worker):
    write_worker("Uncaught", UNCAUGHT)
    job = await run_job("Uncaught", wait=True)
    assert job["status"] == "error"
    assert job["error"].startswith("TypeError: a job's result must be JSON-serializable")
    missing = await api("GET", "/jobs/%s/result" % job["id"])
    assert missing.code == 404 and missing.json["message"] == "job %s has no result" % job["id"]
    assert (await api("GET", "/jobs/%s" % job["id"])).data[0]["result"] is None


@pytest.mark.gen_test(timeout=90)
async def test_the_server_refuses_forged_results_over_the_cap(api, run_job, write_worker):
    write_worker("ForgedResult", FORGED.replace("%d", str(CAP + 10)))
    job = await run_job("ForgedResult", wait=True)
    assert job["status"] == "done"
    assert (await api("GET", "/jobs/%s/result" % job["id"])).data == [["kept"]]
    warnings = [line for line in await log_of(api, job["id"])
                if line.startswith("[JobJoker] WARNING: ")]
    assert len(warnings) == 2, warnings
    assert "result refused: %d bytes, over the cap of %d" % (CAP + 12, CAP) in warnings[0]
    assert "result refused" in warnings[1]


@pytest.mark.gen_test(timeout=60)
async def test_no_result_for_an_unknown_job(api):
    reply = await api("GET", "/jobs/nosuchjob0000000000/result")
    assert reply.code == 404


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=120)
async def test_a_result_set_while_no_server_runs_is_stored_by_the_next(config, tmp_path,
                                                                       write_worker):
    write_worker("Gated", GATED)
    gates = {name: str(tmp_path / name) for name in ("one", "two")}
    servers = []
    try:
        first = JobJokerServer(config, admin_password=PASSWORD)
        servers.append(first)
        await first.start(listen=False)
        jobs = first.app.settings["jobs"]
        job = await jobs.create_job({"worker": "Gated", "parameters": gates})
        await jobs.command(job["id"], "start")

        async def stored(step):
            got = await jobs.get_job_with_result(job["id"])
            return got if got["result"] == {"step": step} and \
                got["progress_message"] == "step %d" % step else None
        got = await poll(lambda: stored(1), what="the first result")
        await first.stop()  # the job keeps running
        open(gates["one"], "w").close()
        spool = os.path.join(config.jobs_dir, job["id"], "log.spool")
        await poll(lambda: b"set two" in open(spool, "rb").read(),
                   what="the second result while no server runs")

        second = JobJokerServer(config, admin_password=PASSWORD)
        servers.append(second)
        await second.start(listen=False)
        jobs = second.app.settings["jobs"]
        got = await poll(lambda: stored(2), what="the second result, stored after the restart")
        assert got["progress"] == pytest.approx(2 / 3) and got["progress_message"] == "step 2"
        open(gates["two"], "w").close()

        async def ended():
            got = await jobs.get_job_with_result(job["id"])
            return got if got["status"] == "done" else None
        got = await poll(ended, what="the end")
        assert got["result"] == {"step": 3}
        assert got["progress"] == 1.0 and got["progress_message"] == "all done"
        entries, _, _ = await jobs.read_entries(job["id"], "log", 0, 1000)
        log = [e["message"] for e in entries]
        assert log.count("set one") == 1 and log.count("set two") == 1
    finally:
        for server in servers:
            kill_leftovers(server.processes.supervisor.socket_path)
        if len(servers) == 2:
            await servers[1].stop()
        models.database.initialize(None)


# --- the command line: run --wait ------------------------------------------------------------

CLI_WORKERS = {
    "Answer": '''from jobjoker import Worker

class Answer(Worker):
    def run(self):
        self.log("this log is not printed by --wait")
        self.result({"x": self.params.get("x"), "list": [1, 2]})
''',
    "AnswerThenFail": '''from jobjoker import Worker

class AnswerThenFail(Worker):
    def run(self):
        self.result({"partial": True})
        raise RuntimeError("went wrong")
''',
    "Silent": '''from jobjoker import Worker

class Silent(Worker):
    def run(self):
        self.log("no result")
''',
}


@pytest.fixture
def cli_server(servers, tmp_path):
    from tests.support import workers_folder
    workers = workers_folder(tmp_path / "cli-workers", CLI_WORKERS)
    return servers("--stop-grace", "2", workers_dir=workers).wait_ready()


def jobjoker_command(server, *args):
    import subprocess
    import sys
    from tests.support import ROOT
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    env.update(JOBJOKER_URL=server.url, JOBJOKER_USER="admin", JOBJOKER_PASSWORD=PASSWORD)
    return subprocess.run([sys.executable, "-m", "jobjoker.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)


def test_run_wait_prints_only_the_result_and_exits_with_the_outcome(cli_server):
    import json
    done = jobjoker_command(cli_server, "run", "Answer", "-p", "x=1", "--wait")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"x": 1, "list": [1, 2]}
    assert done.stdout.count("\n") == 1 and "log" not in done.stdout

    failed = jobjoker_command(cli_server, "run", "AnswerThenFail", "--wait")
    assert failed.returncode == 1
    assert json.loads(failed.stdout) == {"partial": True}
    assert "went wrong" in failed.stderr

    silent = jobjoker_command(cli_server, "run", "Silent", "--wait")
    assert silent.returncode == 0 and silent.stdout == ""

    both = jobjoker_command(cli_server, "run", "Silent", "--wait", "--follow")
    assert both.returncode == 2 and "choose one" in both.stderr

    plain = jobjoker_command(cli_server, "run", "Answer")
    assert plain.returncode == 0 and len(plain.stdout.strip()) == 20  # the job's id

    from jobjoker.client import Client, NotFoundError
    client = Client(cli_server.url, "admin", PASSWORD)
    job = client.run("Answer", {"x": "y"})
    assert client.result(job["id"]) == {"x": "y", "list": [1, 2]} == job["result"]
    silent = client.run("Silent")
    with pytest.raises(NotFoundError, match="has no result"):
        client.result(silent["id"])


LEAKY = '''from jobjoker import Worker

class Leaky(Worker):
    parameters = {"key": {"type": "string", "secret": True}}

    def run(self):
        raise ValueError("the server refused key %s" % self.params["key"])
'''


@pytest.mark.gen_test(timeout=90)
async def test_the_error_is_masked_like_the_log_and_the_result(api, run_job, write_worker):
    write_worker("Leaky", LEAKY)
    job = await run_job("Leaky", {"key": "s3cret-value-9"}, wait=True)
    assert job["status"] == "error"
    assert job["error"].startswith("ValueError: the server refused key ********")
    shown = await api("GET", "/jobs/%s" % job["id"])
    assert "s3cret-value-9" not in str(shown.data)
    assert not any("s3cret-value-9" in line for line in await log_of(api, job["id"]))
