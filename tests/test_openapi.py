"""The OpenAPI document (``jobjoker/openapi.py``) against the app it describes.

Five kinds of check keep the document true: its paths and methods are exactly the route table's
and the handlers'; the role each operation names is the one of the role matrix in
``tests/support.py``, and follows what its handler declares; it is valid OpenAPI 3.0;
``GET /openapi.json`` serves it; and real replies of a real server (a worker, a job that runs,
users, tokens, a browser session, the audit trail, every error the API can give) validate
against the schema the document gives for their path, method, status and content type.
"""
import itertools
import json
import re

import jsonschema
import pytest
import tornado.web

from jobjoker import __version__, errors, parameters
from jobjoker.app import routes
from jobjoker.config import Config
from jobjoker.openapi import openapi_document
from tests.support import MATRIX, PASSWORD, bearer, cookies_of
from tests.webhook_support import exercise_webhooks

HANDLER_METHODS = ("get", "head", "post", "put", "delete", "patch")
OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The sizes the server of this module accepts, small so a test can exceed them cheaply.
MAX_BODY, MAX_WORKER, MAX_PARAMETERS = 64 * 1024, 16 * 1024, 1024

RESULTING_WORKER = b'''from jobjoker import Worker

class Resulting(Worker):
    def run(self):
        self.progress(1, 2, "half")
        self.result({"rows": [1, "two", None]})
'''
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
    return openapi_document(routes())


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


def test_document_describes_server_and_version(document):
    assert document["openapi"] == "3.0.3"
    assert document["info"]["version"] == __version__
    assert document["servers"] == [{"url": "/"}]
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    declared = {tag["name"] for tag in document["tags"]}
    for path, method, op in operations(document):
        assert set(op["tags"]) <= declared, (path, method)
        assert {"500", "503"} <= set(op["responses"]), (path, method)


def matrix_roles():
    """``{(path shape, method): role}`` from the role matrix (tests/support.py)."""
    roles = {}
    for (template, method), role in MATRIX.items():
        for stream in ("log", "response"):
            roles[(shape(template.replace("{stream}", stream)), method.lower())] = role
    return roles


def test_each_operation_names_the_role_of_the_role_matrix(document):
    roles = matrix_roles()
    rules = {"public": "Public:", "viewer": "Role: viewer or above", "self": "Role: any "
             "signed-in user", "operator": "Role: operator or admin.", "admin": "Role: admin."}
    for path, method, op in operations(document):
        role = op["x-jobjoker-role"]
        assert role == roles[(shape(path), method)], (path, method)
        assert op["description"].startswith(rules[role]), (path, method)


def with_job_handler(declarations):
    """The app's route table with ``/jobs/{id}``'s handler replaced by a subclass that has
    these class attributes."""
    table = [tuple(route) for route in routes()]
    index = next(i for i, route in enumerate(table) if route[0] == r"/jobs/([^/]+)")
    pattern, handler_class, *rest = table[index]
    table[index] = (pattern, type("Redeclared", (handler_class,), declarations), *rest)
    return table


def test_roles_are_the_ones_the_handlers_declare():
    item = openapi_document(with_job_handler({"permissions": {"GET": "admin",
                                                              "DELETE": "self"}}))["paths"]
    assert item["/jobs/{id}"]["get"]["x-jobjoker-role"] == "admin"
    assert item["/jobs/{id}"]["get"]["description"].startswith("Role: admin.")
    assert item["/jobs/{id}"]["delete"]["x-jobjoker-role"] == "self"
    assert item["/jobs/{id}/status"]["get"]["x-jobjoker-role"] == "viewer"  # not redeclared


def test_an_undeclared_method_gets_the_fail_closed_default():
    item = openapi_document(with_job_handler({"permissions": {}}))["paths"]["/jobs/{id}"]
    assert item["get"]["x-jobjoker-role"] == "viewer"  # safe: read
    assert item["delete"]["x-jobjoker-role"] == "admin"  # unsafe: admin


def test_a_handler_that_needs_no_authentication_is_public():
    item = openapi_document(with_job_handler({"auth_required": False}))["paths"]["/jobs/{id}"]
    for op in item["get"], item["delete"]:
        assert op["x-jobjoker-role"] == "public" and op["security"] == []
        assert not {"401", "429"} & set(op["responses"])


def test_a_permission_that_no_role_has_is_an_error():
    with pytest.raises(ValueError, match="declares superuser for GET"):
        openapi_document(with_job_handler({"permissions": {"GET": "superuser"}}))


def test_a_path_that_no_route_serves_is_an_error():
    table = [route for route in routes() if route[0] != r"/audit"]
    with pytest.raises(LookupError, match="/audit"):
        openapi_document(table)


def test_credentials_and_what_they_can_be_refused(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "basicAuth": dict(schemes["basicAuth"], type="http", scheme="basic"),
        "bearerAuth": dict(schemes["bearerAuth"], type="http", scheme="bearer",
                           bearerFormat="jj_<id>_<secret>"),
        "sessionCookie": dict(schemes["sessionCookie"], type="apiKey", name="jobjoker_session",
                              **{"in": "cookie"}),
        "xsrfToken": dict(schemes["xsrfToken"], type="apiKey", name="X-XSRFToken",
                          **{"in": "header"}),
    }
    # any one of them, globally; the session cookie needs the XSRF token on unsafe methods
    assert document["security"] == [{"basicAuth": []}, {"bearerAuth": []},
                                    {"sessionCookie": []}]
    unsafe = [{"basicAuth": []}, {"bearerAuth": []}, {"sessionCookie": [], "xsrfToken": []}]
    for path, method, op in operations(document):
        role, responses = op["x-jobjoker-role"], op["responses"]
        assert "403" in responses, (path, method)  # the Host check spares no one
        if role == "public":
            assert op["security"] == [], (path, method)
            continue
        assert op.get("security") == (None if method == "get" else unsafe), (path, method)
        assert {"401", "429"} <= set(responses), (path, method)
    public = {(path, method) for path, method, op in operations(document)
              if op["x-jobjoker-role"] == "public"}
    assert public == {("/health", "get"), ("/health", "head"), ("/login", "get"),
                      ("/session", "post")}
    assert "429" in document["paths"]["/session"]["post"]["responses"]
    too_many = document["components"]["responses"]["TooManyRequests"]
    assert too_many["headers"]["Retry-After"]["required"] is True


def test_declared_parameters_are_documented_key_for_key(document):
    spec = document["components"]["schemas"]["ParameterSpec"]
    assert set(spec["properties"]) == parameters.KEYS and spec["additionalProperties"] is False
    assert spec["properties"]["type"]["enum"] == list(parameters.TYPES)


def test_items_are_strict(document):
    schemas = document["components"]["schemas"]
    for name in ("Job", "Worker", "Entry", "AppendedEntry", "StatusItem", "PidItem", "Health",
                 "ErrorDetail", "Session", "User", "Token", "TokenCreated", "AuditEntry"):
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
            "response_count": 0, "revision": 0, "timeout": None, "deadline": None,
            "stop_reason": None, "pause_requested": None, "progress": None,
            "progress_message": None, "result_size": None, "rerun_of": None, "code_hash": None,
            "cpu_seconds": None, "rss_bytes": None, "max_rss_bytes": None, "start_at": None,
            "queued": None, "reason": None, "schedule_id": None, "retry_of": None,
            "attempt": None, "queue_position": None,
            "retries": None, "retry_delay": None, "retry_backoff": None, "retry_on_timeout": None}


def test_job_schema_catches_drift(document):
    job = validator(document, "Job")
    job.validate(a_job())
    job.validate(dict(a_job(), status="done", pid=7, node="n", starttime=2.0, stoptime=3.0,
                      duration=1.0, exit_code=0, reason="completed", attempt=1))
    for drifted in (dict(a_job(), surprise=1),            # a field the document lacks
                    {k: v for k, v in a_job().items() if k != "pid"},  # a field gone
                    dict(a_job(), status="running"),      # a status that does not exist
                    dict(a_job(), status=None),           # null where null is not allowed
                    dict(a_job(), pid="7"),               # the wrong type
                    dict(a_job(), reason="gremlins")):    # a reason that does not exist
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
    if "content" not in response:  # a redirect, say
        assert not reply.body, "%s %s -> %s has a body the document does not describe: %r" % (
            method, path, reply.code, reply)
        return template
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
    assert reply.data == [{"status": "ok"}]  # up, and nothing more for strangers
    signed_in = await checked_api("GET", "/health")
    assert signed_in.data[0]["version"] == __version__


@pytest.mark.gen_test
async def test_health_unavailable_matches_the_document(app, checked_api, monkeypatch):
    # A database or supervisor that is really gone cannot be arranged per test; the handler's
    # health callable is swapped for one that reports what the server's own check would.
    def unavailable():
        raise errors.Unavailable("the supervisor is not connected")
    monkeypatch.setitem(app.settings, "health", unavailable)
    reply = await checked_api("GET", "/health")
    assert reply.code == 503, reply
    assert reply.json["message"] == "the supervisor is not connected"
    anonymous = await checked_api("GET", "/health", auth=None)
    assert anonymous.code == 503, anonymous
    assert "supervisor" not in anonymous.json["message"]


def expecting(call):
    """``await expect(code, method, path, body, **kwargs)``: ``call``, asserting the status."""
    async def expect(code, method, path, body=None, **kwargs):
        reply = await call(method, path, body, **kwargs)
        assert reply.code == code, reply
        return reply
    return expect


async def exercise_session(expect):
    """Who am I with Basic; log in, use the cookie (and the XSRF token), log out."""
    me = await expect(200, "GET", "/session")
    assert me.data[0]["username"] == "admin" and me.data[0]["scheme"] == "basic"
    await expect(401, "POST", "/session", {"username": "admin", "password": "wrong"}, auth=None)
    await expect(400, "POST", "/session", {"username": "admin"}, auth=None)
    await expect(400, "POST", "/session", "not json", auth=None)
    await expect(413, "POST", "/session", "x" * (MAX_BODY + 1), auth=None)
    login = await expect(201, "POST", "/session", {"username": "admin", "password": PASSWORD},
                         auth=None)
    jar = cookies_of(login)
    xsrf = login.data[0]["xsrf"]
    assert jar["_xsrf"][0] == xsrf
    cookie = {"Cookie": "jobjoker_session=%s; _xsrf=%s" % (jar["jobjoker_session"][0], xsrf)}
    me = await expect(200, "GET", "/session", auth=None, headers=cookie)
    assert me.data[0] == {"username": "admin", "role": "admin", "scheme": "session",
                          "xsrf": me.data[0]["xsrf"]}
    await expect(403, "DELETE", "/session", auth=None, headers=cookie)  # no XSRF token
    await expect(200, "DELETE", "/session", auth=None, headers=dict(cookie, **{
        "X-XSRFToken": xsrf}))
    await expect(401, "GET", "/session", auth=None, headers=cookie)  # revoked


async def exercise_users(expect):
    """Create, read, change and delete a user; what a lesser role is refused. Returns the
    user's credentials (an operator by then)."""
    ann = ("ann", "a long passphrase")
    created = await expect(201, "POST", "/users", {"username": "ann", "password": ann[1],
                                                   "role": "viewer"})
    assert created.data[0]["role"] == "viewer" and created.data[0]["disabled"] is False
    await expect(409, "POST", "/users", {"username": "ann", "password": ann[1]})
    await expect(400, "POST", "/users", {"username": "../x", "password": ann[1]})
    await expect(422, "POST", "/users", {"username": "bo", "password": "short"})
    await expect(422, "POST", "/users", {"username": "bo", "password": ann[1], "role": "root"})
    await expect(413, "POST", "/users", "x" * (MAX_BODY + 1))
    listed = await expect(200, "GET", "/users")
    assert [user["username"] for user in listed.data] == ["admin", "ann"]
    await expect(200, "GET", "/users/ann")
    await expect(404, "GET", "/users/nobody")
    # a viewer: herself, but no one else, and nothing above her role
    await expect(200, "GET", "/users/ann", auth=ann)
    await expect(403, "GET", "/users/admin", auth=ann)
    await expect(403, "GET", "/users", auth=ann)
    await expect(403, "POST", "/jobs", {"worker": "Foobar"}, auth=ann)
    await expect(403, "PUT", "/users/ann/password", {"current": "wrong", "password": "x" * 12},
                 auth=ann)
    await expect(403, "PUT", "/users/admin/password", {"current": ann[1], "password": "x" * 12},
                 auth=ann)
    await expect(200, "PUT", "/users/ann/password", {"current": ann[1], "password":
                                                     "another long passphrase"}, auth=ann)
    ann = ("ann", "another long passphrase")
    await expect(422, "PUT", "/users/ann/password", {"password": "short"})
    await expect(404, "PUT", "/users/nobody/password", {"password": "x" * 12})
    await expect(400, "PUT", "/users/ann/password", [])
    await expect(400, "PUT", "/users/ann/password", {"current": {}, "password": "x" * 12})
    changed = await expect(200, "PATCH", "/users/ann", {"role": "operator"})
    assert changed.data[0]["role"] == "operator"
    await expect(400, "PATCH", "/users/ann", {"colour": "red"})
    unchanged = await expect(200, "PATCH", "/users/ann", {})
    assert unchanged.data == changed.data
    await expect(422, "PATCH", "/users/ann", {"role": "root"})
    await expect(404, "PATCH", "/users/nobody", {"disabled": True})
    await expect(409, "PATCH", "/users/admin", {"disabled": True})  # the last active admin
    await expect(409, "DELETE", "/users/admin")
    await expect(403, "DELETE", "/users/admin", auth=ann)
    return ann


async def exercise_tokens(expect, owner):
    """Create a token, use it, list tokens, revoke it."""
    created = await expect(201, "POST", "/tokens", {"name": "ci", "role": "viewer",
                                                    "expires_in": 3600}, auth=owner)
    token = created.data[0]["token"]
    assert token.startswith("jj_%s_" % created.data[0]["id"])
    await expect(200, "GET", "/jobs", auth=None, headers=bearer(token))
    await expect(403, "POST", "/jobs", {"worker": "Foobar"}, auth=None, headers=bearer(token))
    await expect(403, "POST", "/tokens", {"name": "from a token"}, auth=None,
                 headers=bearer(token))
    await expect(403, "POST", "/tokens", {"name": "above", "role": "admin"}, auth=owner)
    await expect(400, "POST", "/tokens", {"name": ""}, auth=owner)
    await expect(400, "POST", "/tokens", {"name": "x", "expires_in": 0}, auth=owner)
    await expect(422, "POST", "/tokens", {"name": "x", "role": "root"}, auth=owner)
    await expect(201, "POST", "/tokens", {"name": "admin's"})
    mine = await expect(200, "GET", "/tokens", auth=owner)
    assert [t["name"] for t in mine.data] == ["ci"]
    everyone = await expect(200, "GET", "/tokens?user=*")
    assert sorted(t["name"] for t in everyone.data) == ["admin's", "ci"]
    await expect(200, "GET", "/tokens?user=ann")
    await expect(403, "GET", "/tokens?user=admin", auth=owner)
    admins = next(t for t in everyone.data if t["name"] == "admin's")
    await expect(404, "DELETE", "/tokens/%s" % admins["id"], auth=owner)  # not hers to see
    revoked = await expect(200, "DELETE", "/tokens/%s" % created.data[0]["id"], auth=owner)
    assert revoked.data[0]["revoked"] is not None
    await expect(404, "DELETE", "/tokens/nosuch")
    await expect(401, "GET", "/jobs", auth=None, headers=bearer(token))


async def exercise_audit(expect, operator):
    """Read the trail, filtered and paged; a lesser role is refused."""
    trail = await expect(200, "GET", "/audit?actor=ann&action=token.create&offset=0&limit=1000")
    assert [(e["actor"], e["action"]) for e in trail.data] == [("ann", "token.create")]
    everything = await expect(200, "GET", "/audit")
    assert {"login.ok", "login.failed", "logout", "user.create", "user.update",
            "user.password", "token.create", "token.revoke"} <= {
        e["action"] for e in everything.data}
    await expect(400, "GET", "/audit?limit=1001")
    await expect(400, "GET", "/audit?offset=-1")
    await expect(403, "GET", "/audit", auth=operator)


async def exercise_schedules(expect, wait_for_status):
    """Every schedule operation, a run-now that makes a job and one that fails, bad input."""
    created = await expect(201, "POST", "/schedules", {
        "worker": "TestWorker", "cron": "0 3 * * *", "timezone": "Europe/Berlin",
        "parameters": {"count": 1, "sleep": 0}})
    path = "/schedules/%s" % created.data[0]["id"]
    await expect(400, "POST", "/schedules", {"worker": "TestWorker", "cron": "61 * * * *"})
    await expect(200, "GET", "/schedules?offset=0&limit=10")
    await expect(200, "PATCH", path, {"cron": "@hourly", "missed": "run_once"})
    await expect(400, "PATCH", path, {"timezone": "Mars/Olympus"})
    ran = await expect(201, "POST", path + "/run")
    await wait_for_status(ran.data[0]["runs"][0]["job"])
    await expect(200, "GET", path)
    await expect(200, "POST", path + "/pause")
    await expect(409, "POST", path + "/pause")
    await expect(200, "POST", path + "/resume")
    gone = await expect(201, "POST", "/schedules", {"worker": "Foobar", "cron": "@daily"})
    await expect(200, "DELETE", "/workers/Foobar")
    await expect(200, "POST", "/schedules/%s/run" % gone.data[0]["id"])
    await expect(200, "DELETE", path)
    await expect(404, "GET", path)


@pytest.mark.gen_test(timeout=120)
async def test_real_replies_match_the_document(checked_api, document, wait_for_status):
    call = checked_api
    expect = expecting(call)

    # server
    await expect(200, "GET", "/health", auth=None)
    await expect(200, "GET", "/health")
    await expect(200, "HEAD", "/health", auth=None)
    metrics = await expect(200, "GET", "/metrics")
    assert "jobjoker_jobs{" in metrics.text
    await expect(401, "GET", "/metrics", auth=None)
    await expect(200, "GET", "/")
    await expect(200, "GET", "/openapi.json")
    foreign = await expect(200, "GET", "/streams/origin?origin=http%3A%2F%2Fevil.example")
    assert foreign.data[0]["allowed"] is False and "--allowed-origins" in foreign.json["message"]
    await expect(400, "GET", "/streams/origin?origin=evil.example")
    await expect(401, "GET", "/", auth=None)
    browser = await expect(302, "GET", "/", auth=None, headers={"Accept": "text/html"})
    assert browser.headers["Location"] == "/login"
    await expect(200, "GET", "/login", auth=None)
    page = await expect(401, "GET", "/jobs", auth=None, headers={"X-Requested-With": "JobJoker"})
    assert "WWW-Authenticate" not in page.headers

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
    await expect(200, "GET", "/jobs/%s/usage" % job_id)
    await expect(404, "GET", "/jobs/%s/result" % job_id)  # Foobar stores none
    await expect(201, "PUT", "/workers/Resulting", RESULTING_WORKER, headers=python)
    resulting = await expect(201, "POST", "/jobs", {"worker": "Resulting", "start": True})
    await wait_for_status(resulting.data[0]["id"])
    with_result = await expect(200, "GET", "/jobs/%s" % resulting.data[0]["id"])
    assert with_result.data[0]["result"] == {"rows": [1, "two", None]}
    alone = await expect(200, "GET", "/jobs/%s/result" % resulting.data[0]["id"])
    assert alone.data == [{"rows": [1, "two", None]}]
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
    refused = await expect(405, "PUT", "/jobs/%s/pid" % job_id, "1234")
    code = await expect(200, "GET", "/jobs/%s/code" % job_id)
    await expect(200, "GET", "/jobs/%s/code/diff" % job_id)
    await expect(200, "GET", "/jobs/%s/attempts" % job_id)
    await expect(200, "GET", "/workers/Foobar/versions")
    await expect(200, "GET", "/workers/Foobar/versions/%s" % code.data[0]["hash"])
    await expect(404, "GET", "/workers/Foobar/versions/%s" % ("0" * 64))
    await expect(201, "POST", "/jobs/%s/rerun" % job_id, {"start": False})
    await expect(404, "GET", "/jobs/nosuchjob0/code")
    assert refused.headers["Allow"] == "GET"
    await expect(409, "PUT", "/jobs/%s/status" % job_id, "kill")

    # listing and creating, and what they refuse
    done = await expect(200, "GET", "/jobs?status=done&worker=Foobar&offset=0&limit=10")
    assert job_id in [job["id"] for job in done.data]
    await expect(400, "GET", "/jobs?status=bogus")
    await expect(400, "GET", "/jobs?limit=many")
    await expect(400, "GET", "/jobs?offset=%d" % 2 ** 64)  # past the database's integers
    await expect(200, "GET", "/jobs?status=&worker=&offset=&limit=")  # empty: as if absent
    await expect(400, "POST", "/jobs", "not json")
    await expect(400, "POST", "/jobs", {"parameters": {}})
    await expect(404, "POST", "/jobs", {"worker": "Nope"})
    await expect(422, "POST", "/jobs", {"worker": "Foobar", "parameters": [1]})
    await expect(413, "POST", "/jobs", {"worker": "Foobar",
                                        "parameters": {"big": "x" * MAX_PARAMETERS}})
    started = await expect(201, "POST", "/jobs", {"worker": "Foobar", "start": True})
    assert started.data[0]["pid"] is not None
    batch = await expect(201, "POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * 2,
                                                      "start": True})
    assert [job["pid"] is not None for job in batch.data] == [True, True]
    await expect(201, "POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}]})
    await expect(400, "POST", "/jobs/batch", {"jobs": [{"worker": "Nope"}]})
    await expect(400, "POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * (Config.max_batch + 1)})

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
    for suffix in ("status", "pid", "log", "response", "usage"):
        await expect(404, "GET", "/jobs/%s/%s" % (job_id, suffix))
    await expect(404, "PUT", "/jobs/%s/status" % job_id, "start")
    await expect(404, "PUT", "/jobs/%s/pid" % job_id, "1")
    await expect(404, "POST", "/jobs/%s/log" % job_id, "late")
    await expect(401, "GET", "/jobs", auth=None)
    await expect(401, "POST", "/jobs", {"worker": "Foobar"}, auth=("admin", "wrong"))

    # the browser session, users, tokens and the audit trail
    await exercise_session(expect)
    operator = await exercise_users(expect)
    await exercise_tokens(expect, operator)
    await exercise_audit(expect, operator)
    await exercise_schedules(expect, wait_for_status)
    await exercise_webhooks(expect)
    await expect(200, "DELETE", "/users/ann")
    await expect(404, "DELETE", "/users/ann")
    await expect(401, "GET", "/jobs", auth=operator)

    # every documented operation answered with a success, and every kind of failure was seen
    succeeded = {(template, method) for template, method, status in call.seen if status < 300}
    websockets = {"/jobs/{id}/stream", "/events"}  # upgraded, not JSON: test_streams.py
    assert succeeded >= {(path, method) for path, method, _ in operations(document)
                         if (path != "/jobs/{id}/pid" or method != "put")
                         and path not in websockets}
    statuses = {status for _, _, status in call.seen}
    # 429: test_throttled_logins_match_the_document
    assert statuses >= {200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 422}


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"login_failures": 2}])
async def test_throttled_logins_match_the_document(checked_api, config_overrides):
    expect = expecting(checked_api)
    for _ in range(2):
        await expect(401, "GET", "/jobs", auth=("admin", "wrong"))
    throttled = await expect(429, "GET", "/jobs", auth=("admin", "wrong"))
    assert int(throttled.headers["Retry-After"]) >= 1
    await expect(429, "GET", "/session", auth=("admin", PASSWORD))
    await expect(429, "POST", "/session", {"username": "admin", "password": PASSWORD},
                 auth=None)
    assert {(template, method, status) for template, method, status in checked_api.seen} >= {
        ("/jobs", "get", 429), ("/session", "get", 429), ("/session", "post", 429)}
