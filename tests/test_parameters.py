"""Parameters a worker declares: checked statically, validated at job creation, and secrets that
never show again in any reply, event or log."""
import asyncio
import json
import logging
import os

import pytest

from jobjoker import models, parameters
from jobjoker.errors import ValidationError
from tests.support import OPEN_WORKER, ROOT

DECLARING = '''import subprocess
from jobjoker import Worker


class Declares(Worker):
    """Uses declared parameters."""

    parameters = {
        "url": {"type": "string", "required": True, "description": "What to fetch"},
        "count": {"type": "integer", "default": 3, "minimum": 1, "maximum": 10},
        "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
        "password": {"type": "string", "secret": True, "default": "default-secret"},
    }

    def run(self):
        self.log("params %s" % self.params)
        self.log("the password is " + self.params["password"])
        print("printed:", self.params["password"])
        subprocess.run(["echo", "child says " + self.params["password"]])
        self.response({"token": self.params["password"]})
'''
SECRET = "hunter2-very-secret"


# --- the declaration ---------------------------------------------------------------------------

def test_a_good_declaration_is_kept_with_types_filled_in():
    checked = parameters.parse_declaration({"a": {}, "b": {"type": "integer", "default": 2}})
    assert checked == {"a": {"type": "string"}, "b": {"type": "integer", "default": 2}}


@pytest.mark.parametrize("declared, message", [
    ([], "must be a dict"),
    ({"not-id": {}}, "identifiers"),
    ({"a": "string"}, "its spec must be a dict"),
    ({"a": {"colour": 1}}, "unknown key"),
    ({"a": {"type": "date"}}, "type must be one of"),
    ({"a": {"required": "yes"}}, "required must be True or False"),
    ({"a": {"type": "integer", "enum": ["x"]}}, "enum must be a list of integer"),
    ({"a": {"type": "string", "minimum": 1}}, "minimum needs a number"),
    ({"a": {"type": "integer", "default": "x"}}, "its default does not fit"),
    ({"a": {"type": "integer", "default": 0, "minimum": 1}}, "at least 1"),
])
def test_bad_declarations_say_what_is_wrong(declared, message):
    with pytest.raises(ValidationError, match=message):
        parameters.parse_declaration(declared, line=7)


def test_validate_fills_defaults_and_lists_every_problem():
    declared = parameters.parse_declaration({
        "url": {"required": True}, "n": {"type": "integer", "default": 1, "maximum": 5},
        "flag": {"type": "boolean"}})
    assert parameters.validate(declared, {"url": "x"}) == {"url": "x", "n": 1}
    with pytest.raises(ValidationError) as caught:
        parameters.validate(declared, {"n": 9, "flag": 1, "extra": 0})
    message = caught.value.message
    for part in ("unknown parameter extra", "url is required", "n must be at most 5",
                 "flag must be a boolean"):
        assert part in message
    with pytest.raises(ValidationError, match="must be an integer"):
        parameters.validate(declared, {"url": "x", "n": True})  # JSON true is not a number


def test_secrets_are_split_and_short_ones_not_used_as_masks():
    declared = parameters.parse_declaration({"p": {"secret": True}, "q": {}})
    public, secrets = parameters.split_secrets(declared, {"p": "s3cret!", "q": "open"})
    assert public == {"p": parameters.MASK, "q": "open"} and secrets == {"p": "s3cret!"}
    assert parameters.mask_values({"a": "abc", "b": "longer one", "c": 12345}) == [
        "longer one", "12345"]


# --- through the API ---------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_workers_show_their_declaration_without_secret_defaults(api):
    saved = await api("PUT", "/workers/Declares", DECLARING)
    assert saved.code == 201, saved
    declared = saved.data[0]["parameters"]
    assert declared["count"] == {"type": "integer", "default": 3, "minimum": 1, "maximum": 10}
    assert declared["password"] == {"type": "string", "secret": True}
    assert "default-secret" not in saved.text
    assert (await api("GET", "/workers/Foobar")).data[0]["parameters"] == {}  # takes none


@pytest.mark.gen_test
async def test_every_sample_worker_declares_its_parameters(api, write_worker):
    """So a misspelt parameter of a sample is refused, not run with the default."""
    samples = sorted(path.stem for path in (ROOT / "workers").glob("*.py"))
    served = {w["name"] for w in (await api("GET", "/workers")).data}
    for name in set(samples) - served:  # the test server's folder holds the ones tests run
        write_worker(name, (ROOT / "workers" / ("%s.py" % name)).read_text())
    assert samples and set(samples) <= {w["name"] for w in (await api("GET", "/workers")).data}
    for name in samples:
        assert isinstance((await api("GET", "/workers/" + name)).data[0]["parameters"], dict), \
            name
    typo = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": {"cuont": 3}})
    assert typo.code == 422, typo
    assert "unknown parameter cuont (did you mean count? this worker takes: count, sleep)" in \
        typo.json["message"]
    assert (await api("POST", "/jobs", {"worker": "Foobar", "parameters": {"x": 1}})).code == 422


@pytest.mark.gen_test
async def test_a_worker_that_declares_none_is_said_to_check_none(api, write_worker):
    """GET /workers/NAME gives ``"parameters": null``, and a reply that created a job of it with
    parameters says they were not checked."""
    write_worker("Open", OPEN_WORKER)
    assert (await api("GET", "/workers/Open")).data[0]["parameters"] is None
    listed = {w["name"]: w["parameters"] for w in (await api("GET", "/workers")).data}
    assert listed["Open"] is None and listed["Foobar"] == {}
    note = "worker Open declares no parameters, so they are not checked"
    typo = await api("POST", "/jobs", {"worker": "Open", "parameters": {"cuont": 3}})
    assert typo.code == 201 and typo.json["message"] == (
        "job %s created; %s: a misspelt name reaches the job as it is"
        % (typo.data[0]["id"], note))
    started = await api("POST", "/jobs", {"worker": "Open", "parameters": {"n": 1},
                                          "start": True})
    assert started.code == 201 and started.json["message"].endswith(
        "created and started; %s: a misspelt name reaches the job as it is" % note)
    plain = await api("POST", "/jobs", {"worker": "Open"})  # nothing given, nothing to check
    assert plain.json["message"] == "job %s created" % plain.data[0]["id"]
    checked = await api("POST", "/jobs", {"worker": "TestWorker", "parameters": {"count": 1}})
    assert checked.json["message"] == "job %s created" % checked.data[0]["id"]
    batch = await api("POST", "/jobs/batch", {"jobs": [
        {"worker": "Open", "parameters": {"a": 1}}, {"worker": "Open"},
        {"worker": "TestWorker", "parameters": {"count": 1}}]})
    assert batch.code == 201 and batch.json["message"] == "3 jobs created; %s: a misspelt " \
        "name reaches the job as it is" % note


@pytest.mark.gen_test
async def test_a_bad_declaration_is_refused_with_its_line(api):
    code = DECLARING.replace('"enum": ["fast", "safe"]', '"enum": "fast"')
    refused = await api("PUT", "/workers/Declares", code)
    assert refused.code == 422
    assert refused.data == [{"line": 8}]  # the line of `parameters = {`
    assert "enum must be a list" in refused.json["message"]
    dynamic = DECLARING.replace('"default": 3', '"default": len("abc")')
    refused = await api("PUT", "/workers/Declares", dynamic)
    assert refused.code == 422 and "literal dict" in refused.json["message"]


@pytest.mark.gen_test
async def test_job_parameters_are_validated_against_the_declaration(api):
    await api("PUT", "/workers/Declares", DECLARING)
    count = models.Job.select().count()
    for bad, part in [({}, "url is required"), ({"url": "x", "count": 99}, "at most 10"),
                      ({"url": "x", "mode": "slow"}, "one of 'fast', 'safe'"),
                      ({"url": "x", "other": 1}, "unknown parameter other")]:
        reply = await api("POST", "/jobs", {"worker": "Declares", "parameters": bad})
        assert reply.code == 422 and part in reply.json["message"], (bad, reply)
    assert models.Job.select().count() == count  # nothing created
    created = await api("POST", "/jobs", {"worker": "Declares", "parameters": {"url": "x"}})
    assert created.data[0]["parameters"] == {"url": "x", "count": 3, "mode": "safe",
                                             "password": parameters.MASK}


@pytest.mark.gen_test(timeout=60)
async def test_a_secret_parameter_never_appears_in_any_reply_event_or_log(
        api, ws_connect, wait_for_status, server, caplog):
    caplog.set_level(logging.DEBUG)
    await api("PUT", "/workers/Declares", DECLARING)
    events = await ws_connect("/events")
    created = await api("POST", "/jobs", {"worker": "Declares", "parameters": {
        "url": "http://example.invalid", "password": SECRET}})
    job_id = created.data[0]["id"]
    stream = await ws_connect("/jobs/%s/stream" % job_id)
    await api("PUT", "/jobs/%s/status" % job_id, "start")
    job = await wait_for_status(job_id)
    assert job["status"] == "done", job
    await api("POST", "/jobs/%s/log" % job_id, "a client echoes %s back" % SECRET)

    texts = []
    for path in ("/jobs/%s" % job_id, "/jobs?limit=10", "/jobs/%s/log" % job_id,
                 "/jobs/%s/response" % job_id, "/jobs/%s/log/download" % job_id,
                 "/jobs/%s/log?format=text" % job_id, "/audit?limit=100"):
        reply = await api("GET", path)
        assert reply.code == 200, path
        texts.append(reply.text)
    while True:
        message = await asyncio.wait_for(stream.read_message(), 10)
        if message is None:
            break
        texts.append(message)
    events.close()
    log = (await api("GET", "/jobs/%s/log?format=text" % job_id)).text
    assert "the password is %s" % parameters.MASK in log
    assert "printed: %s" % parameters.MASK in log
    assert "child says %s" % parameters.MASK in log  # raw output of a child process too
    assert "a client echoes %s back" % parameters.MASK in log
    response = (await api("GET", "/jobs/%s/response" % job_id)).data[0]["message"]
    assert json.loads(response) == {"token": parameters.MASK}
    for text in texts + [caplog.text]:
        assert SECRET not in text
    stored = models.Job.get_by_id(job_id)
    assert SECRET not in stored.parameters
    assert b"".join(bytes(c.data) for c in models.Chunk.select()).find(SECRET.encode()) == -1


@pytest.mark.gen_test
async def test_an_annotated_declaration_counts_and_a_broken_hand_placed_worker_runs_nothing(
        api, write_worker):
    annotated = DECLARING.replace("    parameters = {", "    parameters: dict = {")
    saved = await api("PUT", "/workers/Declares", annotated)
    assert saved.data[0]["parameters"]["password"]["secret"] is True
    # Dropped into the folder by hand, bypassing the check: its secrets cannot be trusted.
    write_worker("Declares", DECLARING.replace('"secret": True', '"secret": "yes"'))
    refused = await api("POST", "/jobs", {"worker": "Declares", "parameters": {"url": "x"}})
    assert refused.code == 422
    assert "cannot run jobs until its code is fixed" in refused.json["message"]
    assert "secret must be True or False" in refused.json["message"]


@pytest.mark.gen_test
async def test_a_declaration_changed_by_hand_counts_even_with_the_same_size_and_mtime(
        api, write_worker):
    # The server keeps what a worker declares until its file changes: a copy that keeps the
    # size and the modification time (cp -p, rsync -t) is a change too.
    source = '''from jobjoker import Worker

class Counts(Worker):
    parameters = {"count": {"type": "integer", "required": True}}
    def run(self):
        pass
'''
    path = write_worker("Counts", source)
    assert (await api("POST", "/jobs", {"worker": "Counts",
                                        "parameters": {"count": 1}})).code == 201
    before = os.stat(path)
    path.write_text(source.replace('"count"', '"limit"'))  # as long, to the byte
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size
    refused = await api("POST", "/jobs", {"worker": "Counts", "parameters": {"count": 1}})
    assert refused.code == 422 and "limit is required" in refused.json["message"], refused


# --- secrets in fields derived from the job's output (issue 12, High 5) --------------------

LEAKING = '''import os, sys
from jobjoker import Worker, jobdir


class Leaks(Worker):
    """Fails in a way that puts its secret in the job's error."""

    parameters = {"how": {"type": "string"}, "jobs_dir": {"type": "string", "default": ""},
                  "key": {"type": "string", "secret": True}}

    def run(self):
        key = self.params["key"]
        if self.params["how"] == "raise":
            raise ValueError("bad key %s" % key)
        if self.params["how"] == "repr":
            raise KeyError(key)
        if self.params["how"] == "exit":
            sys.exit("cannot use key " + key)
        # The worker writes the run-end record itself (as an old runner could): the server
        # masks what it says too.
        folder = jobdir.path_of(self.params["jobs_dir"], os.environ["JOBJOKER_JOB_ID"])
        jobdir.write_record(folder, jobdir.RUN_END,
                            {"outcome": "error", "returncode": 3, "error": "key " + key})
        os._exit(3)
'''


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("how", ["raise", "repr", "exit", "own-record"])
async def test_a_secret_in_a_failure_never_reaches_the_error_field(
        how, api, ws_connect, wait_for_status, server, write_worker):
    write_worker("Leaks", LEAKING)
    secret = 'k3y-"it\'s"-' + SECRET  # repr escapes a quote here: masked in that form too
    events = await ws_connect("/events")
    created = await api("POST", "/jobs", {"worker": "Leaks", "start": True, "parameters": {
        "how": how, "key": secret, "jobs_dir": os.fspath(server.config.jobs_dir)}})
    assert created.code == 201, created
    job = await wait_for_status(created.data[0]["id"])
    assert job["status"] == "error", job
    assert parameters.MASK in job["error"], job
    texts = [json.dumps(job), (await api("GET", "/jobs/%s/log" % job["id"])).text]
    while True:  # every event up to the one that says it ended
        message = await asyncio.wait_for(events.read_message(), 10)
        texts.append(message)
        event = json.loads(message)
        if event.get("type") == "job" and event["job"]["id"] == job["id"] \
                and event["job"]["status"] == "error":
            break
    events.close()
    for text in texts:
        assert SECRET not in text


def test_a_raw_line_is_never_cut_inside_a_secret():
    # A child's raw output line longer than an entry is cut before its newline arrives: each
    # part is masked on its own, so the cut must not fall inside a secret.
    from jobjoker import spool
    masker = parameters.Masker(parameters.mask_values({"key": SECRET}))
    for shift in range(0, len(SECRET) + 2):
        data = b"x" * (spool.MAX_ENTRY_BYTES + 40 - shift) + SECRET.encode() + b"y" * 30
        consumed, block = spool.parse_log_spool(data, masker=masker)
        rest_consumed, rest = spool.parse_log_spool(data[consumed:] + b"\n", masker=masker)
        assert consumed + rest_consumed == len(data) + 1
        assert SECRET.encode() not in block + rest, shift
        assert (block + rest).count(parameters.MASK.encode()) == 1, shift
