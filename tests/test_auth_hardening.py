"""Authentication under attack (issue 12): concurrent guesses, the cost of unknown users, bad
tokens, spoofed proxy headers, XSRF tokens bound to the session, one's own password, open
sockets of revoked credentials and identifiers compared exactly. Each test replays the attack."""
import asyncio
import collections
import json
import time

import pytest
import tornado.httpclient

from jobjoker import auth, credential_watch, models, throttle
from jobjoker.config import load_config
from tests.support import (ADMIN, PASSWORD, bearer, cookies_of, fetch, free_port,
                           serve_in_process)


@pytest.fixture
def counted_checks(monkeypatch):
    """Every password check the authenticator runs, in the order they end; each takes a little
    while (in its thread), as a real scrypt does, so that a wave of them overlaps."""
    done = []
    check = auth._check_password

    def slow_check(password, stored):
        time.sleep(0.02)
        result = check(password, stored)
        done.append(password)
        return result
    monkeypatch.setattr(auth, "_check_password", slow_check)
    return done


# --- High 1: concurrent guesses ---------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_concurrent_guesses_for_one_account_are_held_to_the_limit(storage, counted_checks):
    await auth.ensure_admin(storage, "the-right-one")
    authenticator = auth.Authenticator(storage, throttle.Throttle(per_account=10, per_address=1000))
    guesses = ["guess-%d" % i for i in range(99)] + ["the-right-one"]

    async def guess(password, i):
        try:
            return await authenticator.check_password("admin", password, "10.0.%d.1" % i)
        except throttle.Throttled:
            return "throttled"
    results = await asyncio.gather(*(guess(p, i) for i, p in enumerate(guesses)))
    assert len(counted_checks) <= 10, len(counted_checks)
    assert results[-1] == "throttled"  # the right password, sent last, was never tried
    assert results.count("throttled") >= 90


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_guesses_from_one_address_are_held_to_its_limit(storage, counted_checks):
    authenticator = auth.Authenticator(storage, throttle.Throttle(per_account=1000, per_address=50))

    async def guess(i):
        try:
            return await authenticator.check_password("user-%d" % i, "guess", "10.9.9.9")
        except throttle.Throttled:
            return "throttled"
    results = await asyncio.gather(*(guess(i) for i in range(100)))
    assert len(counted_checks) <= 50, len(counted_checks)
    assert results.count("throttled") >= 50


@pytest.mark.gen_test(timeout=60)
async def test_a_wave_of_unknown_users_does_not_hold_up_a_login_from_elsewhere(
        storage, counted_checks):
    await auth.ensure_admin(storage, "real-password")
    authenticator = auth.Authenticator(storage, throttle.Throttle(per_account=10, per_address=100))
    wave = [asyncio.ensure_future(authenticator.check_password(
        "ghost-%d" % i, "wave-%d" % i, "10.6.6.6")) for i in range(100)]
    await asyncio.sleep(0)  # the wave is queued first
    user = await authenticator.check_password("admin", "real-password", "10.1.1.1")
    assert user is not None and user.username == "admin"
    # Unknown users still cost a hash each (same time as a real one), but hold at most the
    # address's own slots: the real login ran among the first few, not after the 100.
    finished_before = counted_checks.index("real-password")
    assert finished_before < 20, finished_before
    assert all(r is None for r in await asyncio.gather(*wave))
    assert len(counted_checks) == 101  # every unknown user was hashed


# --- Low 15: one's own password, and what a token may not do -----------------------------------

async def sign_in(api, username, password):
    """``(headers carrying the session cookie and the XSRF token, the xsrf value)``."""
    login = await api("POST", "/session", {"username": username, "password": password},
                      auth=None)
    assert login.code == 201, login
    session = cookies_of(login)["jobjoker_session"][0]
    xsrf = login.data[0]["xsrf"]
    return {"Cookie": "jobjoker_session=%s" % session, "X-XSRFToken": xsrf}


@pytest.mark.gen_test(timeout=60)
async def test_an_admin_changes_their_own_password_only_with_the_current_one(api):
    new = {"password": "n" * 12}
    basic_reply = await api("PUT", "/users/admin/password", new)
    assert basic_reply.code == 403 and "current" in basic_reply.json["message"]
    wrong = await api("PUT", "/users/admin/password", dict(new, current="wrong"))
    assert wrong.code == 403
    session = await sign_in(api, "admin", PASSWORD)
    by_session = await api("PUT", "/users/admin/password", new, auth=None, headers=session)
    assert by_session.code == 403 and "current" in by_session.json["message"]
    assert (await api("GET", "/jobs")).code == 200  # the password is still the old one

    assert (await api("POST", "/users", {"username": "ann", "password": "a" * 12})).code == 201
    reset = await api("PUT", "/users/ann/password", new)  # someone else's: no current needed
    assert reset.code == 200, reset
    own = await api("PUT", "/users/admin/password", dict(new, current=PASSWORD))
    assert own.code == 200, own
    assert (await api("GET", "/jobs", auth=("admin", "n" * 12))).code == 200


@pytest.mark.gen_test(timeout=60)
async def test_a_token_changes_no_credentials(api):
    token = (await api("POST", "/tokens", {"name": "admin's script"})).data[0]["token"]
    by_token = bearer(token)
    own = await api("PUT", "/users/admin/password", {"current": PASSWORD, "password": "t" * 12},
                    auth=None, headers=by_token)
    assert own.code == 403 and "token" in own.json["message"], own
    assert (await api("POST", "/users", {"username": "bo", "password": "b" * 12})).code == 201
    other = await api("PUT", "/users/bo/password", {"password": "t" * 12}, auth=None,
                      headers=by_token)
    assert other.code == 403 and "token" in other.json["message"], other
    user = await api("POST", "/users", {"username": "mole", "password": "m" * 12,
                                        "role": "admin"}, auth=None, headers=by_token)
    assert user.code == 403 and "token" in user.json["message"], user
    minted = await api("POST", "/tokens", {"name": "more"}, auth=None, headers=by_token)
    assert minted.code == 403
    assert (await api("POST", "/users", {"username": "eve", "password": "e" * 12,
                                         "role": "viewer"})).code == 201
    for raise_ in ({"role": "admin"}, {"role": "operator"}):
        promoted = await api("PATCH", "/users/eve", raise_, auth=None, headers=by_token)
        assert promoted.code == 403 and "token" in promoted.json["message"], promoted
    # Lowering rights is fine by token (a script reacting to an incident).
    assert (await api("PATCH", "/users/eve", {"disabled": True}, auth=None,
                      headers=by_token)).code == 200
    enabled = await api("PATCH", "/users/eve", {"disabled": False}, auth=None, headers=by_token)
    assert enabled.code == 403, enabled
    # Nothing changed: the old password works, the refused ones do not.
    assert (await api("GET", "/jobs")).code == 200
    assert (await api("GET", "/jobs", auth=("bo", "t" * 12))).code == 401
    assert (await api("GET", "/jobs", auth=("mole", "m" * 12))).code == 401


# --- Low 14: the XSRF token is the session's -----------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_only_the_sessions_own_xsrf_token_in_the_header_passes(api):
    session = await sign_in(api, "admin", PASSWORD)
    cookie = session["Cookie"]
    job = {"worker": "Foobar"}
    # A cookie and header pair of the attacker's choosing (planted by a sibling subdomain, say).
    planted = await api("POST", "/jobs", job, auth=None, headers={
        "Cookie": cookie + "; _xsrf=chosen", "X-XSRFToken": "chosen"})
    assert planted.code == 403 and "XSRF" in planted.json["message"], planted
    query = await api("POST", "/jobs?_xsrf=chosen", job, auth=None,
                      headers={"Cookie": cookie + "; _xsrf=chosen"})
    assert query.code == 403, query
    other = await sign_in(api, "admin", PASSWORD)  # another session's token
    crossed = await api("POST", "/jobs", job, auth=None, headers={
        "Cookie": cookie, "X-XSRFToken": other["X-XSRFToken"]})
    assert crossed.code == 403, crossed
    # The page's way: the token GET /session gives (and the _xsrf cookie holds) in the header.
    me = await api("GET", "/session", auth=None, headers={"Cookie": cookie})
    assert me.data[0]["xsrf"] == session["X-XSRFToken"]
    assert cookies_of(me)["_xsrf"][0] == me.data[0]["xsrf"]
    assert (await api("POST", "/jobs", job, auth=None, headers=session)).code == 201
    assert (await api("GET", "/session")).data[0]["xsrf"] is None  # Basic needs none


# --- Medium 9: behind the proxy, only the headers it sets ----------------------------------------

@pytest.fixture
def proxied_server(io_loop, tmp_path, workers_dir, database_url):
    """A server started as ``run_server.py --trust-proxy yes`` starts it, listening."""
    config = load_config({"data_dir": tmp_path / "data", "workers_dir": workers_dir,
                          "database": database_url, "port": free_port(), "node": "test-node",
                          "trust_proxy": True, "login_failures_per_address": 5}, environ={})
    yield from serve_in_process(io_loop, config, listen=True)


@pytest.mark.gen_test(timeout=60)
async def test_behind_the_proxy_a_client_cannot_choose_its_address_or_scheme(proxied_server):
    http_client = tornado.httpclient.AsyncHTTPClient()
    base = "http://127.0.0.1:%d" % proxied_server.config.port
    codes = []
    for i in range(8):
        # What the documented nginx block forwards: its own X-Forwarded-For and -Proto, and
        # (in an older block, or another proxy) the client's X-Real-Ip and X-Scheme as sent.
        reply = await fetch(http_client, base, "POST", "/session",
                            {"username": "user-%d" % i, "password": "guess"}, None,
                            {"X-Forwarded-For": "203.0.113.7", "X-Real-Ip": "10.1.2.%d" % i,
                             "X-Forwarded-Proto": "https"})
        codes.append(reply.code)
    assert codes == [401] * 5 + [429] * 3, codes
    login = await fetch(http_client, base, "POST", "/session",
                        {"username": "admin", "password": PASSWORD}, None,
                        {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https",
                         "X-Scheme": "http"})
    assert login.code == 201, login
    assert "Secure" in cookies_of(login)["jobjoker_session"][1]
    trail = await fetch(http_client, base, "GET", "/audit?action=login.ok", None, ADMIN,
                        {"X-Forwarded-For": "198.51.100.1"})
    assert trail.data[0]["address"] == "198.51.100.1"


# --- Low 13: bad tokens ------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"login_failures_per_address": 20}])
async def test_bad_tokens_are_throttled_and_their_audit_entries_folded(api, server):
    codes = collections.Counter()
    for i in range(60):
        header = bearer("jj_%012x_%s" % (i, "x" * 43)) if i % 2 else {
            "Authorization": "Bearer not-even-a-token"}
        codes[(await api("GET", "/jobs", auth=None, headers=header)).code] += 1
    assert codes == {401: 20, 429: 40}, codes
    # The address is locked for passwords too, the right one included.
    assert (await api("GET", "/jobs", auth=("admin", "guess-%d" % 1))).code == 429

    def failures():
        return [e for e in (models.AuditEntry.select()
                            .where(models.AuditEntry.action == "login.failed"))]
    assert len(failures()) == 1  # the first at once; the rest are being counted
    await server.app.settings["audit"].flush()  # as the window's end (or a stop) does
    first, folded = failures()
    assert first.target == "bearer" and first.address == folded.address == "127.0.0.1"
    assert folded.target == "bearer" and folded.detail.startswith("19 more in 60 s"), \
        folded.detail


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"login_failures": 50,
                                               "login_failures_per_address": 50}])
async def test_failed_basic_logins_name_the_account_tried_and_fold_per_account(api, server):
    made_up = "x" * 300
    for username, times in (("admin", 5), ("nobody", 3), (made_up, 2)):
        for _ in range(times):
            assert (await api("GET", "/jobs", auth=(username, "guess"))).code == 401
    await server.app.settings["audit"].flush()  # as the window's end (or a stop) does
    rows = [(e.target, e.detail) for e in models.AuditEntry.select()
            .where(models.AuditEntry.action == "login.failed").order_by(models.AuditEntry.id)]
    cut = made_up[:252] + "..."  # as long as the column holds, and saying it was cut
    assert sorted(rows) == sorted([
        ("admin", "HTTP Basic"), ("admin", "4 more in 60 s from this address"),
        ("nobody", "HTTP Basic"), ("nobody", "2 more in 60 s from this address"),
        (cut, "HTTP Basic"), (cut, "1 more in 60 s from this address")]), rows


# --- Medium 8: names and ids compare exactly, on every database -----------------------------------

@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"login_failures": 3}])
async def test_names_and_ids_are_exact_not_case_or_space_insensitive(api, ws_connect):
    for other in ("ADMIN", "Admin", "admin "):
        reply = await api("GET", "/jobs", auth=(other, PASSWORD))
        assert reply.code == 401, (other, reply)
        login = await api("POST", "/session", {"username": other, "password": PASSWORD},
                          auth=None)
        assert login.code == 401, (other, login)
    job_id = (await api("POST", "/jobs", {"worker": "Foobar"})).data[0]["id"]
    assert job_id != job_id.upper()
    assert (await api("GET", "/jobs/%s" % job_id.upper())).code == 404
    assert (await api("GET", "/jobs/%s%%20" % job_id)).code == 404
    assert (await api("DELETE", "/jobs/%s%%20" % job_id)).code == 404
    assert (await api("DELETE", "/jobs/%s" % job_id.upper())).code == 404
    with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
        await ws_connect("/jobs/%s/stream" % job_id.upper())
    assert caught.value.code == 404
    assert (await api("GET", "/jobs/%s" % job_id)).code == 200  # still there
    token = (await api("POST", "/tokens", {"name": "t"})).data[0]
    upper = token["token"].replace(token["id"], token["id"].upper())
    assert upper != token["token"]
    assert (await api("GET", "/jobs", auth=None, headers=bearer(upper))).code == 401
    # Each variant was an unknown account: the real one's throttle is untouched.
    assert (await api("GET", "/jobs")).code == 200


# --- Medium 7: open sockets follow their credentials ---------------------------------------------

async def closed_with(connection, timeout=30.0):
    """Read until the server closes ``connection``; its close code and reason."""
    while await asyncio.wait_for(connection.read_message(), timeout) is not None:
        pass
    return connection.close_code, connection.close_reason


@pytest.mark.gen_test(timeout=120)
async def test_revoking_a_token_closes_its_sockets_at_once(api, ws_connect, make_user):
    ann = make_user("ann", "operator")
    token = (await api("POST", "/tokens", {"name": "feed"}, auth=ann)).data[0]
    job_id = (await api("POST", "/jobs", {"worker": "Foobar"})).data[0]["id"]
    events = await ws_connect("/events", auth=None, headers=bearer(token["token"]))
    stream = await ws_connect("/jobs/%s/stream" % job_id, auth=None,
                              headers=bearer(token["token"]))
    other = await ws_connect("/events", auth=ann)  # ann's password still holds
    assert (await api("DELETE", "/tokens/%s" % token["id"], auth=ann)).code == 200
    for connection in (events, stream):
        code, reason = await closed_with(connection)
        assert code == 4401 and "sign in again" in reason
    await api("POST", "/jobs", {"worker": "Foobar"})
    assert json.loads(await asyncio.wait_for(other.read_message(), 30))["type"] == "job"
    other.close()


@pytest.mark.gen_test(timeout=120)
async def test_signing_out_and_password_changes_close_the_sockets_they_end(
        api, ws_connect, make_user):
    ann = make_user("ann", "viewer")
    session = await sign_in(api, *ann)
    by_session = await ws_connect("/events", auth=None, headers={"Cookie": session["Cookie"]})
    assert (await api("DELETE", "/session", auth=None, headers=session)).code == 200
    assert (await closed_with(by_session))[0] == 4401

    session = await sign_in(api, *ann)
    by_session = await ws_connect("/events", auth=None, headers={"Cookie": session["Cookie"]})
    by_password = await ws_connect("/events", auth=ann)
    changed = await api("PUT", "/users/ann/password", {"current": ann[1], "password": "p" * 12},
                        auth=ann)
    assert changed.code == 200, changed
    assert (await closed_with(by_session))[0] == 4401
    assert (await closed_with(by_password))[0] == 4401


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("change", [{"disabled": True}, {"role": "viewer"}, None])
async def test_disabling_demoting_or_deleting_a_user_closes_their_sockets(
        api, ws_connect, make_user, change):
    bo = make_user("bo", "operator")
    token = (await api("POST", "/tokens", {"name": "feed"}, auth=bo)).data[0]["token"]
    sockets = [await ws_connect("/events", auth=bo),
               await ws_connect("/events", auth=None, headers=bearer(token))]
    admins = await ws_connect("/events")
    if change is None:
        assert (await api("DELETE", "/users/bo")).code == 200
    else:
        assert (await api("PATCH", "/users/bo", change)).code == 200
    for connection in sockets:
        assert (await closed_with(connection))[0] == 4401
    await api("POST", "/jobs", {"worker": "Foobar"})  # the admin's socket is untouched
    assert json.loads(await asyncio.wait_for(admins.read_message(), 30))["type"] == "job"
    admins.close()


@pytest.fixture
def quick_recheck(monkeypatch):
    monkeypatch.setattr(credential_watch, "RECHECK_SECONDS", 0.2)


@pytest.mark.gen_test(timeout=120)
async def test_changes_made_elsewhere_reach_open_sockets_by_the_periodic_recheck(
        quick_recheck, api, ws_connect, make_user):
    cy = make_user("cy", "viewer")
    token = (await api("POST", "/tokens", {"name": "feed"}, auth=cy)).data[0]
    connection = await ws_connect("/events", auth=None, headers=bearer(token["token"]))
    # What another server on the same database does: a revocation this one hears nothing of.
    models.Token.update(revoked=time.time()).where(models.Token.id == token["id"]).execute()
    assert (await closed_with(connection))[0] == 4401


@pytest.mark.gen_test(timeout=60)
async def test_many_connections_with_the_right_password_at_once_are_one_attempt(
        storage, counted_checks):
    """A client opening 100 sockets with Basic at once is not a brute force: one hash, no 429."""
    await auth.ensure_admin(storage, "right")
    authenticator = auth.Authenticator(storage, throttle.Throttle(per_account=10,
                                                                  per_address=50))
    users = await asyncio.gather(*(authenticator.check_password("admin", "right", "10.0.0.1")
                                   for _ in range(100)))
    assert all(user is not None and user.username == "admin" for user in users)
    assert counted_checks == ["right"]
