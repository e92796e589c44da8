"""The OpenAPI document (``jobjoker/openapi.py``) against the app it describes.

Four kinds of check keep the document true: its paths and methods are exactly the route table's
and the handlers'; it is valid OpenAPI 3.0; ``GET /openapi.json`` serves it; and real replies of
a real server (a worker, a job that runs, every error the API can give) validate against the
schema the document gives for their path, method, status and content type.
"""
import itertools
import json
import re

import jsonschema
import pytest
import tornado.web

from jobjoker import __version__, errors
from jobjoker.app import routes
from jobjoker.openapi import openapi_document

HANDLER_METHODS = ("get", "post", "put", "delete", "patch")
OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The sizes the server of this module accepts, small so a test can exceed them cheaply.
MAX_BODY, MAX_WORKER, MAX_PARAMETERS = 64 * 1024, 16 * 1024, 1024

SCRATCH_WORKER = b'''from jobjoker import Worker


class Scratch(Worker):
    """Does nothing."""

    def run(self):
        pass
'''


@pytest.fixture
def config_overrides():
    return {"max_body_size": MAX_BODY, "max_worker_size": MAX_WORKER,
            "max_parameters_size": MAX_PARAMETERS}


@pytest.fixture
def document():
    return openapi_document()


# --- from the route table to OpenAPI paths ------------------------------------------------------

def route_paths(pattern):
    """The OpenAPI path shapes a Tornado route pattern serves, with ``{}`` for each parameter.

    ``([^/]+)`` is a path parameter; ``(log|response)`` serves one path per alternative.
    """
    choices = []
    for part in re.split(r"(\([^)]*\))", pattern):
        if part == "([^/]+)":
            choices.append(["{}"])
        elif part.startswith("("):
            words = part[1:-1].split("|")
            assert all(re.fullmatch(r"[\w.-]+", word) for word in words), \
                "cannot turn the group %s of %s into OpenAPI paths" % (part, pattern)
            choices.append(words)
        else:
            assert not re.search(r"[\[\]()*+?{}^$|]", part.replace("\\.", "")), \
                "cannot turn %r of %s into an OpenAPI path" % (part, pattern)
            choices.append([part.replace("\\", "")])
    return ["".join(pieces) for pieces in itertools.product(*choices)]


def shape(template):
    """An OpenAPI path with its parameter names blanked: ``/jobs/{id}`` -> ``/jobs/{}``."""
    return re.sub(r"\{[^}/]+\}", "{}", template)


def served_methods(handler_class):
    """The HTTP methods a handler class implements itself (not Tornado's 405 stand-ins)."""
    return {method for method in HANDLER_METHODS
            if getattr(handler_class, method) is not getattr(tornado.web.RequestHandler, method)}


def served_api():
    """``{path shape: {methods}}`` for every route of the app."""
    served = {}
    for pattern, handler_class in routes():
        for path in route_paths(pattern):
            assert path not in served, "two routes serve %s" % path
            served[path] = served_methods(handler_class)
    return served


def documented_api(document):
    return {shape(path): {key for key in item if key in OPENAPI_METHODS}
            for path, item in document["paths"].items()}


def test_route_paths_converts_tornado_patterns():
    assert route_paths(r"/jobs") == ["/jobs"]
    assert route_paths(r"/openapi.json") == ["/openapi.json"]
    assert route_paths(r"/workers/([^/]+)/code") == ["/workers/{}/code"]
    assert route_paths(r"/jobs/([^/]+)/(log|response)") == ["/jobs/{}/log", "/jobs/{}/response"]


def test_document_has_every_route_and_method_and_nothing_else(document):
    served, documented = served_api(), documented_api(document)
    assert len(documented) == len(document["paths"]), "two paths differ only in parameter names"
    assert sorted(documented) == sorted(served)
    for path, methods in served.items():
        assert methods, "the route %s serves no method" % path
        assert documented[path] == methods, path


# --- the document on its own ---------------------------------------------------------------------

def test_document_is_valid_openapi_3_0(document):
    # In the "test" extra of setup.py; imported here so that its absence fails this test only.
    from openapi_spec_validator import OpenAPIV30SpecValidator, validate
    validate(document, cls=OpenAPIV30SpecValidator)
    json.dumps(document)  # served as JSON: nothing in it that JSON cannot carry


def operations(document):
    for path, item in document["paths"].items():
        for method in OPENAPI_METHODS:
            if method in item:
                yield path, method, item[method]


def test_document_describes_server_auth_and_version(document):
    assert document["openapi"] == "3.0.3"
    assert document["info"]["version"] == __version__
    assert document["servers"] == [{"url": "/"}]
    assert document["components"]["securitySchemes"]["basicAuth"] == {"type": "http",
                                                                      "scheme": "basic"}
    assert document["security"] == [{"basicAuth": []}]
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for path, method, op in operations(document):
        public = path == "/health"
        assert ("security" in op) == public, (path, method)
        assert ("401" in op["responses"]) != public, (path, method)
    assert document["paths"]["/health"]["get"]["security"] == []
    for path, method, op in operations(document):
        assert {"500", "503"} <= set(op["responses"]), (path, method)


def test_items_are_strict(document):
    schemas = document["components"]["schemas"]
    for name in ("Job", "Worker", "Entry", "AppendedEntry", "StatusItem", "PidItem", "Health",
                 "ErrorDetail"):
        assert schemas[name]["additionalProperties"] is False, name
        assert sorted(schemas[name]["required"]) == sorted(schemas[name]["properties"]), name


def test_error_statuses_use_the_error_envelope(document):
    responses = document["components"]["responses"]
    for path, method, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                name = response["$ref"].rsplit("/", 1)[1]
                schema = responses[name]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, status)


# --- OpenAPI 3.0 schemas as JSON Schema ----------------------------------------------------------

def lookup(document, pointer):
    """The node at a local ``$ref`` like ``#/components/schemas/Job``."""
    assert pointer.startswith("#/"), "only local references: %s" % pointer
    node = document
    for key in pointer[2:].split("/"):
        node = node[key.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(node, document):
    """An OpenAPI 3.0 schema as plain JSON Schema: ``$ref``s inlined, ``nullable`` made a type."""
    if isinstance(node, list):
        return [to_json_schema(value, document) for value in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:  # in OpenAPI 3.0 a $ref's siblings are ignored
        return to_json_schema(lookup(document, node["$ref"]), document)
    schema = {key: to_json_schema(value, document) for key, value in node.items()
              if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = schema["enum"] + [None]
        else:
            schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def validator(document, name):
    schema = to_json_schema({"$ref": "#/components/schemas/%s" % name}, document)
    return jsonschema.Draft4Validator(schema)


def test_to_json_schema_turns_nullable_into_a_type():
    document = {"components": {"schemas": {"Item": {
        "type": "object", "properties": {
            "pid": {"type": "integer", "nullable": True},
            "word": {"type": "string", "enum": ["a"], "nullable": True},
            "any": {"oneOf": [{"type": "string"}], "nullable": True}}}}}}
    schema = to_json_schema({"$ref": "#/components/schemas/Item"}, document)
    assert schema["properties"]["pid"] == {"type": ["integer", "null"]}
    assert schema["properties"]["word"] == {"type": ["string", "null"], "enum": ["a", None]}
    jsonschema.validate({"pid": None, "word": None, "any": None}, schema)
    jsonschema.validate({"pid": 1, "word": "a", "any": "x"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"word": "b"}, schema)


def a_job():
    return {"id": "01m8rtezv60hs6kq8t9t", "worker": "Foobar", "status": "idle",
            "parameters": {}, "pid": None, "node": None, "created": 1.5, "starttime": None,
            "stoptime": None, "duration": None, "stop_requested": None, "exit_code": None,
            "exit_signal": None, "error": None, "created_by": "admin", "log_count": 0,
            "response_count": 0}


def test_job_schema_catches_drift(document):
    job = validator(document, "Job")
    job.validate(a_job())
    job.validate(dict(a_job(), status="done", pid=7, node="n", starttime=2.0, stoptime=3.0,
                      duration=1.0, exit_code=0))
    for drifted in (dict(a_job(), surprise=1),            # a field the document lacks
                    {k: v for k, v in a_job().items() if k != "pid"},  # a field gone
                    dict(a_job(), status="running"),      # a status that does not exist
                    dict(a_job(), status=None),           # null where null is not allowed
                    dict(a_job(), pid="7")):              # the wrong type
        assert not job.is_valid(drifted), drifted
    envelope = validator(document, "JobEnvelope")
    envelope.validate({"success": True, "message": "", "total": 1, "data": [a_job()]})
    assert not envelope.is_valid({"success": True, "message": "", "total": 1,
                                  "data": [a_job(), a_job()]})
    assert not envelope.is_valid({"success": False, "message": "", "total": 1,
                                  "data": [a_job()]})


# --- real replies against the document ----------------------------------------------------------

def template_for(document, path):
    """The documented path template that a request path falls under (literal paths first)."""
    path = path.split("?", 1)[0]
    if path in document["paths"]:
        return path
    matches = [template for template in document["paths"]
               if re.fullmatch(re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template)), path)]
    assert len(matches) == 1, "%s matches the documented paths %s" % (path, matches)
    return matches[0]


def check_reply(document, method, path, reply):
    """Assert that ``reply`` is what the document says ``method path`` answers."""
    template = template_for(document, path)
    op = document["paths"][template].get(method.lower())
    assert op is not None, "%s %s is not documented" % (method, template)
    response = op["responses"].get(str(reply.code))
    assert response is not None, "%s %s answered %s, which the document does not list: %r" \
        % (method, path, reply.code, reply)
    if "$ref" in response:
        response = lookup(document, response["$ref"])
    media_type = reply.headers.get("Content-Type", "").split(";")[0].strip()
    assert media_type in response.get("content", {}), \
        "%s %s answered %s as %s; documented: %s" % (method, path, reply.code, media_type,
                                                     sorted(response.get("content", {})))
    schema = to_json_schema(response["content"][media_type]["schema"], document)
    body = reply.json if media_type == "application/json" else reply.text
    try:
        jsonschema.Draft4Validator(schema).validate(body)
    except jsonschema.ValidationError as e:
        raise AssertionError("%s %s -> %s does not match the document: %s at %s\n%r"
                             % (method, path, reply.code, e.message, list(e.absolute_path),
                                reply)) from None
    for name, header in response.get("headers", {}).items():
        if header.get("required"):
            assert name in reply.headers, "%s %s -> %s lacks the header %s" % (
                method, path, reply.code, name)
    return template


@pytest.fixture
def checked_api(api, document):
    """``api`` whose every reply is checked against the document; ``.seen`` records
    ``(template, method, status)`` of each call."""
    seen = set()

    async def call(method, path, body=None, **kwargs):
        reply = await api(method, path, body, **kwargs)
        seen.add((check_reply(document, method, path, reply), method.lower(), reply.code))
        return reply
    call.seen = seen
    return call


@pytest.mark.gen_test
async def test_openapi_json_serves_the_document(checked_api, document):
    reply = await checked_api("GET", "/openapi.json")
    assert reply.code == 200, reply
    assert reply.json == json.loads(json.dumps(document))
    anonymous = await checked_api("GET", "/openapi.json", auth=None)
    assert anonymous.code == 401, anonymous
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.gen_test
async def test_health_needs_no_credentials(checked_api):
    reply = await checked_api("GET", "/health", auth=None)
    assert reply.code == 200, reply
    assert reply.data[0]["version"] == __version__


@pytest.mark.gen_test
async def test_health_unavailable_matches_the_document(app, checked_api, monkeypatch):
    # A database or supervisor that is really gone cannot be arranged per test; the handler's
    # health callable is swapped for one that reports what the server's own check would.
    def unavailable():
        raise errors.Unavailable("the supervisor is not connected")
    monkeypatch.setitem(app.settings, "health", unavailable)
    reply = await checked_api("GET", "/health", auth=None)
    assert reply.code == 503, reply
    assert reply.json["message"] == "the supervisor is not connected"


@pytest.mark.gen_test(timeout=120)
async def test_real_replies_match_the_document(checked_api, document, wait_for_status):
    call = checked_api

    async def expect(code, method, path, body=None, **kwargs):
        reply = await call(method, path, body, **kwargs)
        assert reply.code == code, reply
        return reply

    # server
    await expect(200, "GET", "/health", auth=None)
    await expect(200, "GET", "/")
    await expect(200, "GET", "/openapi.json")
    await expect(401, "GET", "/", auth=None)

    # workers
    listed = await expect(200, "GET", "/workers")
    assert [worker["name"] for worker in listed.data] == ["Foobar", "TestWorker"]
    await expect(200, "GET", "/workers/Foobar")
    code = await expect(200, "GET", "/workers/Foobar/code")
    assert "class Foobar(Worker)" in code.text
    await expect(404, "GET", "/workers/Nope")
    await expect(404, "GET", "/workers/Nope/code")
    await expect(400, "GET", "/workers/not-a-name")
    python = {"Content-Type": "text/x-python"}
    await expect(201, "PUT", "/workers/Scratch", SCRATCH_WORKER, headers=python)
    await expect(200, "PUT", "/workers/Scratch", SCRATCH_WORKER,
                 headers={"Content-Type": "text/plain"})
    broken = await expect(422, "PUT", "/workers/Broken", b"x = (\n", headers=python)
    assert broken.data == [{"line": 1}]
    await expect(413, "PUT", "/workers/Huge", b"#" * (MAX_WORKER + 1), headers=python)
    await expect(200, "DELETE", "/workers/Scratch")
    await expect(404, "DELETE", "/workers/Scratch")

    # a job's whole life
    created = await expect(201, "POST", "/jobs", {"worker": "Foobar", "parameters": None})
    job_id = created.data[0]["id"]
    assert created.headers["Location"] == "/jobs/%s" % job_id
    pid = await expect(200, "GET", "/jobs/%s/pid" % job_id)
    assert pid.data == [{"id": job_id, "pid": None}]
    await expect(409, "PUT", "/jobs/%s/status" % job_id, "stop")
    await expect(400, "PUT", "/jobs/%s/status" % job_id, "done")
    await expect(200, "PUT", "/jobs/%s/status" % job_id, "start")
    await expect(409, "PUT", "/jobs/%s/status" % job_id, '{"status": "start"}')
    job = await wait_for_status(job_id)
    assert job["status"] == "done", job
    await expect(200, "GET", "/jobs/%s" % job_id)
    status = await expect(200, "GET", "/jobs/%s/status" % job_id)
    assert status.data == [{"id": job_id, "status": "done"}]
    pid = await expect(200, "GET", "/jobs/%s/pid" % job_id)
    assert isinstance(pid.data[0]["pid"], int)
    log = await expect(200, "GET", "/jobs/%s/log" % job_id)
    assert "foobar" in [entry["message"] for entry in log.data]
    assert int(log.headers["X-Total-Count"]) == len(log.data)
    page = await expect(200, "GET", "/jobs/%s/log?offset=1&limit=1" % job_id)
    assert page.data == log.data[1:2]
    text = await expect(200, "GET", "/jobs/%s/log?format=text" % job_id)
    assert text.text == "".join(entry["message"] + "\n" for entry in log.data)
    await expect(200, "GET", "/jobs/%s/response" % job_id,
                 headers={"Accept": "text/plain; charset=UTF-8"})
    response = await expect(200, "GET", "/jobs/%s/response" % job_id)
    assert [entry["message"] for entry in response.data] == ["foobar"]
    download = await expect(200, "GET", "/jobs/%s/log/download" % job_id)
    assert download.text == text.text
    assert "attachment" in download.headers["Content-Disposition"]
    await expect(200, "GET", "/jobs/%s/response/download" % job_id)
    appended = await expect(201, "POST", "/jobs/%s/log" % job_id, "from outside")
    assert appended.data[0]["message"] == "from outside"
    await expect(201, "POST", "/jobs/%s/response" % job_id, "an answer")
    await expect(400, "GET", "/jobs/%s/response?limit=-1" % job_id)
    await expect(400, "POST", "/jobs/%s/log" % job_id, b"\xff\xfe")
    await expect(413, "POST", "/jobs/%s/log" % job_id, "x" * (MAX_BODY + 1))
    await expect(405, "PUT", "/jobs/%s/pid" % job_id, "1234")
    await expect(409, "PUT", "/jobs/%s/status" % job_id, "kill")

    # listing and creating, and what they refuse
    done = await expect(200, "GET", "/jobs?status=done&worker=Foobar&offset=0&limit=10")
    assert job_id in [job["id"] for job in done.data]
    await expect(400, "GET", "/jobs?status=bogus")
    await expect(400, "GET", "/jobs?limit=many")
    await expect(400, "POST", "/jobs", "not json")
    await expect(400, "POST", "/jobs", {"parameters": {}})
    await expect(404, "POST", "/jobs", {"worker": "Nope"})
    await expect(422, "POST", "/jobs", {"worker": "Foobar", "parameters": [1]})
    await expect(413, "POST", "/jobs", {"worker": "Foobar",
                                        "parameters": {"big": "x" * MAX_PARAMETERS}})

    # an active job: stop (202), kill (200), and what its being active forbids
    slow = await expect(201, "POST", "/jobs", {"worker": "TestWorker",
                                               "parameters": {"count": 100, "sleep": 0.2}})
    slow_id = slow.data[0]["id"]
    await expect(200, "PUT", "/jobs/%s/status" % slow_id, "start")
    await expect(409, "DELETE", "/jobs/%s" % slow_id)
    await expect(409, "DELETE", "/workers/TestWorker")
    stopping = await expect(202, "PUT", "/jobs/%s/status" % slow_id, "stop")
    assert stopping.data[0]["stop_requested"] is not None
    assert (await wait_for_status(slow_id))["status"] == "stop"
    killed = await expect(201, "POST", "/jobs", {"worker": "TestWorker",
                                                 "parameters": {"count": 100, "sleep": 0.2}})
    killed_id = killed.data[0]["id"]
    await expect(200, "PUT", "/jobs/%s/status" % killed_id, "start")
    await expect(202, "PUT", "/jobs/%s/status" % killed_id, "kill")
    assert (await wait_for_status(killed_id))["status"] == "stop"

    # deleting, and what is gone
    for deleted_id in (job_id, slow_id, killed_id):
        await expect(200, "DELETE", "/jobs/%s" % deleted_id)
    await expect(404, "GET", "/jobs/%s" % job_id)
    await expect(404, "DELETE", "/jobs/%s" % job_id)
    for suffix in ("status", "pid", "log", "response"):
        await expect(404, "GET", "/jobs/%s/%s" % (job_id, suffix))
    await expect(404, "PUT", "/jobs/%s/status" % job_id, "start")
    await expect(404, "PUT", "/jobs/%s/pid" % job_id, "1")
    await expect(404, "POST", "/jobs/%s/log" % job_id, "late")
    await expect(401, "GET", "/jobs", auth=None)
    await expect(401, "POST", "/jobs", {"worker": "Foobar"}, auth=("admin", "wrong"))

    # every documented operation answered with a success, and every kind of failure was seen
    succeeded = {(template, method) for template, method, status in call.seen if status < 300}
    websockets = {"/jobs/{id}/stream", "/events"}  # upgraded, not JSON: test_streams.py
    assert succeeded >= {(path, method) for path, method, _ in operations(document)
                         if (path != "/jobs/{id}/pid" or method != "put")
                         and path not in websockets}
    statuses = {status for _, _, status in call.seen}
    assert statuses >= {200, 201, 202, 400, 401, 404, 405, 409, 413, 422}
