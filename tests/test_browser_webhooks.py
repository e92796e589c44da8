"""The admin page's Webhooks tab in a real browser (see test_browser.py for the fixtures): an
admin adds a webhook and sees its secret once, a job's end reaches a real local receiver signed
with that secret, the deliveries show it, and the hook is disabled and deleted; a viewer has no
such tab."""
import pytest

from tests.support import until
from tests.test_browser import AdminPage, admin, browser, expect, new_user, server  # noqa: F401
from tests.webhook_support import Receiver, signature_of


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_an_admin_adds_a_webhook_sees_its_secret_once_and_its_deliveries(
        admin, server, receiver):  # noqa: F811
    admin.goto("#webhooks")
    page = admin.page
    expect(page.locator("#panel-webhooks")).to_be_visible()
    page.fill("#webhook-url", "ftp://nowhere/")
    page.click("#webhook-submit")
    expect(admin.alert).to_contain_text("url")  # the server's refusal, naming the field
    page.fill("#webhook-url", receiver.url("/page"))
    page.select_option("#webhook-scope", "worker")
    page.fill("#webhook-scope-value", "Echo")
    page.uncheck("input[name=webhook-status][value=stop]")
    page.fill("#webhook-description", "<b>from the page</b>")
    page.click("#webhook-submit")
    expect(page.locator("#webhook-secret")).to_be_visible()
    secret = page.locator("#webhook-secret-value").input_value()
    assert secret.startswith("whsec_")
    row = page.locator("#webhooks-rows tr", has_text=receiver.url("/page"))
    expect(row).to_contain_text("worker Echo")
    expect(row).to_contain_text("done, error")
    expect(row).to_contain_text("<b>from the page</b>")  # as text
    page.click("#webhook-secret-done")
    expect(page.locator("#webhook-secret")).to_be_hidden()
    assert page.locator("#webhook-secret-value").input_value() == ""  # kept nowhere

    job = server.create_job("Echo", {"lines": ["to a webhook"]})
    server.wait_for_job(job["id"])
    [received] = until(lambda: receiver.received("/page"), what="the delivery")
    assert received.headers["X-JobJoker-Signature"] == signature_of(secret, received.headers,
                                                                    received.body)
    hook_id = row.get_attribute("data-id")
    until(lambda: server.api("GET", "/webhooks/%s/deliveries" % hook_id)[0]["state"]
          == "delivered", what="the delivery to be recorded")
    row.get_by_role("button", name="Deliveries of").click()
    deliveries = page.locator("#webhook-deliveries-rows tr")
    expect(deliveries).to_have_count(1)
    expect(deliveries.first).to_contain_text(job["id"])
    expect(deliveries.first).to_contain_text("delivered")

    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text("disabled")
    assert server.api("GET", "/webhooks/" + hook_id)[0]["enabled"] is False
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert [kind for kind, _ in admin.dialogs] == ["confirm"]
    assert server.call("GET", "/webhooks/" + hook_id).code == 404


def test_a_viewer_has_no_webhooks_tab(browser, server):  # noqa: F811
    viewer = AdminPage(browser, server, user=new_user(server, "viewer", "wanda"))
    try:
        viewer.goto("#webhooks")
        expect(viewer.page.locator("#tab-webhooks")).to_be_hidden()
        expect(viewer.page.locator("#panel-webhooks")).to_be_hidden()
        expect(viewer.page.locator("#panel-jobs")).to_be_visible()
        assert viewer.csp_violations() == [] and viewer.page_errors == []
    finally:
        viewer.close()
