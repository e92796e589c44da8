"""JSON bodies and the keys they may hold (``jobjoker/bodies.py``, ``APIHandler.json_body``).

A key a route does not take is refused on every route that reads a JSON body: 400, the key named,
a "did you mean" when it is close to one the route takes, and nothing created or changed. A
misspelt ``params`` or ``strat`` must never be taken for an absent key and quietly get its
default. The list of routes here is checked against the OpenAPI document, so a new route with a
JSON body cannot be left out, and each documented schema names exactly the keys its handler
takes.
"""
import re

import pytest

from jobjoker import accounts, jobspec, models, rerun, schedulespec, webhooks
from jobjoker.app import routes
from jobjoker.bodies import check_keys, did_you_mean
from jobjoker.errors import BadRequest
from jobjoker.handlers.jobs import COMMAND_KEYS
from jobjoker.openapi import openapi_document
from tests.support import PASSWORD

# (method, OpenAPI path, body with unknown keys, words the refusal must hold)
REFUSALS = {
    "create a job": (
        "POST", "/jobs", {"worker": "Foobar", "params": {"count": 3}, "strat": True},
        ["unknown keys 'params' (did you mean 'parameters'?) and 'strat' (did you mean "
         "'start'?)", "takes worker, parameters, start, timeout, start_at, retries"]),
    "create a batch": (
        "POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}], "strat": True},
        ["unknown key 'strat' (did you mean 'start'?)", "takes jobs, start, timeout, start_at"]),
    "a job of a batch": (
        "POST", "/jobs/batch", {"jobs": [{"worker": "Foobar", "params": {}}]},
        ["jobs[0]: unknown key 'params' (did you mean 'parameters'?)"]),
    "run a job again": (
        "POST", "/jobs/{id}/rerun", {"parameters": {}, "strat": False},
        ["unknown key 'strat' (did you mean 'start'?)", "takes parameters, timeout, start, "
         "retries"]),
    "command a job": (
        "PUT", "/jobs/{id}/status", {"status": "start", "force": True},
        ["unknown key 'force'", "takes status"]),
    "create a user": (
        "POST", "/users", {"username": "bob", "password": "a long passphrase", "rol": "admin"},
        ["unknown key 'rol' (did you mean 'role'?)"]),
    "change a user": (
        "PATCH", "/users/{name}", {"role": "admin", "disabld": True},
        ["unknown key 'disabld' (did you mean 'disabled'?)", "/users/NAME/password"]),
    "set a password": (
        "PUT", "/users/{name}/password", {"password": "another passphrase", "curent": "x"},
        ["unknown key 'curent' (did you mean 'current'?)"]),
    "create a token": (
        "POST", "/tokens", {"name": "nightly", "expires": 60},
        ["unknown key 'expires' (did you mean 'expires_in'?)"]),
    "create a schedule": (
        "POST", "/schedules", {"worker": "Foobar", "cron": "@daily", "timezone": "UTC",
                               "overlp": "skip"},
        ["unknown key 'overlp' (did you mean 'overlap'?)"]),
    "change a schedule": (
        "PATCH", "/schedules/{id}", {"crom": "@hourly"},
        ["unknown key 'crom' (did you mean 'cron'?)"]),
    "create a webhook": (
        "POST", "/webhooks", {"url": "http://127.0.0.1:9/hook", "statusses": ["error"]},
        ["unknown key 'statusses' (did you mean 'statuses'?)"]),
    "change a webhook": (
        "PATCH", "/webhooks/{id}", {"enabeld": False},
        ["unknown key 'enabeld' (did you mean 'enabled'?)"]),
    "sign in": (
        "POST", "/session", {"username": "admin", "password": PASSWORD, "remember": True},
        ["unknown key 'remember'", "takes username and password"]),
}

# The schema each documented JSON body has, and the keys its handler takes.
SCHEMA_KEYS = {
    "JobCreate": jobspec.JOB_KEYS, "JobBatch": jobspec.BATCH_KEYS, "Login": accounts.LOGIN_KEYS,
    "UserCreate": accounts.USER_KEYS, "UserUpdate": accounts.USER_UPDATE_KEYS,
    "PasswordChange": accounts.PASSWORD_KEYS, "TokenCreate": accounts.TOKEN_KEYS,
    "JobRerun": rerun.RERUN_KEYS, "ScheduleCreate": schedulespec.SCHEDULE_KEYS,
    "ScheduleChange": schedulespec.SCHEDULE_KEYS, "WebhookCreate": webhooks.FIELDS,
    "WebhookChange": webhooks.FIELDS,
}


def everything():
    """Every row of every table a request could change, to compare before and after."""
    return {model.__name__: sorted(map(repr, model.select().tuples()))
            for model in (models.Job, models.User, models.Token, models.Session,
                          models.AuditEntry, models.Schedule, models.Webhook)}


def json_operations(document):
    """(method, path) of each operation whose body may be JSON."""
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict)
            and "application/json" in operation.get("requestBody", {}).get("content", {})}


def test_every_route_with_a_json_body_is_checked_here():
    documented = json_operations(openapi_document(routes()))
    assert documented == {(method, path) for method, path, _, _ in REFUSALS.values()}


def test_each_documented_body_names_exactly_the_keys_its_handler_takes():
    schemas = openapi_document(routes())["components"]["schemas"]
    for name, keys in SCHEMA_KEYS.items():
        assert schemas[name]["additionalProperties"] is False, name
        assert set(schemas[name]["properties"]) == set(keys), name
    spec = schemas["JobBatch"]["properties"]["jobs"]["items"]
    assert spec["additionalProperties"] is False
    assert set(spec["properties"]) == set(jobspec.SPEC_KEYS)
    [_, command] = openapi_document(routes())["paths"]["/jobs/{id}/status"]["put"][
        "requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert command["additionalProperties"] is False
    assert set(command["properties"]) == set(COMMAND_KEYS)


@pytest.mark.parametrize("case", sorted(REFUSALS))
@pytest.mark.gen_test(timeout=60)
async def test_an_unknown_key_is_refused_and_changes_nothing(api, make_user, case):
    method, path, body, words = REFUSALS[case]
    make_user("ann", "operator")
    idle = await api("POST", "/jobs", {"worker": "Foobar"})
    path = path.replace("{id}", idle.data[0]["id"]).replace("{name}", "ann")
    before = everything()
    reply = await api(method, path, body)
    assert reply.code == 400, reply
    assert reply.json["success"] is False
    for word in words:
        assert word in reply.json["message"], "%r lacks %r" % (reply.json["message"], word)
    assert "Set-Cookie" not in reply.headers
    assert everything() == before


@pytest.mark.gen_test(timeout=60)
async def test_the_same_bodies_with_known_keys_are_taken(api, make_user):
    """The refusals above are of the keys, not of the rest of the body."""
    make_user("ann", "operator")
    created = await api("POST", "/jobs", {"worker": "Foobar", "parameters": {}, "start": False})
    assert created.code == 201, created
    job_id = created.data[0]["id"]
    assert (await api("PUT", "/jobs/%s/status" % job_id, {"status": "start"})).code == 200
    assert (await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar", "parameters": {}}],
                                              "start": False})).code == 201
    assert (await api("POST", "/jobs/%s/rerun" % job_id, {"parameters": {}, "timeout": None,
                                                          "start": False})).code == 201
    assert (await api("POST", "/users", {"username": "bob", "password": "a long passphrase",
                                         "role": "viewer"})).code == 201
    assert (await api("PATCH", "/users/ann", {"role": "viewer", "disabled": False})).code == 200
    assert (await api("PUT", "/users/ann/password", {"password": "another passphrase"})
            ).code == 200
    assert (await api("POST", "/tokens", {"name": "nightly", "expires_in": 60})).code == 201
    assert (await api("POST", "/session", {"username": "admin", "password": PASSWORD},
                      auth=None)).code == 201


def test_did_you_mean_suggests_only_a_close_key():
    assert did_you_mean("params", jobspec.JOB_KEYS) == "parameters"
    assert did_you_mean("strat", jobspec.JOB_KEYS) == "start"
    assert did_you_mean("Worker", jobspec.JOB_KEYS) == "worker"
    assert did_you_mean("colour", jobspec.JOB_KEYS) is None


def test_check_keys_names_every_unknown_key_and_passes_the_rest():
    check_keys({"worker": "X"}, jobspec.JOB_KEYS)
    check_keys(["not", "an", "object"], jobspec.JOB_KEYS)  # its reader says what shape it wants
    with pytest.raises(BadRequest) as refused:
        check_keys({"a": 1, "b": 2, "c": 3}, ("status",))
    assert refused.value.message == ("unknown keys 'a', 'b' and 'c'; the body takes status")
    with pytest.raises(BadRequest) as refused:
        check_keys({str(n): n for n in range(12)} | {"x" * 100: 0}, ("status",))
    message = refused.value.message
    assert "'9'" in message and "'10'" not in message and "3 more" in message
    with pytest.raises(BadRequest) as refused:
        check_keys({"x" * 100: 0}, ("status",))
    assert "'%s...'" % ("x" * 40) in refused.value.message  # a long key is not echoed whole


# --- query parameters: the same rule for a URL's ------------------------------------------------

def test_each_route_takes_exactly_the_query_parameters_it_documents():
    """A handler's ``query_names`` and the OpenAPI document's query parameters are one list
    (the route that matches first, as Tornado picks it)."""
    document = openapi_document(routes())
    shared = document["components"]["parameters"]
    table = [(re.compile(pattern + "$"), handler) for pattern, handler, *_ in routes()]
    for path, item in document["paths"].items():
        concrete = path.replace("{id}", "01m8rz9p6ppsjmzp4wtz").replace("{name}", "ann")
        handler = next(handler for pattern, handler in table if pattern.match(concrete))
        for method, operation in item.items():
            if not isinstance(operation, dict) or handler.query_names is None:
                continue
            parameters = [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
                          for p in operation.get("parameters", ())]
            documented = {p["name"] for p in parameters if p["in"] == "query"}
            taken = set(handler.query_names.get(method.upper(), ()))
            assert taken == documented, (method, path)


QUERY_REFUSALS = [
    ("/jobs?stauts=active", ["unknown query parameter 'stauts' (did you mean 'status'?)",
                             "GET /jobs takes status, worker, offset and limit"]),
    ("/jobs/{id}/log?serach=x&limit=5", ["unknown query parameter 'serach' (did you mean "
                                         "'search'?)"]),
    ("/jobs/{id}/log/download?format=text", ["unknown query parameter 'format'",
                                             "takes no query parameters"]),
    ("/workers?all=1", ["unknown query parameter 'all'"]),
    ("/audit?actors=admin", ["unknown query parameter 'actors' (did you mean 'actor'?)"]),
    ("/tokens?users=*", ["unknown query parameter 'users' (did you mean 'user'?)"]),
]


@pytest.mark.gen_test(timeout=60)
async def test_an_unknown_query_parameter_is_refused(api):
    """A misspelt filter must not give the unfiltered list as if it were the filtered one."""
    job_id = (await api("POST", "/jobs", {"worker": "Foobar"})).data[0]["id"]
    for path, words in QUERY_REFUSALS:
        reply = await api("GET", path.replace("{id}", job_id))
        assert reply.code == 400, (path, reply)
        for word in words:
            assert word in reply.json["message"], "%r lacks %r" % (reply.json["message"], word)
    taken = await api("GET", "/jobs?status=idle&worker=Foobar&offset=0&limit=5")
    assert taken.code == 200 and [j["id"] for j in taken.data] == [job_id]
    assert (await api("GET", "/jobs/%s/log?search=x&ignore_case=1&offset=0&limit=5&format=text"
                      % job_id)).code == 200


@pytest.mark.gen_test(timeout=60)
async def test_a_stream_refuses_an_unknown_query_parameter_before_the_upgrade(api):
    job_id = (await api("POST", "/jobs", {"worker": "Foobar"})).data[0]["id"]
    reply = await api("GET", "/jobs/%s/stream?log_form=3" % job_id)
    assert reply.code == 400, reply
    assert "unknown query parameter 'log_form' (did you mean 'log_from'?)" in \
        reply.json["message"]
