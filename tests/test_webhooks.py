"""Webhooks on job ends, through the API: deliveries to a real local HTTP receiver (signed with
the secret shown once), scope and status filters, retries of a failing receiver, a hanging one
that costs the server nothing, roles, bad input, and deliveries that outlive a restart."""
import json
import time

import pytest
from cryptography.fernet import Fernet

from jobjoker import jobstore, models
from jobjoker.config import load_config
from jobjoker.errors import StartupError
from jobjoker.secretbox import SecretBox
from jobjoker.webhooks_sender import claim_due, record
from tests.support import ServerProcess, free_port, poll, until, workers_folder
from tests.webhook_support import Receiver, signature_of

REPORTER = '''from jobjoker import Worker


class Reporter(Worker):
    """Ends done with a result, or error when asked to fail."""

    parameters = {
        "token": {"type": "string", "secret": True, "default": "hunter2"},
        "fail": {"type": "boolean", "default": False},
        "big": {"type": "integer", "default": 0},
    }

    def run(self):
        if self.params["fail"]:
            raise ValueError("asked to fail")
        self.result({"rows": 3, "blob": "x" * self.params["big"]} if self.params["big"]
                    else {"rows": 3})
'''


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(autouse=True)
def fresh_receiver(receiver):
    receiver.reset()
    yield
    receiver.release()


@pytest.fixture
def config_overrides():
    return {"webhook_retries": 2, "webhook_retry_delay": 0.05, "webhook_timeout": 30.0}


@pytest.fixture
def reporter(write_worker):
    write_worker("Reporter", REPORTER)


async def add_hook(api, url, **fields):
    reply = await api("POST", "/webhooks", dict(fields, url=url))
    assert reply.code == 201, reply
    return reply.data[0]


async def deliveries(api, hook_id):
    reply = await api("GET", "/webhooks/%s/deliveries" % hook_id)
    assert reply.code == 200, reply
    return reply.data


async def settled(api, hook_id, count=1):
    """The hook's deliveries once ``count`` of them are delivered or failed."""
    async def done():
        found = await deliveries(api, hook_id)
        return found if len([d for d in found if d["state"] != "pending"]) >= count else None
    return await poll(done, what="%d deliveries of webhook %s to settle" % (count, hook_id))


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=120)
async def test_a_job_end_is_delivered_signed_with_the_secret_shown_once(
        api, run_job, receiver, reporter):
    hook = await add_hook(api, receiver.url(), description="all ends")
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["statuses"] == ["done", "error", "stop"]
    job = await run_job("Reporter", {"token": "s3cret-value"}, wait=True)
    assert job["status"] == "done"

    [received] = await poll(lambda: receiver.received(), what="the delivery")
    headers, body = received.headers, received.body
    assert headers["Content-Type"] == "application/json"
    assert headers["X-JobJoker-Event"] == "job.ended"
    assert headers["X-JobJoker-Signature"] == signature_of(secret, headers, body)
    assert abs(int(headers["X-JobJoker-Timestamp"]) - time.time()) < 600
    assert signature_of("whsec_another", headers, body) != headers["X-JobJoker-Signature"]
    event = json.loads(body)
    assert event["event"] == "job.ended"
    assert event["result"] == {"rows": 3} and event["omitted"] == []
    assert {key: event["job"][key] for key in ("id", "worker", "status", "reason", "attempt")} \
        == {"id": job["id"], "worker": "Reporter", "status": "done", "reason": job["reason"],
            "attempt": job["attempt"]}
    assert event["job"]["parameters"] == job["parameters"]  # masked as the API shows them
    assert b"s3cret-value" not in body
    assert job["id"] in event["message"] and "done" in event["message"]

    [delivery] = await settled(api, hook["id"])
    assert headers["X-JobJoker-Delivery"] == str(delivery["id"])
    assert (delivery["state"], delivery["attempts"], delivery["last_code"],
            delivery["job"]) == ("delivered", 1, 200, job["id"])
    # The secret is never shown again, and is stored sealed.
    for reply in (await api("GET", "/webhooks"), await api("GET", "/webhooks/" + hook["id"])):
        assert "secret" not in reply.data[0] and secret not in reply.text
    stored = models.Webhook.get_by_id(hook["id"]).secret
    assert stored.startswith("v1:") and secret not in stored


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=120)
async def test_a_big_result_is_left_out_of_the_body_and_the_job_still_ends(
        api, run_job, receiver, reporter):
    """A delivery's body is bounded (MySQL's TEXT holds 65,535 bytes): a big result is left
    out, named in ``omitted``, and the end it belongs to commits all the same."""
    hook = await add_hook(api, receiver.url("/big"))
    job = await run_job("Reporter", {"big": 200 * 1024}, wait=True)
    assert job["status"] == "done" and job["result_size"] > 200 * 1024
    [received] = await poll(lambda: receiver.received("/big"), what="the delivery")
    event = json.loads(received.body)
    assert (event["result"], event["omitted"]) == (None, ["result"])
    assert event["job"]["id"] == job["id"] and len(received.body) < 64 * 1024
    [delivery] = await settled(api, hook["id"])
    assert delivery["state"] == "delivered"


@pytest.mark.gen_test(timeout=120)
async def test_scope_and_status_filters(api, run_job, server, reporter):
    url = "http://127.0.0.1:9/"  # nothing listens: only what is owed is counted here
    hooks = {
        "worker done": await add_hook(api, url, scope="worker", scope_value="Reporter",
                                      statuses=["done"]),
        "other worker": await add_hook(api, url, scope="worker", scope_value="Foobar"),
        "server error": await add_hook(api, url, statuses=["error"]),
        "schedule": await add_hook(api, url, scope="schedule", scope_value="sched-1"),
        "disabled": await add_hook(api, url, enabled=False),
    }
    await run_job("Reporter", wait=True)
    failed = await run_job("Reporter", {"fail": True}, wait=True)
    assert failed["status"] == "error"

    # A job made by a schedule, cancelled while it waited for its time.
    job_id = jobstore.new_job_id()

    def scheduled_then_cancelled(tx):
        jobstore.insert(tx, [{"id": job_id, "worker": "Reporter", "status": "scheduled",
                              "created": time.time(), "start_at": time.time() + 3600,
                              "schedule_id": "sched-1", "attempt": 1}])
        jobstore.transition(tx, job_id, "stop", reason="cancelled", stoptime=time.time())
    await server.storage.transaction(scheduled_then_cancelled)

    owed = {name: sorted((d["job"] for d in await deliveries(api, hook["id"])))
            for name, hook in hooks.items()}
    done_job = [d["job"] for d in await deliveries(api, hooks["worker done"]["id"])]
    assert owed == {"worker done": done_job, "other worker": [], "server error": [failed["id"]],
                    "schedule": [job_id], "disabled": []}
    assert len(done_job) == 1 and done_job != [failed["id"]]


@pytest.mark.gen_test(timeout=120)
async def test_a_failing_receiver_is_retried_until_it_answers_then_given_up(
        api, run_job, receiver):
    receiver.plan = [500, 503]  # then 200
    hook = await add_hook(api, receiver.url("/flaky"))
    await run_job("Foobar", wait=True)
    [delivery] = await settled(api, hook["id"])
    assert (delivery["state"], delivery["attempts"], delivery["last_code"],
            delivery["last_error"]) == ("delivered", 3, 200, None)
    attempts = receiver.received("/flaky")
    assert len(attempts) == 3
    assert len({r.headers["X-JobJoker-Delivery"] for r in attempts}) == 1  # one delivery

    receiver.status = 500  # every time: retried --webhook-retries (2) times, then failed
    await run_job("Foobar", wait=True)
    latest = (await settled(api, hook["id"], count=2))[0]
    assert (latest["state"], latest["attempts"], latest["last_code"]) == ("failed", 3, 500)
    assert "HTTP 500" in latest["last_error"] and latest["finished"] is not None


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("config_overrides", [{"webhook_retries": 0, "webhook_timeout": 3.0}])
async def test_a_hanging_receiver_times_out_and_the_server_stays_responsive(
        api, run_job, receiver):
    receiver.plan = ["hang"]
    hook = await add_hook(api, receiver.url("/hang"))
    await run_job("Foobar", wait=True)
    await poll(lambda: receiver.received("/hang"), what="the receiver to be reached")
    # While the receiver holds the request, the loop serves everyone else.
    for _ in range(5):
        assert (await api("GET", "/health", auth=None)).code == 200
        assert (await api("GET", "/webhooks")).code == 200
    [delivery] = await settled(api, hook["id"])
    assert delivery["state"] == "failed" and delivery["last_code"] is None
    assert "imeout" in delivery["last_error"], delivery


@pytest.mark.gen_test(timeout=120)
async def test_a_refused_connection_and_a_redirect_are_failures(api, run_job, receiver):
    refused = await add_hook(api, "http://127.0.0.1:%d/" % free_port())
    receiver.plan = [302, 302, 302]
    redirected = await add_hook(api, receiver.url("/moved"))
    await run_job("Foobar", wait=True)
    [no_connection] = await settled(api, refused["id"])
    assert no_connection["state"] == "failed" and no_connection["attempts"] == 3
    assert no_connection["last_code"] is None and no_connection["last_error"]
    [moved] = await settled(api, redirected["id"])
    assert (moved["state"], moved["last_code"]) == ("failed", 302)
    assert "redirects are not followed" in moved["last_error"]


@pytest.mark.gen_test(timeout=120)
async def test_test_delivery_rotation_change_and_audit(api, receiver):
    hook = await add_hook(api, receiver.url("/test"), statuses=["error"])
    rotated = await api("POST", "/webhooks/%s/secret" % hook["id"])
    assert rotated.code == 200 and rotated.data[0]["secret"] != hook["secret"]
    tested = await api("POST", "/webhooks/%s/test" % hook["id"])
    assert tested.code == 202 and tested.data[0]["event"] == "webhook.test"
    [received] = await poll(lambda: receiver.received("/test"), what="the test delivery")
    assert received.headers["X-JobJoker-Event"] == "webhook.test"
    assert received.headers["X-JobJoker-Signature"] == signature_of(
        rotated.data[0]["secret"], received.headers, received.body)

    changed = await api("PATCH", "/webhooks/" + hook["id"], {
        "scope": "worker", "scope_value": "Foobar", "statuses": ["stop", "done"],
        "enabled": False})
    assert changed.code == 200, changed
    assert {key: changed.data[0][key] for key in ("scope", "scope_value", "statuses",
                                                  "enabled")} == {
        "scope": "worker", "scope_value": "Foobar", "statuses": ["done", "stop"],
        "enabled": False}
    assert (await api("DELETE", "/webhooks/" + hook["id"])).code == 200
    assert (await api("GET", "/webhooks/" + hook["id"])).code == 404
    assert (await api("GET", "/webhooks/%s/deliveries" % hook["id"])).code == 404
    audit = (await api("GET", "/audit?action=webhook.create")).data + \
        (await api("GET", "/audit?action=webhook.update")).data + \
        (await api("GET", "/audit?action=webhook.rotate")).data + \
        (await api("GET", "/audit?action=webhook.delete")).data
    assert {entry["action"] for entry in audit if entry["target"] == hook["id"]} == {
        "webhook.create", "webhook.update", "webhook.rotate", "webhook.delete"}
    assert not any(hook["secret"] in (entry["detail"] or "") for entry in audit)


@pytest.mark.gen_test(timeout=60)
async def test_only_admins_see_or_manage_webhooks(api, make_user):
    hook = await add_hook(api, "https://hooks.example.com/x")
    for role in ("viewer", "operator"):
        user = make_user("web-" + role, role)
        for method, path, body in (("GET", "/webhooks", None),
                                   ("POST", "/webhooks", {"url": "https://example.com/"}),
                                   ("GET", "/webhooks/" + hook["id"], None),
                                   ("PATCH", "/webhooks/" + hook["id"], {"enabled": False}),
                                   ("DELETE", "/webhooks/" + hook["id"], None),
                                   ("GET", "/webhooks/%s/deliveries" % hook["id"], None)):
            reply = await api(method, path, body, auth=user)
            assert reply.code == 403, (role, method, path, reply)
    assert [h["id"] for h in (await api("GET", "/webhooks")).data] == [hook["id"]]
    assert (await api("GET", "/webhooks/" + hook["id"])).data[0]["enabled"] is True


BAD_BODIES = [
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "http://"}, "url"),
    ({"url": "example.com/hook"}, "url"),
    ({"url": 42}, "url"),
    ({}, "url"),
    ({"url": "http://example.com:port/"}, "url"),
    ({"url": "https://example.com/", "scope": "cluster"}, "scope"),
    ({"url": "https://example.com/", "scope": "worker"}, "scope_value"),
    ({"url": "https://example.com/", "scope": "worker", "scope_value": "../x"}, "scope_value"),
    ([{"url": "https://example.com/"}], "object"),
    ({"url": "https://example.com/", "scope_value": "Foobar"}, "scope_value"),
    ({"url": "https://example.com/", "statuses": ["running"]}, "statuses"),
    ({"url": "https://example.com/", "statuses": []}, "statuses"),
    ({"url": "https://example.com/", "statuses": "done"}, "statuses"),
    ({"url": "https://example.com/", "description": "x" * 201}, "description"),
    ({"url": "https://example.com/", "enabled": "yes"}, "enabled"),
    ({"url": "https://example.com/", "secret": "mine"}, "secret"),
]


@pytest.mark.gen_test(timeout=60)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(api):
    for body, field in BAD_BODIES:
        reply = await api("POST", "/webhooks", body)
        assert reply.code == 400, (body, reply)
        assert field in reply.json["message"], (body, reply.json["message"])
    assert (await api("GET", "/webhooks")).data == []
    assert models.Webhook.select().count() == 0
    hook = await add_hook(api, "https://example.com/kept")
    for body, field in BAD_BODIES[:3] + [({"scope": "worker"}, "scope_value")]:
        reply = await api("PATCH", "/webhooks/" + hook["id"], body)
        assert reply.code == 400 and field in reply.json["message"], (body, reply)
    kept = (await api("GET", "/webhooks/" + hook["id"])).data[0]
    assert {key: kept[key] for key in hook if key != "secret"} == \
        {key: hook[key] for key in hook if key != "secret"}
    assert (await api("POST", "/webhooks/nosuchhook/test")).code == 404


def test_pending_deliveries_are_sent_after_a_restart(tmp_path):
    """A delivery whose receiver was away is still owed after the server restarts, and is
    delivered once the receiver is back."""
    port = free_port()
    server = ServerProcess(tmp_path, "--webhook-retry-delay", "1", "--webhook-retries", "50",
                           "--webhook-timeout", "5", workers_dir=workers_folder(
                               tmp_path / "workers"))
    receiver = None
    try:
        server.wait_ready()
        hook = server.api("POST", "/webhooks", {"url": "http://127.0.0.1:%d/back" % port})[0]
        job = server.create_job("Foobar")
        server.wait_for_job(job["id"])
        owed = "/webhooks/%s/deliveries" % hook["id"]
        until(lambda: server.api("GET", owed)[0]["attempts"] >= 1, what="a failed attempt")
        assert server.stop() == 0
        receiver = Receiver(port)
        server.start().wait_ready()
        [received] = until(lambda: receiver.received("/back"), what="the delivery")
        assert json.loads(received.body)["job"]["id"] == job["id"]
        assert received.headers["X-JobJoker-Signature"] == signature_of(
            hook["secret"], received.headers, received.body)
        delivered = until(lambda: [d for d in server.api("GET", owed)
                                   if d["state"] == "delivered"], what="it recorded")
        assert delivered[0]["attempts"] >= 2 and delivered[0]["job"] == job["id"]
    finally:
        server.discard()
        if receiver is not None:
            receiver.close()


def test_a_bad_webhook_option_stops_the_server_saying_why(tmp_path):
    with pytest.raises(StartupError, match="webhook_timeout"):
        load_config({"data_dir": tmp_path, "webhook_timeout": 0}, environ={})


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_delivery_is_claimed_by_one_sender_until_its_claim_lapses(storage):
    """What keeps two servers of one database from sending a delivery at the same time: the
    conditional UPDATE of its claim, whose row count decides."""
    box = SecretBox([Fernet(Fernet.generate_key())], "a test key")
    now = time.time()

    def owe(tx):
        models.Webhook.create(id="a" * 16, url="http://127.0.0.1:9/", scope="server",
                              statuses="done", secret=box.seal({"secret": "whsec_x"}),
                              created=now)
        models.WebhookDelivery.create(hook="a" * 16, job="j" * 20, body="{}", state="pending",
                                      next_attempt=now, created=now)
    await storage.transaction(owe)
    [first] = await storage.transaction(claim_due, now, 8, 60.0, box)
    assert (first.secret, first.problem, first.attempts) == ("whsec_x", None, 0)
    assert await storage.transaction(claim_due, now + 1, 8, 60.0, box) == []  # held
    [lapsed] = await storage.transaction(claim_due, now + 61, 8, 60.0, box)  # its server died
    assert lapsed.id == first.id
    assert await storage.transaction(record, first.id, 1, 200, None, True, False, 1.0,
                                     now + 62) == "delivered"
    assert await storage.transaction(claim_due, now + 200, 8, 60.0, box) == []
