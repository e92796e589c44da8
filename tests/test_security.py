"""Security: who may do what, with which credentials, and what is refused.

The role matrix (``tests/support.py``) is written out from the issue, not derived from the code;
a test checks that every route of the application's own route table appears in it, so a new route
cannot ship without a decision about who may use it.
"""
import asyncio
import re
import time

import pytest
import tornado.httpclient

from jobjoker import auth, models, roles
from jobjoker.app import routes
from tests.support import MATRIX, PASSWORD, PUBLIC, SELF, bearer, cookies_of, poll

WEBSOCKETS = {"/jobs/{id}/stream", "/events"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def template(pattern):
    names = iter(["{id}" if pattern.startswith(("/jobs", "/tokens", "/schedules")) else "{name}",
                  "{hash}" if "/versions/" in pattern else "{stream}"])
    return re.sub(r"\([^)]*\)", lambda _: next(names), pattern)


def implemented(handler):
    import tornado.web
    return [m for m in METHODS if getattr(handler, m.lower()) is not
            getattr(tornado.web.RequestHandler, m.lower())]


def test_every_route_and_method_has_a_decided_role():
    served = set()
    for pattern, handler, *_ in routes():
        for method in implemented(handler):
            served.add((template(pattern), method))
    assert served == set(MATRIX), (served ^ set(MATRIX))


def concrete(path, username):
    return (path.replace("{id}", "nosuchid").replace("{stream}", "log")
            .replace("{hash}", "0" * 64)
            .replace("/users/{name}", "/users/" + username).replace("{name}", "NoSuchWorker"))


BODIES = {"POST": "{}", "PUT": "{}", "PATCH": "{}"}


@pytest.mark.gen_test(timeout=120)
async def test_the_role_matrix_allowed_and_refused(api, ws_connect, make_user, server):
    users = {role: make_user("a-" + role, role) for role in roles.ROLES}
    for (path, method), least in sorted(MATRIX.items()):
        if least == PUBLIC:
            continue
        for role, credentials in users.items():
            # a user's own name where the route is about oneself, else one that does not exist
            target = concrete(path, credentials[0] if least == SELF else "nobody-here")
            if path in WEBSOCKETS:
                target = target.replace("nosuchid", (await api(
                    "POST", "/jobs", {"worker": "Foobar"})).data[0]["id"])
                connection = await ws_connect(target, auth=credentials)
                connection.close()
                continue
            reply = await api(method, target, BODIES.get(method), auth=credentials)
            allowed = least == SELF or roles.ROLES.index(role) >= roles.ROLES.index(least)
            if allowed:
                assert reply.code not in (401, 403), (role, method, target, reply)
            else:
                assert reply.code == 403, (role, method, target, reply)
                assert "your role (%s) may not" % role in reply.json["message"]


@pytest.mark.gen_test(timeout=120)
async def test_every_route_refuses_a_request_without_credentials(api, ws_connect, server):
    job_id = (await api("POST", "/jobs", {"worker": "Foobar"})).data[0]["id"]
    for (path, method), least in sorted(MATRIX.items()):
        target = concrete(path, "admin").replace("nosuchid", job_id)
        if least == PUBLIC:
            continue
        if path in WEBSOCKETS:
            for credentials in (None, ("admin", "wrong")):
                with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
                    await ws_connect(target, auth=credentials)
                assert caught.value.code == 401
            continue
        for credentials in (None, ("admin", "wrong"), ("nobody", PASSWORD)):
            reply = await api(method, target, BODIES.get(method), auth=credentials)
            assert reply.code == 401, (method, target, credentials, reply)
    assert (await api("GET", "/static/index.html", auth=None)).code == 401


# --- tokens ----------------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_tokens_work_as_bearer_are_capped_by_role_and_can_be_revoked(api, make_user):
    operator = make_user("op", "operator")
    created = await api("POST", "/tokens", {"name": "ci", "role": "operator"}, auth=operator)
    assert created.code == 201, created
    token = created.data[0]["token"]
    assert token.startswith("jj_") and created.data[0]["role"] == "operator"
    stored = models.Token.get_by_id(created.data[0]["id"])
    assert token.split("_", 2)[2] not in stored.secret_hash  # only the hash is kept
    job = await api("POST", "/jobs", {"worker": "Foobar"}, auth=None, headers=bearer(token))
    assert job.code == 201 and job.data[0]["created_by"] == "op"

    above = await api("POST", "/tokens", {"name": "x", "role": "admin"}, auth=operator)
    assert above.code == 403 and "cannot be above your own" in above.json["message"]
    viewer_token = (await api("POST", "/tokens", {"name": "ro", "role": "viewer"},
                              auth=operator)).data[0]["token"]
    refused = await api("POST", "/jobs", {"worker": "Foobar"}, auth=None,
                        headers=bearer(viewer_token))
    assert refused.code == 403
    from_token = await api("POST", "/tokens", {"name": "y"}, auth=None, headers=bearer(token))
    assert from_token.code == 403  # a token cannot mint tokens

    listed = await api("GET", "/tokens", auth=operator)
    assert {t["name"] for t in listed.data} == {"ci", "ro"}
    assert all("token" not in t and "secret_hash" not in t for t in listed.data)
    others = await api("GET", "/tokens?user=admin", auth=operator)
    assert others.code == 403
    assert (await api("GET", "/tokens?user=*")).code == 200  # an admin may

    revoked = await api("DELETE", "/tokens/%s" % created.data[0]["id"], auth=operator)
    assert revoked.code == 200 and revoked.data[0]["revoked"]
    assert (await api("GET", "/jobs", auth=None, headers=bearer(token))).code == 401
    assert (await api("GET", "/jobs", auth=None, headers=bearer(token[:-2] + "xx"))).code == 401


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_expired_tokens_and_tokens_of_disabled_users_stop_working(api, make_user):
    viewer = make_user("vi", "viewer")
    before = time.time()
    lasting = (await api("POST", "/tokens", {"name": "lasting", "expires_in": 3600},
                         auth=viewer)).data[0]
    assert before + 3600 <= lasting["expires"] <= time.time() + 3600
    assert (await api("GET", "/jobs", auth=None, headers=bearer(lasting["token"]))).code == 200
    short = (await api("POST", "/tokens", {"name": "short", "expires_in": 0.5},
                       auth=viewer)).data[0]
    # Once its expiry has passed (the event itself, by the clock the server reads), not after
    # a guess at how long that takes.
    await poll(lambda: time.time() > short["expires"], what="the token's expiry")
    assert (await api("GET", "/jobs", auth=None, headers=bearer(short["token"]))).code == 401
    other = (await api("POST", "/tokens", {"name": "other"}, auth=viewer)).data[0]["token"]
    await api("PATCH", "/users/vi", {"disabled": True})
    assert (await api("GET", "/jobs", auth=None, headers=bearer(other))).code == 401


# --- browser sessions --------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"session_lifetime": 90}])
async def test_a_sign_in_lasts_the_session_lifetime_setting(api):
    began = time.time()
    login = await api("POST", "/session", {"username": "admin", "password": PASSWORD},
                      auth=None)
    assert login.code == 201, login
    session, header = cookies_of(login)["jobjoker_session"]
    assert "Max-Age=90" in header
    stored = models.Session.get_by_id(auth.digest(session))
    assert began + 90 <= stored.expires <= time.time() + 90


@pytest.mark.gen_test(timeout=60)
async def test_login_sets_a_strict_httponly_cookie_and_unsafe_requests_need_the_xsrf_token(
        api, base_url):
    failed = await api("POST", "/session", {"username": "admin", "password": "nope"}, auth=None)
    assert failed.code == 401
    login = await api("POST", "/session", {"username": "admin", "password": PASSWORD},
                      auth=None)
    assert login.code == 201, login
    jar = cookies_of(login)
    session, header = jar["jobjoker_session"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    xsrf = login.data[0]["xsrf"]
    assert jar["_xsrf"][0] == xsrf
    cookie = {"Cookie": "jobjoker_session=%s; _xsrf=%s" % (session, xsrf)}

    me = await api("GET", "/session", auth=None, headers=cookie)
    assert me.code == 200 and me.data[0]["username"] == "admin" and me.data[0]["scheme"] == \
        "session"
    assert (await api("GET", "/jobs", auth=None, headers=cookie)).code == 200
    # A cross-site form post carries the cookie but cannot know the XSRF token.
    forged = await api("POST", "/jobs", {"worker": "Foobar"}, auth=None,
                       headers=dict(cookie, Origin="http://evil.example"))
    assert forged.code == 403 and "XSRF" in forged.json["message"]
    assert (await api("GET", "/jobs", auth=None)).code == 401
    allowed = await api("POST", "/jobs", {"worker": "Foobar"}, auth=None,
                        headers=dict(cookie, **{"X-XSRFToken": xsrf}))
    assert allowed.code == 201

    logout = await api("DELETE", "/session", auth=None, headers=dict(cookie, **{
        "X-XSRFToken": xsrf}))
    assert logout.code == 200
    assert (await api("GET", "/jobs", auth=None, headers=cookie)).code == 401  # revoked


@pytest.mark.gen_test(timeout=60)
async def test_a_cross_origin_websocket_with_a_valid_cookie_is_refused(api, ws_connect):
    login = await api("POST", "/session", {"username": "admin", "password": PASSWORD},
                      auth=None)
    session = cookies_of(login)["jobjoker_session"][0]
    headers = {"Cookie": "jobjoker_session=%s" % session}
    connection = await ws_connect("/events", auth=None, headers=headers)  # same origin: fine
    connection.close()
    with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
        await ws_connect("/events", auth=None,
                         headers=dict(headers, Origin="http://evil.example"))
    assert caught.value.code == 403


# --- brute force -------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"login_failures": 3}])
async def test_brute_force_meets_429_with_retry_after(api, config_overrides):
    for _ in range(3):
        assert (await api("GET", "/jobs", auth=("admin", "guess"))).code == 401
    locked = await api("GET", "/jobs", auth=("admin", "guess"))
    assert locked.code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # While locked, even the right password waits: that is what makes guessing useless.
    assert (await api("GET", "/jobs", auth=("admin", PASSWORD))).code == 429
    login = await api("POST", "/session", {"username": "admin", "password": PASSWORD},
                      auth=None)
    assert login.code == 429
    # An unknown user and a wrong password look the same.
    unknown = await api("GET", "/jobs", auth=("ghost", "guess"))
    wrong = await api("GET", "/jobs", auth=("admin2", "guess"))
    assert unknown.code == wrong.code == 401 and unknown.json == wrong.json


# --- users -------------------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_users_are_managed_by_admins_and_the_last_admin_is_kept(api):
    created = await api("POST", "/users", {"username": "ann", "password": "long enough pw",
                                           "role": "operator"})
    assert created.code == 201 and created.data[0] == {
        "username": "ann", "role": "operator", "created": created.data[0]["created"],
        "disabled": False}
    assert (await api("GET", "/jobs", auth=("ann", "long enough pw"))).code == 200
    assert (await api("POST", "/users", {"username": "ann", "password": "long enough pw"})
            ).code == 409
    assert (await api("POST", "/users", {"username": "bo", "password": "short"})).code == 422
    assert (await api("POST", "/users", {"username": "../x", "password": "long enough pw"})
            ).code == 400
    assert (await api("POST", "/users", {"username": "cy", "password": "long enough pw",
                                         "role": "root"})).code == 422
    listed = await api("GET", "/users")
    assert all("password_hash" not in u for u in listed.data)

    assert (await api("DELETE", "/users/admin")).code == 409  # the last admin stays
    assert (await api("PATCH", "/users/admin", {"role": "viewer"})).code == 409
    assert (await api("PATCH", "/users/ann", {"role": "admin"})).code == 200
    assert (await api("PATCH", "/users/admin", {"role": "viewer"})).code == 200  # ann is one

    own = await api("PUT", "/users/ann/password", {"current": "wrong", "password": "x" * 12},
                    auth=("ann", "long enough pw"))
    assert own.code == 403  # ann is an admin now: admins too give their current password
    own = await api("PUT", "/users/ann/password", {"current": "long enough pw",
                                                   "password": "x" * 12},
                    auth=("ann", "long enough pw"))
    assert own.code == 200
    ann = ("ann", "x" * 12)
    last = await api("PATCH", "/users/ann", {"disabled": True}, auth=ann)
    assert last.code == 409 and "last active admin" in last.json["message"]
    assert (await api("PATCH", "/users/admin", {"role": "admin"}, auth=ann)).code == 200
    assert (await api("PATCH", "/users/ann", {"disabled": True})).code == 200
    assert (await api("GET", "/jobs", auth=ann)).code == 401  # disabled: locked out at once
    assert (await api("PATCH", "/users/ann", {"colour": "red"})).code == 400


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_deleting_a_user_ends_their_tokens_and_sessions(api, make_user):
    ann = make_user("ann", "operator")
    token = (await api("POST", "/tokens", {"name": "ci"}, auth=ann)).data[0]["token"]
    login = await api("POST", "/session", {"username": ann[0], "password": ann[1]}, auth=None)
    assert login.code == 201, login

    assert (await api("DELETE", "/users/ann")).code == 200

    assert not models.Token.select().where(models.Token.username == "ann").exists()
    assert not models.Session.select().where(models.Session.username == "ann").exists()
    make_user("ann", "admin")  # a new user of the same name inherits nothing
    reused = await api("GET", "/jobs", auth=None, headers=bearer(token))
    assert reused.code == 401


@pytest.mark.gen_test(timeout=60)
async def test_a_user_changes_their_own_password_with_the_current_one(api, make_user):
    name, password = make_user("dee", "viewer")
    wrong = await api("PUT", "/users/dee/password", {"current": "nope", "password": "y" * 12},
                      auth=(name, password))
    assert wrong.code == 403
    other = await api("PUT", "/users/admin/password", {"current": password, "password":
                                                       "y" * 12}, auth=(name, password))
    assert other.code == 403
    ok = await api("PUT", "/users/dee/password", {"current": password, "password": "y" * 12},
                   auth=(name, password))
    assert ok.code == 200
    assert (await api("GET", "/jobs", auth=(name, password))).code == 401
    assert (await api("GET", "/jobs", auth=(name, "y" * 12))).code == 200
    assert (await api("GET", "/users/admin", auth=(name, "y" * 12))).code == 403
    assert (await api("GET", "/users/dee", auth=(name, "y" * 12))).code == 200


# --- audit -------------------------------------------------------------------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_the_audit_trail_says_who_did_what(api, make_user, wait_for_status):
    operator = make_user("ops", "operator")
    job = (await api("POST", "/jobs", {"worker": "Foobar"}, auth=operator)).data[0]
    await api("PUT", "/jobs/%s/status" % job["id"], "start", auth=operator)
    await api("PUT", "/workers/Audited", "from jobjoker import Worker\n\nclass Audited(Worker):"
                                        "\n    def run(self):\n        pass\n")
    await api("GET", "/jobs", auth=("ops", "wrong"))
    assert (await wait_for_status(job["id"]))["status"] == "done"
    await api("DELETE", "/jobs/%s" % job["id"], auth=operator)
    trail = await api("GET", "/audit?limit=50")
    seen = [(e["actor"], e["action"], e["target"]) for e in trail.data]
    assert ("ops", "job.create", job["id"]) in seen
    assert ("ops", "job.start", job["id"]) in seen
    assert ("ops", "job.delete", job["id"]) in seen
    assert ("admin", "worker.save", "Audited") in seen
    assert (None, "login.failed", "ops") in seen  # the account that was tried
    assert all(e["address"] for e in trail.data)
    assert (await api("GET", "/audit", auth=operator)).code == 403
    only = await api("GET", "/audit?action=job.start")
    assert {e["action"] for e in only.data} == {"job.start"}


# --- headers -----------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_security_headers_on_every_kind_of_reply(api):
    for path in ("/jobs", "/", "/static/index.html", "/nope", "/health"):
        reply = await api("GET", path)
        csp = reply.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.gen_test(timeout=30)
async def test_an_oversized_body_gets_413_before_it_is_sent(app, http_server, http_port):
    """The declared length is refused from the headers: the client never has to send it."""
    import base64
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    credentials = base64.b64encode(("admin:%s" % PASSWORD).encode()).decode()
    writer.write(("POST /jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  % (credentials, 10 ** 9)).encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)  # no byte of the body was sent
    assert status.startswith(b"HTTP/1.1 413"), status
    writer.close()


@pytest.mark.gen_test
async def test_browsers_without_credentials_go_to_the_sign_in_form(api):
    page = await api("GET", "/", auth=None, headers={"Accept": "text/html,*/*"})
    assert page.code == 302 and page.headers["Location"] == "/login"
    assert (await api("GET", "/", auth=None)).code == 401  # scripts get the 401
    form = await api("GET", "/login", auth=None)
    assert form.code == 200 and b'id="login-form"' in form.body
    for public in ("/static/js/login.js", "/static/app.css", "/static/login.html"):
        assert (await api("GET", public, auth=None)).code == 200, public
    for private in ("/static/index.html", "/static/js/api.js"):
        assert (await api("GET", private, auth=None)).code == 401, private
    # The files that make the folder a package (jobjoker.static) are not the page's.
    for package_file in ("/static/__init__.py", "/static/__pycache__/__init__.cpython-311.pyc"):
        assert (await api("GET", package_file)).code == 404, package_file
    assert (await api("GET", "/static/templates/worker.py")).code == 200  # the page's own
    # The page's own requests get no Basic challenge (it shows its form instead).
    marked = await api("GET", "/jobs", auth=None, headers={"X-Requested-With": "JobJoker"})
    assert marked.code == 401 and "WWW-Authenticate" not in marked.headers
    assert "WWW-Authenticate" in (await api("GET", "/jobs", auth=None)).headers


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"login_failures": 2}])
async def test_guessing_the_current_password_is_throttled_too(api, make_user):
    name, password = make_user("guesser", "viewer")
    codes = []
    for _ in range(4):
        reply = await api("PUT", "/users/guesser/password",
                          {"current": "wrong", "password": "z" * 12}, auth=(name, password))
        codes.append(reply.code)
    assert codes[:2] == [403, 403] and codes[2:] == [429, 429], codes
