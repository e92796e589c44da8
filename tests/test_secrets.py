"""Secret parameter values at rest (jobjoker/secretbox.py, jobjoker/secretkeeper.py): sealed
with a key the database never holds, so that no dump or backup has them in clear; opened only
to start a job and to mask what is appended to it; erased once its appends are closed."""
import hashlib
import os
import sqlite3
import stat
import time

import pytest
from cryptography.fernet import Fernet

from jobjoker import models, secretbox, secretkeeper
from jobjoker.app import JobJokerServer
from jobjoker.config import load_config
from jobjoker.errors import StartupError
from tests.support import PASSWORD, kill_leftovers, poll

SECRET = "correct-horse-battery-staple-42"
WORKER = '''import hashlib
import os
import subprocess
import time

from jobjoker import Worker


class Keeps(Worker):
    """Logs a digest of its secret (the secret itself would be masked), waits for its gate
    file, then has a child process print the secret (raw output, masked by the server)."""

    parameters = {
        "password": {"type": "string", "secret": True, "required": True},
        "gate": {"type": "string", "default": ""},
    }

    def run(self):
        self.log("digest " + hashlib.sha256(self.params["password"].encode()).hexdigest())
        while self.params["gate"] and not os.path.exists(self.params["gate"]):
            time.sleep(0.02)
        subprocess.run(["echo", "child says " + self.params["password"]], check=True)
'''
DIGEST = "digest " + hashlib.sha256(SECRET.encode()).hexdigest()


def stored_secrets(job_id):
    """The job row's secret_parameters column as a raw SQL read gives it."""
    return models.database.execute_sql("SELECT secret_parameters FROM job WHERE id = %s"
                                       % models.database.param, (job_id,)).fetchone()[0]


def sqlite_dump(server):
    """What a backup of the SQLite database holds: the files' bytes (with the WAL) and the
    SQL text of a dump (as ``sqlite3 FILE .dump`` writes it)."""
    path = server.database.database
    raw = b"".join(open(name, "rb").read() for name in (path, path + "-wal")
                   if os.path.exists(name))
    connection = sqlite3.connect(path)
    try:
        return raw, "\n".join(connection.iterdump())
    finally:
        connection.close()


async def log_of(api, job_id):
    return (await api("GET", "/jobs/%s/log?format=text" % job_id)).text


# --- at rest, during the run and after ------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_no_dump_holds_a_secret_in_clear_and_the_job_still_gets_it(
        api, server, write_worker, wait_for_status, tmp_path):
    write_worker("Keeps", WORKER)
    gate = tmp_path / "gate"
    created = await api("POST", "/jobs", {"worker": "Keeps", "start": True, "parameters": {
        "password": SECRET, "gate": os.fspath(gate)}})
    assert created.code == 201, created
    job_id = created.data[0]["id"]

    async def logged():
        return DIGEST in await log_of(api, job_id)
    await poll(logged, what="the job's digest of its secret")  # it got the right value
    for moment in ("running", "ended"):
        stored = stored_secrets(job_id)
        assert stored.startswith(secretbox.SEALED_PREFIX), moment
        assert SECRET not in stored, moment
        raw, dump = sqlite_dump(server)
        assert SECRET.encode() not in raw, moment
        assert SECRET not in dump, moment
        if moment == "running":
            gate.touch()
            assert (await wait_for_status(job_id))["status"] == "done"
    # The key that sealed it is in the data dir, for the server's user alone.
    key_file = server.config.data_dir / secretbox.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().strip() not in sqlite_dump(server)[0]
    # Within the window an append is still taken, masked with the secret.
    appended = await api("POST", "/jobs/%s/log" % job_id, "echo %s" % SECRET)
    assert appended.code == 201 and SECRET not in appended.text


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"secret_retention": 0.5}])
async def test_after_the_window_the_secret_is_erased_and_appends_are_refused(
        api, server, write_worker, wait_for_status):
    write_worker("Keeps", WORKER)
    created = await api("POST", "/jobs", {"worker": "Keeps", "start": True,
                                          "parameters": {"password": SECRET}})
    job_id = created.data[0]["id"]
    assert (await wait_for_status(job_id))["status"] == "done"
    assert DIGEST in await log_of(api, job_id)

    async def erased():
        return stored_secrets(job_id) is None
    await poll(erased, what="the job's secret values to be erased")
    refused = await api("POST", "/jobs/%s/log" % job_id, "too late %s" % SECRET)
    assert refused.code == 409, refused
    assert "--secret-retention" in refused.json["message"]
    assert "0.5 s after a job's end" in refused.json["message"]
    assert SECRET not in await log_of(api, job_id)


# --- the key -----------------------------------------------------------------------------------

def test_the_key_file_is_made_once_for_its_owner_alone(tmp_path):
    box = secretbox.load_box(tmp_path)
    path = tmp_path / secretbox.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = box.seal({"password": SECRET})
    assert SECRET not in sealed
    assert secretbox.load_box(tmp_path).open(sealed) == {"password": SECRET}  # the same key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_may_read_is_refused_saying_what_to_do(tmp_path, mode):
    secretbox.load_box(tmp_path)
    path = tmp_path / secretbox.KEY_FILE
    path.chmod(mode)
    with pytest.raises(StartupError, match="has mode %04o.*chmod 600 %s" % (mode, path)):
        secretbox.load_box(tmp_path)


@pytest.mark.gen_test(timeout=60)
async def test_a_server_with_a_readable_key_file_does_not_start(config):
    os.makedirs(config.data_dir, exist_ok=True)
    path = config.data_dir / secretbox.KEY_FILE
    path.write_bytes(Fernet.generate_key())
    path.chmod(0o644)
    with pytest.raises(StartupError, match="chmod 600"):
        await JobJokerServer(config, admin_password=PASSWORD).start(listen=False)
    models.database.initialize(None)


def test_a_bad_key_is_refused_saying_how_to_make_one(tmp_path):
    with pytest.raises(StartupError, match="JOBJOKER_SECRET_KEY .*not a Fernet key.*generate"):
        secretbox.load_box(tmp_path, ("not-a-key",))
    (tmp_path / secretbox.KEY_FILE).write_text("short\n")
    (tmp_path / secretbox.KEY_FILE).chmod(0o600)
    with pytest.raises(StartupError, match="key file .*not a Fernet key"):
        secretbox.load_box(tmp_path)


def test_old_keys_still_open_what_they_sealed(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = secretbox.load_box(tmp_path, (old,)).seal({"password": SECRET})
    box = secretbox.load_box(tmp_path, (new, old))
    assert box.open(sealed) == {"password": SECRET}
    resealed = box.reseal(sealed)
    assert secretbox.load_box(tmp_path, (new,)).open(resealed) == {"password": SECRET}
    assert box.reseal(resealed) is None  # already sealed with the first key
    with pytest.raises(secretbox.SecretsUnreadable, match="another key"):
        secretbox.load_box(tmp_path, (new,)).open(sealed, "j1")


# --- servers started on purpose ------------------------------------------------------------

@pytest.fixture
def started(config):
    """``await started(config)``: a server started in the test; stopped and cleaned after."""
    servers = []

    async def start(configuration=config):
        server = JobJokerServer(configuration, admin_password=PASSWORD)
        await server.start(listen=False)
        servers.append(server)
        return server
    yield start
    for server in servers:
        kill_leftovers(server.processes.supervisor.socket_path)
    models.database.initialize(None)


async def run_to_end(server, job_id, start=True):
    jobs = server.app.settings["jobs"]
    if start:
        await jobs.command(job_id, "start")

    async def ended():
        job = await jobs.get_job(job_id)
        return job if job["status"] in ("done", "error", "stop") else None
    return await poll(ended, what="job %s to end" % job_id)


async def log_messages(server, job_id):
    entries, _, _ = await server.app.settings["jobs"].read_entries(job_id, "log", 0, 1000)
    return [entry["message"] for entry in entries]


@pytest.mark.gen_test(timeout=60)
async def test_a_key_from_the_environment_seals_and_no_key_file_is_made(
        started, config, tmp_path, write_worker):
    key = Fernet.generate_key().decode()
    flags = {name: getattr(config, name) for name in (
        "data_dir", "workers_dir", "database", "port", "node")}
    server = await started(load_config(flags, environ={"JOBJOKER_SECRET_KEY": key}))
    assert server.config.secret_keys == (key,) and key not in repr(server.config)
    write_worker("Keeps", WORKER)
    job = await server.app.settings["jobs"].create_job(
        {"worker": "Keeps", "parameters": {"password": SECRET}})
    stored = stored_secrets(job["id"])
    assert Fernet(key.encode()).decrypt(stored[len(secretbox.SEALED_PREFIX):].encode()) == \
        b'{"password": "%s"}' % SECRET.encode()
    assert (await run_to_end(server, job["id"]))["status"] == "done"
    assert DIGEST in await log_messages(server, job["id"])
    assert not (config.data_dir / secretbox.KEY_FILE).exists()
    await server.stop(kill_jobs=True)


@pytest.mark.gen_test(timeout=60)
async def test_a_job_adopted_by_a_restarted_server_is_still_masked(started, write_worker,
                                                                   tmp_path):
    write_worker("Keeps", WORKER)
    first = await started()
    gate = tmp_path / "gate"
    job, _ = await first.app.settings["jobs"].submit_job({"worker": "Keeps", "start": True,
                                                          "parameters": {"password": SECRET,
                                                                         "gate": os.fspath(gate)}})

    async def logged():
        return DIGEST in await log_messages(first, job["id"])
    await poll(logged, what="the job's digest")
    await first.stop()  # the job keeps running
    second = await started()  # the same key file opens its secret values
    gate.touch()
    assert (await run_to_end(second, job["id"], start=False))["status"] == "done"
    messages = await log_messages(second, job["id"])
    assert "child says ********" in messages and not any(SECRET in m for m in messages)
    await second.stop(kill_jobs=True)


def insert_job(job_id, status, secret_parameters, stoptime=None):
    models.Job.create(id=job_id, worker="Keeps", status=status, created=1.0, stoptime=stoptime,
                      starttime=stoptime and stoptime - 1, node="test-node",
                      parameters='{"password": "********", "gate": ""}',
                      secret_parameters=secret_parameters)


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_at_start_clear_values_are_sealed_and_those_of_long_ended_jobs_erased(
        started, config, write_worker):
    write_worker("Keeps", WORKER)
    models.open_database(config.database_url)  # an older version's database: values in clear
    clear = '{"password": "%s"}' % SECRET
    insert_job("0legacyidle000000000", "idle", clear)
    # Ended an hour ago, while no server ran: nothing can need its values any more.
    insert_job("0legacydone000000000", "done", clear, stoptime=time.time() - 3600)
    models.database.close()
    server = await started()
    stored = stored_secrets("0legacyidle000000000")
    assert stored.startswith(secretbox.SEALED_PREFIX) and SECRET not in stored

    async def erased():
        return stored_secrets("0legacydone000000000") is None
    await poll(erased, what="the long-ended job's secret values to be erased")
    # The sealed value still reaches the job.
    assert (await run_to_end(server, "0legacyidle000000000"))["status"] == "done"
    assert DIGEST in await log_messages(server, "0legacyidle000000000")
    await server.stop(kill_jobs=True)


@pytest.mark.gen_test(timeout=60)
async def test_a_job_sealed_with_a_lost_key_fails_clearly(api, server, write_worker):
    write_worker("Keeps", WORKER)
    lost = secretbox.SecretBox([Fernet(Fernet.generate_key())], "a lost key")
    insert_job("0lostkey000000000000", "idle", lost.seal({"password": SECRET}))
    reply = await api("PUT", "/jobs/0lostkey000000000000/status", "start")
    assert reply.code == 503, reply
    message = reply.json["message"]
    assert "cannot be read with the key in the key file %s" % (
        server.config.data_dir / secretbox.KEY_FILE) in message
    job = (await api("GET", "/jobs/0lostkey000000000000")).data[0]
    assert job["status"] == "error" and "sealed with another key" in job["error"]
    refused = await api("POST", "/jobs/0lostkey000000000000/log", "masked how?")
    assert refused.code == 409 and "cannot be read" in refused.json["message"]
    # The server goes on: another job still starts.
    other = await api("POST", "/jobs", {"worker": "Keeps", "start": True,
                                        "parameters": {"password": SECRET}})
    assert other.code == 201, other


@pytest.mark.gen_test(timeout=60)
async def test_appends_to_a_job_whose_secrets_are_erased_are_refused_whatever_the_window(api):
    # Erased by a server with a shorter --secret-retention: this one's longer window must not
    # take entries it can no longer mask.
    insert_job("0erased0000000000000", "done", None, stoptime=time.time())
    refused = await api("POST", "/jobs/0erased0000000000000/log", "echo %s" % SECRET)
    assert refused.code == 409 and "--secret-retention" in refused.json["message"]
    insert_job("0nosecrets0000000000", "done", None, stoptime=time.time())
    models.Job.update(parameters='{"gate": ""}').where(
        models.Job.id == "0nosecrets0000000000").execute()
    assert (await api("POST", "/jobs/0nosecrets0000000000/log", "a note")).code == 201


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"secret_retention": 1}])
async def test_the_periodic_scan_erases_what_no_event_told_of(server, monkeypatch):
    # Ended an hour ago on another server, which stopped before its sweep: this server saw no
    # event of that end; its periodic scan finds the values.
    monkeypatch.setattr(secretkeeper, "RESCAN_SECONDS", 0.0)
    insert_job("0othernode0000000000", "done", server.secret_box.seal({"password": SECRET}),
               stoptime=time.time() - 3600)

    async def erased():
        return stored_secrets("0othernode0000000000") is None
    await poll(erased, what="the periodic scan to erase the values")


@pytest.mark.gen_test(timeout=60)
async def test_secret_values_too_big_to_keep_sealed_are_refused(api, write_worker):
    # Sealed, 40 KiB of secret would not fit a TEXT column on MySQL: refused, nothing stored.
    write_worker("Keeps", WORKER)
    count = models.Job.select().count()
    refused = await api("POST", "/jobs", {"worker": "Keeps",
                                          "parameters": {"password": "x" * 40000}})
    assert refused.code == 413 and "secret parameters take 40016 bytes" in refused.json["message"]
    batch = await api("POST", "/jobs/batch", {"jobs": [
        {"worker": "Keeps", "parameters": {"password": "x" * 40000}}]})
    assert batch.code == 400 and "jobs[0].parameters: the secret" in batch.json["message"]
    assert models.Job.select().count() == count
