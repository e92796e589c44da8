"""The REST contract of ``/jobs``, end to end against a real server, supervisor and database.

What is pinned down here, section by section:

- the envelope ``{"success", "message", "total", "data"}`` (``data`` always a list, ``total`` its
  length) and ``application/json`` on every JSON reply, errors included;
- creating jobs (201, an idle job with an opaque URL-safe id) and every refusal (400, 404, 413,
  422), each proven to have created nothing;
- listing (newest first, paged, filtered) and its refusals;
- reading a job, its status and pid, and 404 for an unknown job on every route;
- appending to and reading a job's log and response (order, paging, plain text, X-Total-Count);
- the commands ``start``, ``stop`` and ``kill`` against the state machine (200, 202, 400, 409) and
  the pid that only the server may set (405);
- deleting (with the log and response; 409 while active);
- a hundred concurrent starts of one job: one process, one STARTED line;
- the entries that open and close a job's log;
- authentication on every route, and 404 for unknown paths.

Every test runs on SQLite; those of storage, ordering, Unicode and races on MariaDB too (marked
``both_databases``, see ``conftest.py``). Tests wait by polling with a deadline, never by
sleeping a fixed time.
"""
import asyncio
import base64
import os
import re
import time
import urllib.parse

import pytest
import tornado.httpclient

from jobjoker import jobstore, models, spool
from jobjoker.procman import RunningJob
from tests.support import OPEN_WORKER, SLEEPER, STUBBORN, fetch, poll

ENVELOPE_KEYS = {"success", "message", "total", "data"}
JOB_KEYS = {"id", "worker", "status", "parameters", "pid", "created", "starttime", "stoptime",
            "exit_code", "exit_signal", "error"}
COMMANDS = ("start", "stop", "kill")
STARTED = re.compile(r"^STARTED job (?P<id>\S+): worker (?P<worker>\w+), pid (?P<pid>\d+)$")
ENDED = re.compile(r"^ENDED (?P<status>\w+) \((?P<how>[^)]*)\) after (?P<seconds>[0-9.]+) s$")


FAILING = '''
from jobjoker import Worker


class Failing(Worker):
    """Raises."""

    def run(self):
        raise RuntimeError("boom")
'''

# Writes to its stdout file descriptor (as a child command would) before anything else.
RAW_OUTPUT = '''
import os

from jobjoker import Worker


class RawOutput(Worker):
    """Writes a raw line to fd 1 at once."""

    def run(self):
        os.write(1, b"raw output\\n")
'''


# --- helpers --------------------------------------------------------------------------------------

def assert_envelope(reply, success=True):
    """The reply is the JSON envelope, ``data`` a list and ``total`` its length."""
    assert reply.json is not None, reply
    assert reply.headers["Content-Type"].startswith("application/json"), reply.headers
    assert set(reply.json) == ENVELOPE_KEYS, reply
    assert reply.json["success"] is success, reply
    assert isinstance(reply.json["message"], str), reply
    assert isinstance(reply.data, list), reply
    assert reply.json["total"] == len(reply.data), reply
    if not success:
        assert reply.json["message"], "an error must say what to fix: %r" % reply


def assert_refused(reply, code, *words):
    """An error envelope with ``code`` whose message mentions each of ``words``."""
    assert reply.code == code, reply
    assert_envelope(reply, success=False)
    message = reply.json["message"].lower()
    for word in words:
        assert word.lower() in message, "%r does not mention %r" % (reply.json["message"], word)


async def create_job(api, worker="Foobar", parameters=None):
    reply = await api("POST", "/jobs", {"worker": worker, "parameters": parameters})
    assert reply.code == 201, reply
    return reply.data[0]


async def get_job(api, job_id):
    """The job as ``GET /jobs/ID`` gives it, without its ``result`` (which only that reply
    carries: compared with the copies other replies give, it would always differ)."""
    reply = await api("GET", "/jobs/%s" % job_id)
    assert reply.code == 200, reply
    job = reply.data[0]
    assert "result" in job, job
    del job["result"]
    return job


def without_result(job):
    """A copy of a job as ``get_job`` gives it (``wait_for_status`` reads ``GET /jobs/ID``)."""
    return {key: value for key, value in job.items() if key != "result"}


async def job_ids(api, query=""):
    reply = await api("GET", "/jobs" + query)
    assert reply.code == 200, reply
    return [job["id"] for job in reply.data]


async def count_jobs(api):
    return len(await job_ids(api, "?limit=1000"))


async def messages(api, job_id, stream="log"):
    reply = await api("GET", "/jobs/%s/%s" % (job_id, stream))
    assert reply.code == 200, reply
    return [entry["message"] for entry in reply.data]


async def wait_for_entry(api, job_id, stream, message):
    """Wait until ``message`` is among the job's ``stream`` entries (the worker reached it)."""
    async def probe():
        return message in await messages(api, job_id, stream)
    await poll(probe, what="%r in the %s of job %s" % (message, stream, job_id))


async def start_sleeper(api, run_job, write_worker):
    """A started job that runs until stopped, already inside its worker's ``run()``."""
    write_worker("Sleeper", SLEEPER)
    job = await run_job("Sleeper")
    await wait_for_entry(api, job["id"], "response", "running")
    return job


def process_exists(pid):
    return os.path.exists("/proc/%d" % pid)


# --- the envelope --------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_replies_are_the_json_envelope(api):
    await create_job(api)
    assert_envelope(await api("GET", "/jobs"))
    assert_envelope(await api("GET", "/jobs?status=done"))  # an empty page is still a list
    assert_envelope(await api("GET", "/jobs/nosuchjob"), success=False)
    assert_envelope(await api("POST", "/jobs", "{"), success=False)


# --- creating -------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_create_returns_an_idle_job(api):
    before = time.time()
    reply = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": {"count": 2}})
    assert reply.code == 201, reply
    assert_envelope(reply)
    job = reply.data[0]
    assert JOB_KEYS <= set(job), job
    assert urllib.parse.quote(job["id"], safe="") == job["id"], "the id must be URL-safe"
    assert job["worker"] == "TestWorker"
    assert job["parameters"] == {"count": 2, "sleep": 1}  # the default filled in
    assert job["status"] == "idle"
    assert job["pid"] is None
    assert before - 1 <= job["created"] <= time.time() + 1, "created is epoch seconds"
    assert job["starttime"] is None and job["stoptime"] is None
    assert job["exit_code"] is None and job["exit_signal"] is None and job["error"] is None
    assert reply.headers["Location"] == "/jobs/%s" % job["id"]
    assert await get_job(api, job["id"]) == job


@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_create_keeps_nested_and_unicode_parameters(api, write_worker):
    write_worker("Open", OPEN_WORKER)  # it declares none: they are kept as they are
    parameters = {"text": "Grüße, 漢字, 🎉", "list": [1, 2.5, None, True], "nested": {"a": {}}}
    job = await create_job(api, "Open", parameters=parameters)
    assert job["parameters"] == parameters
    assert (await get_job(api, job["id"]))["parameters"] == parameters


@pytest.mark.parametrize("body", [
    {"worker": "Foobar"},
    {"worker": "Foobar", "parameters": None},
], ids=["absent", "null"])
@pytest.mark.gen_test
async def test_absent_or_null_parameters_mean_none(api, body):
    reply = await api("POST", "/jobs", body)
    assert reply.code == 201, reply
    assert reply.data[0]["parameters"] == {}


@pytest.mark.gen_test
async def test_ids_are_unique(api):
    ids = [(await create_job(api))["id"] for _ in range(20)]
    assert len(set(ids)) == 20


@pytest.mark.parametrize("body, code, words", [
    ({"worker": "NoSuchWorker"}, 404, ["NoSuchWorker"]),
    ({"worker": "Foobar", "parameters": [1, 2]}, 422, ["parameters", "object"]),
    ({"worker": "Foobar", "parameters": "count=1"}, 422, ["parameters", "object"]),
    ({"worker": "Foobar", "parameters": 5}, 422, ["parameters", "object"]),
    ({"worker": "Foobar", "parameters": True}, 422, ["parameters", "object"]),
    ('{"worker": "Foobar", ', 400, ["JSON"]),
    ("worker=Foobar", 400, ["JSON"]),
    ("", 400, ["empty"]),
    ({"parameters": {}}, 400, ["worker"]),
    ({"worker": None}, 400, ["worker"]),
    ({"worker": 7}, 400, ["worker"]),
    ({"worker": {}}, 400, ["worker", "string"]),  # unhashable: found by the fuzz
    ({"worker": "../Foobar"}, 400, ["worker name"]),
    (["Foobar"], 400, ["object"]),
    # NaN is not JSON (RFC 8259); accepting it would make every later reply about the job
    # invalid JSON for strict clients.
    ('{"worker": "Foobar", "parameters": {"x": NaN}}', 400, ["NaN"]),
], ids=["unknown-worker", "parameters-list", "parameters-string", "parameters-number",
        "parameters-bool", "truncated-json", "form-encoded", "empty-body", "missing-worker",
        "null-worker", "worker-not-a-string", "worker-an-object", "worker-path", "body-a-list", "nan-parameter"])
@pytest.mark.gen_test
async def test_create_refuses_bad_input_and_creates_nothing(api, body, code, words):
    await create_job(api)
    before = await count_jobs(api)
    assert_refused(await api("POST", "/jobs", body), code, *words)
    assert await count_jobs(api) == before


@pytest.mark.gen_test
async def test_create_refuses_a_deeply_nested_body_as_bad_input(api):
    # Valid JSON nested deeper than the parser's recursion limit: the server cannot read it,
    # which is the client's to fix (400), not an internal error (500).
    depth = 100000
    body = '{"worker": "Foobar", "parameters": {"x": %s%s}}' % ("[" * depth, "]" * depth)
    assert_refused(await api("POST", "/jobs", body), 400)
    assert await count_jobs(api) == 0


@pytest.mark.gen_test
async def test_parameters_over_the_limit_are_refused_with_413(api, config, write_worker):
    write_worker("Open", OPEN_WORKER)
    limit = config.max_parameters_size
    overhead = len('{"x":""}')  # the parameters are measured as compact JSON
    at_limit = {"x": "a" * (limit - overhead)}
    over_limit = {"x": "a" * (limit - overhead + 1)}
    assert (await create_job(api, "Open", parameters=at_limit))["parameters"] == at_limit
    before = await count_jobs(api)
    reply = await api("POST", "/jobs", {"worker": "Open", "parameters": over_limit})
    assert_refused(reply, 413, str(limit))
    assert await count_jobs(api) == before


class TestBodyLimit:
    """A body over ``max_body_size`` is refused with 413 before it is used."""

    @pytest.fixture
    def config_overrides(self):
        return {"max_body_size": 1024}

    @pytest.mark.gen_test
    async def test_oversized_bodies_are_refused_with_413(self, api):
        job = await create_job(api)
        reply = await api("POST", "/jobs/%s/log" % job["id"], "x" * 1025)
        assert_refused(reply, 413, "1024")
        assert await messages(api, job["id"]) == []
        assert (await api("POST", "/jobs/%s/log" % job["id"], "x" * 1024)).code == 201
        before = await count_jobs(api)
        body = {"worker": "Foobar", "parameters": {"x": "a" * 2000}}
        assert_refused(await api("POST", "/jobs", body), 413)
        assert await count_jobs(api) == before


# --- listing --------------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_list_is_newest_first_and_paged(api):
    created = [(await create_job(api))["id"] for _ in range(5)]
    newest_first = created[::-1]
    assert await job_ids(api) == newest_first
    assert await job_ids(api, "?limit=2") == newest_first[:2]
    assert await job_ids(api, "?offset=2&limit=2") == newest_first[2:4]
    assert await job_ids(api, "?offset=4") == newest_first[4:]
    assert await job_ids(api, "?offset=5") == []
    assert await job_ids(api, "?limit=0") == []


@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_list_filters_by_status_and_worker(api, run_job):
    idle_foobar = (await create_job(api, "Foobar"))["id"]
    done_foobar = (await run_job("Foobar", wait=True))["id"]
    idle_test = (await create_job(api, "TestWorker"))["id"]
    assert await job_ids(api, "?status=idle") == [idle_test, idle_foobar]
    assert await job_ids(api, "?status=done") == [done_foobar]
    assert await job_ids(api, "?status=active") == []
    assert await job_ids(api, "?worker=TestWorker") == [idle_test]
    assert await job_ids(api, "?worker=Foobar") == [done_foobar, idle_foobar]
    assert await job_ids(api, "?worker=Foobar&status=idle") == [idle_foobar]
    assert await job_ids(api, "?worker=NoSuchWorker") == []


@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_list_gives_the_total_count_of_what_matches(api, run_job):
    for _ in range(3):
        await create_job(api, "Foobar")
    await run_job("Foobar", wait=True)
    await create_job(api, "TestWorker")
    for query, total, shown in [("", 5, 5), ("?limit=2", 5, 2), ("?offset=4&limit=2", 5, 1),
                                ("?offset=9", 5, 0), ("?worker=Foobar", 4, 4),
                                ("?worker=Foobar&status=idle&limit=1", 3, 1),
                                ("?status=done", 1, 1), ("?status=active", 0, 0),
                                ("?worker=NoSuchWorker", 0, 0)]:
        reply = await api("GET", "/jobs" + query)
        assert (reply.headers.get("X-Total-Count"), len(reply.data)) == (str(total), shown), \
            query


@pytest.mark.parametrize("query, words", [
    ("?status=finished", ["finished", "idle", "active", "stop", "error", "done"]),
    ("?limit=ten", ["limit"]),
    ("?limit=-1", ["negative"]),
    ("?limit=1000000", ["limit", "1000"]),
    ("?offset=-5", ["negative"]),
    ("?offset=1.5", ["offset"]),
    ("?worker=../etc", ["worker name"]),
])
@pytest.mark.gen_test
async def test_list_refuses_bad_queries(api, query, words):
    assert_refused(await api("GET", "/jobs" + query), 400, *words)


# --- reading one job ------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_get_job_status_and_pid(api):
    job = await create_job(api)
    assert await get_job(api, job["id"]) == job
    status = await api("GET", "/jobs/%s/status" % job["id"])
    assert status.code == 200 and status.data == [{"id": job["id"], "status": "idle"}], status
    pid = await api("GET", "/jobs/%s/pid" % job["id"])
    assert pid.code == 200 and pid.data == [{"id": job["id"], "pid": None}], pid


@pytest.mark.parametrize("method, route, body", [
    ("GET", "", None),
    ("DELETE", "", None),
    ("GET", "/status", None),
    ("PUT", "/status", "start"),
    ("PUT", "/status", "stop"),
    ("PUT", "/status", "kill"),
    ("GET", "/log", None),
    ("POST", "/log", "foo"),
    ("GET", "/response", None),
    ("POST", "/response", "foo"),
    ("GET", "/pid", None),
    ("PUT", "/pid", "123"),
])
@pytest.mark.gen_test
async def test_unknown_job_is_404_on_every_route(api, method, route, body):
    reply = await api(method, "/jobs/01nosuchjob%s" % route, body)
    assert_refused(reply, 404, "01nosuchjob")


# --- short ids ------------------------------------------------------------------------------------

def insert_job(job_id, status="done"):
    """A job row as the job store writes it, with the id given (two may share a short id)."""
    models.Job.create(id=job_id, short_id=jobstore.short_id_of(job_id), worker="Foobar",
                      status=status, created=time.time())


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_short_id_names_its_job_on_every_route(api, wait_for_status):
    job_id = (await create_job(api, "Foobar"))["id"]
    short = job_id[-6:]  # as the admin page shows it
    assert (await get_job(api, short))["id"] == job_id
    assert (await api("GET", "/jobs/%s/status" % short)).data == [
        {"id": job_id, "status": "idle"}]
    assert (await api("GET", "/jobs/%s/pid" % short)).data == [{"id": job_id, "pid": None}]
    started = await api("PUT", "/jobs/%s/status" % short, "start")
    assert started.code == 200 and started.json["message"] == "job %s started" % job_id
    await wait_for_status(job_id)
    appended = await api("POST", "/jobs/%s/log" % short, "added by hand")
    assert appended.code == 201 and appended.json["message"].endswith(job_id)
    log = await api("GET", "/jobs/%s/log" % short)
    assert "added by hand" in [entry["message"] for entry in log.data]
    assert log.headers["X-Total-Count"] == str((await get_job(api, job_id))["log_count"])
    download = await api("GET", "/jobs/%s/log/download" % short)
    assert download.code == 200 and job_id in download.headers["Content-Disposition"]
    assert "added by hand\n" in download.text
    deleted = await api("DELETE", "/jobs/%s" % short)
    assert deleted.code == 200 and deleted.json["message"] == "job %s deleted" % job_id
    assert_refused(await api("GET", "/jobs/%s" % short), 404, short)


@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_a_short_id_of_several_jobs_is_409_naming_them(api):
    first, second = "01m8rtezv60hs6xyz123", "01m8s44r587ezdxyz123"
    insert_job(first)
    insert_job(second)
    for method, path, body in [("GET", "/jobs/xyz123", None),
                               ("GET", "/jobs/xyz123/log", None),
                               ("PUT", "/jobs/xyz123/status", "start"),
                               ("DELETE", "/jobs/xyz123", None)]:
        reply = await api(method, path, body)
        assert_refused(reply, 409, "'xyz123' is the short id of several jobs (%s, %s): use the "
                                   "whole id" % (second, first))
    assert sorted(job.id for job in models.Job.select()) == [first, second]  # none deleted
    assert (await get_job(api, first))["id"] == first  # the whole id still names each
    assert_refused(await api("GET", "/jobs/nope12"), 404, "no job with id 'nope12'")
    assert_refused(await api("GET", "/jobs/nope12/status"), 404, "no job with id 'nope12'")


# --- log and response -----------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.parametrize("stream", ["log", "response"])
@pytest.mark.gen_test
async def test_append_and_read_entries_in_order(api, stream):
    job = await create_job(api)
    path = "/jobs/%s/%s" % (job["id"], stream)
    before = time.time()
    for text in ("foo", "bar", "baz"):
        reply = await api("POST", path, text, headers={"Content-Type": "text/plain"})
        assert reply.code == 201, reply
        assert_envelope(reply)
        assert reply.data[0]["message"] == text
    reply = await api("GET", path)
    assert reply.code == 200, reply
    assert_envelope(reply)
    assert [e["message"] for e in reply.data] == ["foo", "bar", "baz"]
    for seq, entry in enumerate(reply.data):
        assert set(entry) == {"seq", "message", "time"}, entry
        assert entry["seq"] == seq
        assert before - 1 <= entry["time"] <= time.time() + 1, "time is epoch seconds"
    assert [e["time"] for e in reply.data] == sorted(e["time"] for e in reply.data)
    assert reply.headers["X-Total-Count"] == "3"
    counter = "log_count" if stream == "log" else "response_count"
    assert (await get_job(api, job["id"]))[counter] == 3
    other = "response" if stream == "log" else "log"
    assert await messages(api, job["id"], other) == [], "the streams are separate"


@pytest.mark.both_databases
@pytest.mark.parametrize("stream", ["log", "response"])
@pytest.mark.gen_test
async def test_a_multiline_unicode_body_is_one_entry(api, stream):
    job = await create_job(api)
    text = "first line\nsecond line\r\n\ttabbed \\n not a newline\nGrüße 漢字 🎉\n"
    reply = await api("POST", "/jobs/%s/%s" % (job["id"], stream), text.encode("utf-8"))
    assert reply.code == 201, reply
    assert await messages(api, job["id"], stream) == [text]


@pytest.mark.gen_test
async def test_append_refuses_a_body_that_is_not_utf8(api):
    job = await create_job(api)
    reply = await api("POST", "/jobs/%s/log" % job["id"], b"caf\xe9")
    assert_refused(reply, 400, "UTF-8")
    assert await messages(api, job["id"]) == []


LONG_TALKER = '''import os
from jobjoker import Worker

class LongTalker(Worker):
    """Writes one long message each way a job can: self.log, print, raw output of a child."""
    def run(self):
        n = self.params["n"]
        self.log("L" * n)
        print("P" * n)
        os.system("head -c %d /dev/zero | tr '\\\\0' R" % n)  # no newline at its end
'''


@pytest.mark.gen_test(timeout=60)
async def test_an_entry_longer_than_the_limit_is_stored_as_several_from_any_source(
        api, run_job, write_worker):
    n = 150 * 1024  # more than two entries' worth (spool.MAX_ENTRY_BYTES)
    write_worker("LongTalker", LONG_TALKER)
    job = await run_job("LongTalker", {"n": n}, wait=True)
    assert job["status"] == "done", job
    posted = await api("POST", "/jobs/%s/log" % job["id"], "A" * n)
    assert posted.code == 201, posted
    stored = await messages(api, job["id"])
    assert all(len(m.encode()) <= spool.MAX_ENTRY_BYTES for m in stored)
    for letter in "LPRA":  # each message whole again, once its pieces are put together
        pieces = [m for m in stored if m and set(m) == {letter}]
        assert len(pieces) >= 3 and "".join(pieces) == letter * n, letter


@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_entries_are_paged_by_offset_and_limit(api):
    job = await create_job(api)
    path = "/jobs/%s/response" % job["id"]
    for i in range(6):
        assert (await api("POST", path, "entry %d" % i)).code == 201
    reply = await api("GET", path + "?offset=2&limit=3")
    assert [e["message"] for e in reply.data] == ["entry 2", "entry 3", "entry 4"]
    assert reply.headers["X-Total-Count"] == "6", "the total counts every entry, not the page"
    reply = await api("GET", path + "?offset=4")
    assert [e["message"] for e in reply.data] == ["entry 4", "entry 5"]
    assert (await api("GET", path + "?offset=6")).data == []
    assert (await api("GET", path + "?limit=0")).data == []
    assert_refused(await api("GET", path + "?limit=many"), 400, "limit")
    assert_refused(await api("GET", path + "?offset=-1"), 400, "negative")


@pytest.mark.parametrize("query, headers", [
    ("?format=text", {}),
    ("", {"Accept": "text/plain"}),
], ids=["format-text", "accept-text"])
@pytest.mark.gen_test
async def test_entries_as_plain_text(api, query, headers):
    job = await create_job(api)
    for text in ("foo", "bar", "baz"):
        await api("POST", "/jobs/%s/log" % job["id"], text)
    reply = await api("GET", "/jobs/%s/log%s" % (job["id"], query), headers=headers)
    assert reply.code == 200, reply
    assert reply.headers["Content-Type"].startswith("text/plain"), reply.headers
    assert reply.text == "foo\nbar\nbaz\n"
    assert reply.headers["X-Total-Count"] == "3"
    sep = "&" if query else "?"
    paged = await api("GET", "/jobs/%s/log%s%soffset=1&limit=1" % (job["id"], query, sep),
                      headers=headers)
    assert paged.text == "bar\n"
    assert paged.headers["X-Total-Count"] == "3"


# --- commands -------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "start", "START\n", '"start"', '{"status": "start"}',
], ids=["plain", "plain-upper", "json-string", "json-object"])
@pytest.mark.gen_test
async def test_start_makes_an_idle_job_active_with_a_pid(api, write_worker, body):
    write_worker("Sleeper", SLEEPER)
    job = await create_job(api, "Sleeper")
    before = time.time()
    reply = await api("PUT", "/jobs/%s/status" % job["id"], body)
    assert reply.code == 200, reply
    assert_envelope(reply)
    started = reply.data[0]
    assert started["status"] == "active"
    assert isinstance(started["pid"], int) and started["pid"] > 0, started
    assert process_exists(started["pid"])
    assert before - 1 <= started["starttime"] <= time.time() + 1
    assert started["stoptime"] is None
    pid = await api("GET", "/jobs/%s/pid" % job["id"])
    assert pid.data == [{"id": job["id"], "pid": started["pid"]}]
    status = await api("GET", "/jobs/%s/status" % job["id"])
    assert status.data == [{"id": job["id"], "status": "active"}]


@pytest.mark.gen_test
async def test_start_again_is_409(api, run_job, write_worker):
    job = await start_sleeper(api, run_job, write_worker)
    reply = await api("PUT", "/jobs/%s/status" % job["id"], "start")
    assert_refused(reply, 409, "active")
    assert (await get_job(api, job["id"]))["pid"] == job["pid"]


@pytest.mark.parametrize("command", ["stop", "kill"])
@pytest.mark.gen_test
async def test_stop_or_kill_an_idle_job_is_409(api, command):
    job = await create_job(api)
    assert_refused(await api("PUT", "/jobs/%s/status" % job["id"], command), 409, "idle")
    assert await get_job(api, job["id"]) == job


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.gen_test
async def test_any_command_on_an_ended_job_is_409(api, run_job, command):
    job = await run_job("Foobar", wait=True)
    assert job["status"] == "done", job
    reply = await api("PUT", "/jobs/%s/status" % job["id"], command)
    assert_refused(reply, 409, "done")
    assert await get_job(api, job["id"]) == without_result(job)


@pytest.mark.parametrize("command", ["stop", "kill"])
@pytest.mark.gen_test
async def test_a_command_in_the_moment_after_an_end_is_committed_is_409(
        api, server, run_job, command):
    """The end is committed before the manager forgets the job (its commit callbacks run
    after): a stop or kill in between must read the stored end, not the memory."""
    job = await run_job("Foobar", wait=True)
    processes = server.processes
    running = RunningJob(job["id"], processes.jobs_dir, None)
    running.launched.set_result(True)
    processes.running[job["id"]] = running  # as in that moment
    try:
        reply = await api("PUT", "/jobs/%s/status" % job["id"], command)
    finally:
        processes.running.pop(job["id"], None)
    assert_refused(reply, 409, "already ended", "done")
    assert await get_job(api, job["id"]) == without_result(job)


@pytest.mark.gen_test(timeout=60)
async def test_refusals_in_the_wrong_state_read_as_english(api, run_job, write_worker):
    """Every 409 of start, stop, kill and delete says the job's state in words ("was stopped"),
    never a bare status value ("is stop")."""
    async def refusal(method, job, command=None):
        path = "/jobs/%s" % job["id"] + ("/status" if command else "")
        reply = await api(method, path, command)
        assert reply.code == 409, reply
        return reply.json["message"].replace(job["id"], "ID")

    idle = await create_job(api)
    for command in ("stop", "kill"):
        assert await refusal("PUT", idle, command) == (
            "job ID is idle: it has not started, so there is nothing to %s (delete it instead)"
            % command)
    active = await start_sleeper(api, run_job, write_worker)
    assert await refusal("PUT", active, "start") == (
        "job ID is active; only an idle job can start (create a new job to run Sleeper again)")
    assert await refusal("DELETE", active) == \
        "job ID is active: stop or kill it before deleting it"
    await api("PUT", "/jobs/%s/status" % active["id"], "stop")
    stopped = await poll(lambda: _ended(api, active["id"]), what="the stop")
    write_worker("Failing", FAILING)
    ended = {"stop": stopped, "error": await run_job("Failing", wait=True),
             "done": await run_job("Foobar", wait=True)}
    for status, words in (("stop", "was stopped"), ("error", "ended with an error"),
                          ("done", "is done")):
        job = ended[status]
        assert job["status"] == status, job
        assert await refusal("PUT", job, "start") == (
            "job ID %s; only an idle job can start (create a new job to run %s again)"
            % (words, job["worker"]))
        for command in ("stop", "kill"):
            assert await refusal("PUT", job, command) == "job ID has already ended: it %s" % words


@pytest.mark.parametrize("status", ["active", "done", "error", "idle"])
@pytest.mark.gen_test
async def test_statuses_the_server_owns_are_400(api, status):
    job = await create_job(api)
    reply = await api("PUT", "/jobs/%s/status" % job["id"], status)
    assert_refused(reply, 400, "server", *COMMANDS)
    assert await get_job(api, job["id"]) == job


@pytest.mark.parametrize("body", [
    "restart", "", "   ", "{}", '{"status": 5}', "[1]", '"', b"\xff\xfe",
], ids=["unknown-word", "empty", "blank", "json-object-without-status", "json-status-number",
        "json-list", "broken-json", "not-utf8"])
@pytest.mark.gen_test
async def test_other_commands_are_400_listing_the_valid_ones(api, body):
    job = await create_job(api)
    reply = await api("PUT", "/jobs/%s/status" % job["id"], body)
    assert_refused(reply, 400, *COMMANDS)
    assert await get_job(api, job["id"]) == job


@pytest.mark.gen_test
async def test_stop_is_202_then_the_job_ends_as_stop(api, run_job, write_worker):
    job = await start_sleeper(api, run_job, write_worker)
    reply = await api("PUT", "/jobs/%s/status" % job["id"], "stop")
    assert reply.code == 202, reply
    assert_envelope(reply)
    assert reply.data[0]["id"] == job["id"]
    assert reply.data[0]["stop_requested"] is not None
    ended = await poll(lambda: _ended(api, job["id"]), what="job %s to end" % job["id"])
    assert ended["status"] == "stop", ended
    # The worker honoured SIGTERM, so no SIGKILL was needed.
    assert ended["exit_signal"] is None, ended
    assert ended["starttime"] <= ended["stoptime"] <= time.time() + 1
    assert not process_exists(job["pid"])
    assert ENDED.match((await messages(api, job["id"]))[-1]).group("status") == "stop"


@pytest.mark.gen_test
async def test_stop_escalates_to_sigkill_after_the_grace_period(api, run_job, write_worker,
                                                                config):
    write_worker("Stubborn", STUBBORN)
    job = await run_job("Stubborn")
    await wait_for_entry(api, job["id"], "response", "ignoring SIGTERM")
    reply = await api("PUT", "/jobs/%s/status" % job["id"], "stop")
    assert reply.code == 202, reply
    requested = reply.data[0]["stop_requested"]
    ended = await poll(lambda: _ended(api, job["id"]), config.stop_grace + 60,
                       "job %s to end" % job["id"])
    assert ended["status"] == "stop", ended
    assert ended["exit_signal"] == 9, ended
    assert ended["stoptime"] - requested >= config.stop_grace - 0.1, \
        "SIGKILL came before the grace period was over"
    assert not process_exists(job["pid"])


@pytest.mark.parametrize("config_overrides", [{"stop_grace": 3600}])
@pytest.mark.gen_test
async def test_kill_ends_the_job_as_stop_at_once(api, run_job, write_worker):
    job = await start_sleeper(api, run_job, write_worker)
    reply = await api("PUT", "/jobs/%s/status" % job["id"], "kill")
    assert reply.code == 202, reply  # accepted: final once the process is reaped
    assert_envelope(reply)
    # No grace period (an hour here): SIGKILL at once, so it ends within the test's time.
    ended = await poll(lambda: _ended(api, job["id"]), what="job %s to end" % job["id"])
    assert ended["status"] == "stop", ended
    assert ended["exit_signal"] == 9 and ended["exit_code"] is None, ended
    assert not process_exists(job["pid"])
    assert "SIGKILL" in (await messages(api, job["id"]))[-1]


@pytest.mark.gen_test
async def test_a_finished_job_has_its_exit_code(api, run_job, write_worker):
    done = await run_job("Foobar", wait=True)
    assert done["status"] == "done" and done["exit_code"] == 0, done
    assert done["exit_signal"] is None and done["error"] is None, done
    assert done["created"] <= done["starttime"] <= done["stoptime"], done

    write_worker("Failing", FAILING)
    failed = await run_job("Failing", wait=True)
    assert failed["status"] == "error" and failed["exit_code"] == 1, failed
    assert failed["exit_signal"] is None and failed["error"], failed
    assert any("RuntimeError: boom" in m for m in await messages(api, failed["id"]))


@pytest.mark.gen_test
async def test_the_pid_is_the_servers_to_set(api, run_job, write_worker):
    idle = await create_job(api)
    reply = await api("PUT", "/jobs/%s/pid" % idle["id"], "123")
    assert_refused(reply, 405, "server", "status")
    assert (await api("GET", "/jobs/%s/pid" % idle["id"])).data[0]["pid"] is None

    running = await start_sleeper(api, run_job, write_worker)
    assert (await api("PUT", "/jobs/%s/pid" % running["id"], "123")).code == 405
    assert (await api("GET", "/jobs/%s/pid" % running["id"])).data[0]["pid"] == running["pid"]


async def _ended(api, job_id):
    job = await get_job(api, job_id)
    return job if job["status"] in ("stop", "error", "done") else None


# --- deleting -------------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_delete_removes_the_job_with_its_log_and_response(api, run_job):
    job = await run_job("Foobar", wait=True)
    await api("POST", "/jobs/%s/response" % job["id"], "extra")
    assert await messages(api, job["id"]) and await messages(api, job["id"], "response")
    kept = await create_job(api)
    reply = await api("DELETE", "/jobs/%s" % job["id"])
    assert reply.code == 200, reply
    assert_envelope(reply)
    assert reply.data[0]["id"] == job["id"]
    for route in ("", "/status", "/log", "/response", "/pid"):
        assert (await api("GET", "/jobs/%s%s" % (job["id"], route))).code == 404, route
    assert models.Chunk.select().where(models.Chunk.job == job["id"]).count() == 0
    assert await job_ids(api) == [kept["id"]]
    assert_refused(await api("DELETE", "/jobs/%s" % job["id"]), 404)


@pytest.mark.gen_test
async def test_delete_an_active_job_is_409(api, run_job, write_worker):
    job = await start_sleeper(api, run_job, write_worker)
    assert_refused(await api("DELETE", "/jobs/%s" % job["id"]), 409, "active", "stop")
    assert (await get_job(api, job["id"]))["status"] == "active"
    assert await messages(api, job["id"], "response") == ["running"], "the entries stay"
    assert (await api("PUT", "/jobs/%s/status" % job["id"], "kill")).code == 202
    await poll(lambda: _ended(api, job["id"]), what="job %s to end" % job["id"])
    assert (await api("DELETE", "/jobs/%s" % job["id"])).code == 200


# --- concurrency ----------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test
async def test_a_hundred_concurrent_starts_give_one_process(api, base_url, wait_for_status):
    job = await create_job(api)
    # A client of its own: the shared one keeps at most 10 requests in flight.
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=100)
    try:
        replies = await asyncio.gather(*[
            fetch(client, base_url, "PUT", "/jobs/%s/status" % job["id"], "start")
            for _ in range(100)])
    finally:
        client.close()
    codes = sorted(reply.code for reply in replies)
    assert codes.count(200) == 1 and codes.count(409) == 99, codes
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "done", ended
    started = [m for m in await messages(api, job["id"]) if m.startswith("STARTED")]
    assert len(started) == 1, started
    assert STARTED.match(started[0]).group("pid") == str(ended["pid"])


# --- the entries that open and close a log --------------------------------------------------------

@pytest.mark.gen_test
async def test_the_log_opens_with_the_start_and_closes_with_the_end(api, run_job):
    job = await run_job("Foobar", wait=True)
    log = await messages(api, job["id"])
    assert log[1:-1] == ["foobar"], log
    opening = STARTED.match(log[0])
    assert opening, log
    assert opening.group("id") == job["id"] and opening.group("worker") == "Foobar"
    assert opening.group("pid") == str(job["pid"])
    closing = ENDED.match(log[-1])
    assert closing, log
    assert closing.group("status") == "done"
    assert closing.group("how") == "exit code 0"
    assert 0 <= float(closing.group("seconds")) <= job["stoptime"] - job["starttime"] + 0.01


@pytest.mark.gen_test
async def test_the_log_opens_with_the_start_even_when_the_worker_writes_output_at_once(
        api, run_job, write_worker):
    write_worker("RawOutput", RAW_OUTPUT)
    job = await run_job("RawOutput", wait=True)
    assert job["status"] == "done", job
    log = await messages(api, job["id"])
    assert STARTED.match(log[0]), log
    assert log[1:-1] == ["raw output"], log
    assert ENDED.match(log[-1]), log


@pytest.mark.gen_test
async def test_the_closing_entry_of_a_killed_job(api, run_job, write_worker):
    job = await start_sleeper(api, run_job, write_worker)
    await api("PUT", "/jobs/%s/status" % job["id"], "kill")
    await poll(lambda: _ended(api, job["id"]), what="job %s to end" % job["id"])
    log = await messages(api, job["id"])
    assert [bool(STARTED.match(m)) for m in log].count(True) == 1, log
    assert [bool(ENDED.match(m)) for m in log].count(True) == 1, log
    closing = ENDED.match(log[-1])
    assert closing and closing.group("status") == "stop", log
    assert closing.group("how") == "killed by SIGKILL", log


# --- authentication and unknown paths -------------------------------------------------------------

ROUTES = [
    ("GET", "/", None),
    ("GET", "/openapi.json", None),
    ("GET", "/workers", None),
    ("GET", "/workers/Foobar", None),
    ("PUT", "/workers/Foobar", "x = 1\n"),
    ("DELETE", "/workers/Foobar", None),
    ("GET", "/workers/Foobar/code", None),
    ("GET", "/jobs", None),
    ("POST", "/jobs", {"worker": "Foobar"}),
    ("GET", "/jobs/{id}", None),
    ("DELETE", "/jobs/{id}", None),
    ("GET", "/jobs/{id}/status", None),
    ("PUT", "/jobs/{id}/status", "start"),
    ("GET", "/jobs/{id}/log", None),
    ("POST", "/jobs/{id}/log", "sneaked in"),
    ("GET", "/jobs/{id}/response", None),
    ("POST", "/jobs/{id}/response", "sneaked in"),
    ("GET", "/jobs/{id}/pid", None),
    ("PUT", "/jobs/{id}/pid", "123"),
    ("GET", "/no/such/path", None),
    ("DELETE", "/no/such/path", None),
]


@pytest.mark.parametrize("auth, headers", [
    (None, None),
    (("admin", "wrong-password"), None),
    (("nobody", "test-password"), None),
    (None, {"Authorization": "Bearer some-token"}),
    (None, {"Authorization": "Basic " + base64.b64encode(b"admin").decode()}),
], ids=["none", "wrong-password", "unknown-user", "other-scheme", "basic-without-password"])
@pytest.mark.gen_test
async def test_every_route_needs_credentials(api, auth, headers):
    job = await create_job(api)
    worker_code = (await api("GET", "/workers/Foobar/code")).text
    wrong = []
    for method, path, body in ROUTES:
        path = path.format(id=job["id"])
        reply = await api(method, path, body, auth=auth, headers=headers)
        if reply.code != 401 or reply.json is None or reply.json["success"] is not False \
                or not reply.headers.get("WWW-Authenticate", "").startswith("Basic"):
            wrong.append((method, path, reply))
    assert wrong == []
    # ... and nothing changed.
    assert await get_job(api, job["id"]) == job
    assert await job_ids(api) == [job["id"]]
    assert (await api("GET", "/workers/Foobar/code")).text == worker_code


@pytest.mark.gen_test
async def test_health_needs_no_credentials(api):
    reply = await api("GET", "/health", auth=None)
    assert reply.code == 200, reply
    assert_envelope(reply)
    assert reply.data == [{"status": "ok"}]  # the details are for the signed-in
    reply = await api("GET", "/health")
    lag = reply.data[0]["loop_lag_ms"]
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["max"]


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_health_says_so_when_a_write_hangs_though_reads_answer(api, server, monkeypatch):
    import threading
    from jobjoker import app as app_module
    monkeypatch.setattr(app_module, "STUCK_WRITE_SECONDS", 0.2)
    inside, release = threading.Event(), threading.Event()

    def hanging(tx):
        inside.set()
        release.wait(30)
    write = server.storage.transaction(hanging)
    try:
        await asyncio.get_running_loop().run_in_executor(None, inside.wait, 30)

        async def unhealthy():
            return (await api("GET", "/health", auth=None)).code == 503
        await poll(unhealthy, what="/health to report the hanging write")
        reply = await api("GET", "/health")  # signed in: with the reason
        assert "has not finished a write" in reply.json["message"]
        assert (await api("GET", "/jobs")).code == 200  # reads still answer
    finally:
        release.set()
        await write
    assert (await api("GET", "/health", auth=None)).code == 200


@pytest.mark.gen_test
async def test_static_files_need_credentials(api):
    # Tornado serves an Application's ``static_path`` under /static/ by itself, outside our base
    # handler: the admin page that / guards must not be readable there without credentials.
    reply = await api("GET", "/static/index.html", auth=None)
    assert reply.code == 401, reply


@pytest.mark.parametrize("method, path", [
    ("GET", "/no/such/path"),
    ("POST", "/jobsx"),
    ("GET", "/jobs/x/y/z"),
    ("PUT", "/jobs/x/nothing"),
])
@pytest.mark.gen_test
async def test_unknown_paths_are_404_after_authentication(api, method, path):
    assert_refused(await api(method, path), 404, path)
    assert (await api(method, path, auth=None)).code == 401


# --- downloading a whole log -------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_download_gives_the_whole_log_however_many_pages(api, run_job, write_worker):
    write_worker("Many", "from jobjoker import Worker\n\nclass Many(Worker):\n"
                         "    def run(self):\n"
                         "        for i in range(25000):\n"
                         "            self.log('line %d' % i)\n")
    job = await run_job("Many", wait=True, timeout=60)
    reply = await api("GET", "/jobs/%s/log/download" % job["id"])
    assert reply.code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert reply.headers["Content-Disposition"] == \
        'attachment; filename="job-%s-log.txt"' % job["id"]
    lines = reply.text.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == job["log_count"] == 25002
    assert lines[1:25001] == ["line %d" % i for i in range(25000)]
    assert (await api("GET", "/jobs/nope/log/download")).code == 404
    assert (await api("GET", "/jobs/%s/log/download" % job["id"], auth=None)).code == 401


class DatabaseLock:
    """Another connection holding the database locked, as a backup or an admin could: SQLite's
    exclusive write lock, or MySQL's ``LOCK TABLES job WRITE``."""

    def __init__(self, url):
        self.url = url
        self.connection = None

    def lock(self):
        if self.url.startswith("sqlite"):
            import sqlite3
            self.connection = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None,
                                              check_same_thread=False)
            self.connection.execute("BEGIN EXCLUSIVE")
        else:
            import urllib.parse
            import pymysql
            parts = urllib.parse.urlsplit(self.url)
            self.connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                              user=parts.username or "root",
                                              password=parts.password or "",
                                              database=parts.path.lstrip("/"))
            self.connection.cursor().execute("LOCK TABLES job WRITE")

    def unlock(self):
        if self.url.startswith("sqlite"):
            self.connection.execute("COMMIT")
        else:
            self.connection.cursor().execute("UNLOCK TABLES")
        self.connection.close()


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=120)
async def test_a_locked_database_gets_prompt_503s_and_health_says_so(
        api, server, run_job, wait_for_status, database_url, monkeypatch):
    # Issue 12, Medium 11: before, each request waited out the lock (SQLite: 5 s each, in
    # turn; MariaDB: until unlocked) and /health with them.
    import time
    from jobjoker import app as app_module
    from jobjoker import storage as storage_module
    monkeypatch.setattr(storage_module, "ANSWER_SECONDS", 0.5, raising=False)
    monkeypatch.setattr(app_module, "STUCK_WRITE_SECONDS", 1.0)
    job = await run_job("TestWorker", {"count": 30, "sleep": 0.05})
    await poll(lambda: _log_count(api, job["id"], 1), what="the job's first entry")
    lock = DatabaseLock(database_url)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lock.lock)
    try:
        began = time.monotonic()
        replies = await asyncio.gather(*(api("POST", "/jobs", {"worker": "TestWorker"})
                                         for _ in range(3)))
        took = time.monotonic() - began
        for reply in replies:
            assert reply.code == 503, reply
            assert "the database did not answer within" in reply.json["message"], reply
        assert took < 4.0, took  # not one lock wait after another

        async def health_says_so():
            began = time.monotonic()
            reply = await api("GET", "/health")  # signed in: with the reason
            assert time.monotonic() - began < 3.0  # answered from memory, not held
            return reply.code == 503 and "database" in reply.json["message"] and reply
        reply = await poll(health_says_so, what="/health to say the database is not answering")
        assert "has not finished a write" in reply.json["message"], reply
    finally:
        await loop.run_in_executor(None, lock.unlock)

    async def healthy():
        return (await api("GET", "/health", auth=None)).code == 200
    await poll(healthy, what="/health to recover")
    assert (await api("POST", "/jobs", {"worker": "TestWorker"})).code == 201
    final = await wait_for_status(job["id"])
    assert final["status"] == "done", final
    log = (await api("GET", "/jobs/%s/log?limit=1000" % job["id"])).data
    assert [e["message"] for e in log if e["message"].startswith("log ")] == \
        ["log %d" % i for i in range(30)]  # nothing lost while the database was locked


async def _log_count(api, job_id, at_least):
    reply = await api("GET", "/jobs/%s" % job_id)
    return reply.code == 200 and reply.data[0]["log_count"] > at_least
