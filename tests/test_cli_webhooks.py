"""``jobjoker webhooks ...`` and the client's webhook methods, as real processes against a real
server, delivering to a real local receiver."""
import pytest

from tests.support import until, wait_for_end
from tests.test_cli import client, jj  # noqa: F401  (fixtures)
from tests.webhook_support import Receiver, signature_of


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.mark.parametrize("args", [["webhooks", name] for name in (
    "list", "add", "edit", "delete", "deliveries", "test", "rotate-secret")])
def test_the_webhook_commands_have_help(jj, args):  # noqa: F811
    result = jj(*args, "--help")
    assert result.returncode == 0 and "JOBJOKER_PASSWORD" in result.stdout


def test_add_list_deliveries_edit_and_delete(jj, client, receiver):  # noqa: F811
    added = jj("webhooks", "add", receiver.url("/cli"), "--worker", "Foobar", "--status", "done",
               "--description", "from the CLI")
    assert added.returncode == 0, added.stderr
    secret, note = added.stdout.splitlines()
    hook_id = note.split()[1]
    assert secret.startswith("whsec_") and "not shown again" in note

    listed = jj("webhooks", "list")
    assert listed.returncode == 0 and hook_id in listed.stdout
    assert "worker:Foobar" in listed.stdout and secret not in listed.stdout

    job = client.create_job("Foobar", start=True)
    wait_for_end(client, job["id"])
    [received] = until(lambda: receiver.received("/cli"), what="the delivery")
    assert received.headers["X-JobJoker-Signature"] == signature_of(secret, received.headers,
                                                                    received.body)
    delivered = until(lambda: [d for d in client.webhook_deliveries(hook_id)
                               if d["state"] == "delivered"], what="it to be recorded")
    assert delivered[0]["job"] == job["id"]
    table = jj("webhooks", "deliveries", hook_id)
    assert table.returncode == 0 and job["id"] in table.stdout and "delivered" in table.stdout

    edited = jj("webhooks", "edit", hook_id, "--server", "--disable", "--json")
    assert edited.returncode == 0, edited.stderr
    assert (edited.json["scope"], edited.json["scope_value"], edited.json["enabled"]) == \
        ("server", None, False)
    rotated = jj("webhooks", "rotate-secret", hook_id, "--json")
    assert rotated.json["secret"] not in (secret, None)
    tested = jj("webhooks", "test", hook_id, "--json")
    assert tested.returncode == 0 and tested.json["event"] == "webhook.test"
    failed = until(lambda: [d for d in client.webhook_deliveries(hook_id)
                            if d["state"] == "failed"], what="the test to fail: disabled")
    assert failed[0]["last_error"] == "the webhook is disabled"

    bad = jj("webhooks", "add", "ftp://example.com/")
    assert bad.returncode != 0 and "url" in bad.stderr
    assert jj("webhooks", "delete", hook_id).returncode == 0
    assert jj("webhooks", "deliveries", hook_id).returncode == 5  # not found
    assert client.webhooks() == []
