"""The admin page's forms, lists and job actions, as a new user meets them (issue 13): nothing
starts with a value nobody chose, a disabled button says why, an action is offered only when the
job's state allows it and asks in the page, invalid workers are marked, a worker can be run from
Manage Workers, the list counts its jobs, and the header fits a 1024-pixel screen.

The server, the browser and the signed-in page come from ``tests/test_browser.py`` (a real
``run_server.py``, Debian's Chromium driven by Playwright); this module gets a server of its own.
"""
import re
import time

import pytest

from jobjoker import states
from tests.support import ROOT
from tests.test_browser import (  # noqa: F401 (fixtures)
    RESIZE_WORKER, AdminPage, admin, browser, expect, new_user, server)

DEPLOY_WORKER = '''from jobjoker import Worker


class Deploy(Worker):
    """Deploys (pretends to)."""

    parameters = {
        "target": {"type": "string", "enum": ["staging", "production"], "required": True},
        "confirm": {"type": "boolean", "required": True},
        "notify": {"type": "boolean"},
        "retries": {"type": "integer", "default": 2},
    }

    def run(self):
        self.log("deploy %r" % (sorted(self.params.items()),))
'''

BROKEN_WORKER = "from jobjoker import Worker\n\n\nclass Broken(Worker:\n    pass\n"


# --- the table of actions -----------------------------------------------------------------------

def test_the_pages_table_of_actions_is_the_servers():
    # The page enables Start, Stop, Kill and Delete from its copy of the server's table: the
    # two must agree, status for status.
    source = (ROOT / "static" / "js" / "jobstates.js").read_text()
    table = re.search(r"export const ACTIONS = \{(.*?)\};", source, re.S).group(1)
    page = {action: set(re.findall(r'"(\w+)"', listed))
            for action, listed in re.findall(r"(\w+): \[([^\]]*)\]", table)}
    server_table = {action: {status.value for status in sources}
                    for action, sources in states.ACTIONS.items()}
    assert page == server_table
    # ... and the server's table is its state machine's: a start (of an idle or scheduled job),
    # a resume (of a paused one) and the server's own hand-over from the queue make a job
    # active, stop and kill make it stop (a waiting one too: cancelled), pause makes it paused,
    # and a running job (active or paused) is never deleted.
    assert states.ACTIONS["start"] | states.ACTIONS["resume"] | {states.JobStatus.QUEUED} == \
        states.allowed_sources("active")
    assert states.ACTIONS["stop"] == states.ACTIONS["kill"] == states.allowed_sources("stop")
    assert states.ACTIONS["pause"] == states.allowed_sources("paused")
    assert not states.RUNNING_STATES & states.ACTIONS["delete"]
    assert set(states.ACTIONS) == set(states.COMMANDS) | {"delete"}


def buttons(admin):
    page = admin.page
    return {name: page.locator("#job-detail [data-command=%s]" % name)
            for name in ("start", "stop", "kill", "delete")}


def expect_enabled(admin, *enabled):
    for name, button in buttons(admin).items():
        if name in enabled:
            expect(button).to_be_enabled()
        else:
            expect(button).to_be_disabled()


def test_actions_follow_the_jobs_state_live_and_ask_in_the_page(admin, server):
    job = server.create_job("Echo", {"wait": 60}, start=False)
    admin.goto()
    admin.open_job(job["id"])
    page = admin.page
    hint = page.locator("#job-detail-actions-hint")
    expect_enabled(admin, "start", "delete")
    expect(hint).to_contain_text("Not started yet")
    expect(buttons(admin)["stop"]).to_have_attribute("title", re.compile("has not started"))
    # Started elsewhere: the buttons follow the status as it arrives.
    server.api("PUT", "/jobs/%s/status" % job["id"], "start")
    expect(admin.status_badge).to_have_text("active")
    expect_enabled(admin, "stop", "kill")
    expect(buttons(admin)["delete"]).to_have_attribute(
        "title", re.compile("stop or kill it before deleting it"))
    # Kill asks in the page, beside the buttons; Cancel sends nothing.
    buttons(admin)["kill"].click()
    confirm = page.locator("#job-detail-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Kill job %s (Echo)?" % job["id"])
    page.click("#job-detail-confirm-no")
    expect(confirm).to_be_hidden()
    assert server.api("GET", "/jobs/%s" % job["id"])[0]["status"] == "active"
    buttons(admin)["kill"].click()
    page.get_by_role("button", name="Kill it").click()
    expect(admin.status_badge).to_have_text("stop")
    expect_enabled(admin, "delete")
    expect(hint).to_contain_text("Ended (stop)")
    expect(buttons(admin)["start"]).to_have_attribute("title", re.compile("a job runs once"))
    buttons(admin)["delete"].click()
    expect(confirm).to_contain_text("This cannot be undone")
    page.get_by_role("button", name="Delete it").click()
    expect(page.locator("#job-detail-notice")).to_contain_text("deleted")
    expect_enabled(admin)
    expect(admin.row(job["id"])).to_have_count(0)
    assert admin.dialogs == []  # never the browser's confirm()
    assert server.call("GET", "/jobs/%s" % job["id"]).code == 404


def test_a_refused_action_explains_itself_beside_the_buttons(admin, server):
    server.api("PUT", "/workers/Ephemeral", RESIZE_WORKER.replace("Resize", "Ephemeral"))
    job = server.create_job("Ephemeral", {"width": 3}, start=False)
    server.api("DELETE", "/workers/Ephemeral")
    admin.goto()
    admin.open_job(job["id"])
    start = buttons(admin)["start"]
    expect(start).to_be_enabled()  # idle: the status allows it; the server refuses it
    start.click()
    refusal = admin.page.locator("#job-detail .job-actions [role=alert]")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("no longer exists")
    expect(admin.alert).to_be_empty()  # not in a box over the log
    expect(start).to_be_enabled()


# --- Create a Job -------------------------------------------------------------------------------

def test_nothing_in_create_a_job_starts_with_a_value_nobody_chose(admin, server):
    server.api("PUT", "/workers/Deploy", DEPLOY_WORKER)
    admin.goto("#create-job")
    page = admin.page
    submit = page.locator("#create-job-submit")
    missing = page.locator("#create-job-missing")
    # No worker is chosen for the user, and the disabled button says what it waits for.
    expect(page.locator("#create-job-worker")).to_have_value("")
    expect(submit).to_be_disabled()
    expect(missing).to_have_text("To send it: Choose a worker.")
    page.select_option("#create-job-worker", "Deploy")
    form = page.locator("#create-job-params .params-form")
    target, confirm, notify = (form.get_by_label(name) for name in
                               ("target", "confirm", "notify"))
    expect(target).to_have_value("")  # not "staging"
    expect(target.locator("option:checked")).to_have_text("— choose —")
    expect(confirm).to_have_value("")  # a boolean nobody set is neither true nor false
    expect(notify).to_have_value("")
    expect(form.get_by_label("retries")).to_have_value("2")  # its declared default
    expect(submit).to_be_disabled()
    expect(missing).to_be_visible()
    expect(missing).to_contain_text("target: choose one.")
    expect(missing).to_contain_text("confirm: choose true or false.")
    expect(submit).to_have_attribute("title", re.compile("target: choose one"))
    target.select_option(label="production")
    expect(missing).not_to_contain_text("target")
    confirm.select_option(label="true")
    expect(missing).to_be_hidden()
    expect(submit).to_be_enabled()
    page.uncheck("#create-job-start")
    submit.click()
    expect(admin.status_badge).to_have_text("idle")
    job_id = page.locator("#job-detail-facts .job-id").inner_text()
    # Only what was chosen, and the defaults the server fills in: no notify = false.
    assert server.api("GET", "/jobs/%s" % job_id)[0]["parameters"] == {
        "target": "production", "confirm": True, "retries": 2}


def test_parameter_labels_use_the_label_font_and_required_ones_are_marked(admin, server):
    server.api("PUT", "/workers/Resize", RESIZE_WORKER)
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "Resize")
    form = page.locator("#create-job-params .params-form")
    font = "(element) => getComputedStyle(element).fontFamily"
    worker_label = page.locator("label[for=create-job-worker]")
    for name in ("width", "mode"):
        label = form.locator("label", has_text=name)
        assert label.evaluate(font) == worker_label.evaluate(font)
    expect(form.locator("label", has_text="width")).to_contain_text("required")
    expect(form.locator("label", has_text="mode")).not_to_contain_text("required")


def test_a_worker_that_declares_no_parameters_says_they_are_not_checked(admin, server):
    server.api("PUT", "/workers/Resize", RESIZE_WORKER)
    admin.goto("#create-job")
    page = admin.page
    note = page.locator("#create-job-unchecked")
    page.select_option("#create-job-worker", "Echo")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Echo declares no parameters, so they are not checked")
    page.select_option("#create-job-worker", "Resize")
    expect(note).to_be_hidden()


# --- Manage Workers -----------------------------------------------------------------------------

def test_an_invalid_worker_is_marked_and_cannot_be_chosen(admin, server):
    # The API refuses such code; a file put in the folder by hand can still hold it.
    (server.workers_dir / "Broken.py").write_text(BROKEN_WORKER)
    admin.goto("#workers")
    item = admin.page.locator("#workers-list li[data-worker=Broken]")
    expect(item.locator(".badge")).to_have_text("invalid code")
    expect(item.locator(".worker-error")).to_contain_text("line 4")
    expect(item.get_by_role("button", name="Run Broken")).to_have_count(0)
    admin.tab("create-job")
    option = admin.page.locator("#create-job-worker option[value=Broken]")
    expect(option).to_be_disabled()
    expect(option).to_contain_text("invalid code, cannot run: line 4")
    admin.goto("#create-job/Broken")  # not even from the address
    expect(admin.page.locator("#create-job-worker")).to_have_value("")


def test_run_from_manage_workers_opens_create_a_job_with_the_worker_chosen(admin, server):
    server.api("PUT", "/workers/Resize", RESIZE_WORKER)
    admin.goto("#workers")
    page = admin.page
    item = page.locator("#workers-list li[data-worker=Resize]")
    parameters = item.get_by_role("list", name="Parameters of Resize")
    expect(parameters.locator("li")).to_have_count(4)
    expect(parameters).to_contain_text("width (integer, required, ≥ 1, ≤ 4000) — Pixels")
    expect(parameters).to_contain_text('mode (string, one of "fast", "safe", default "safe")')
    expect(page.locator("#workers-list li[data-worker=Echo]")).to_contain_text(
        "Declares no parameters")
    item.get_by_role("button", name="Run Resize").click()
    expect(page.locator("#panel-create-job")).to_be_visible()
    expect(page.locator("#create-job-worker")).to_have_value("Resize")
    expect(page.locator("#create-job-params .params-form")).to_be_visible()


def test_a_viewer_has_no_run_button(browser, server):
    viewer = AdminPage(browser, server, user=new_user(server, "viewer", "page-viewer"))
    try:
        viewer.goto("#workers")
        item = viewer.page.locator("#workers-list li[data-worker=Echo]")
        expect(item.get_by_role("button", name="Code of Echo")).to_be_visible()
        expect(item.get_by_role("button", name="Run Echo")).to_be_hidden()
    finally:
        viewer.close()


# --- the list and the opened job ------------------------------------------------------------------

def test_the_list_counts_its_jobs_from_x_total_count_and_does_without(admin, server):
    server.create_job("Echo", {}, start=False)
    page = admin.page
    headers = {}

    def add_count(route):  # the server's own count is taken out: this test sets its own
        response = route.fetch()
        sent = {k: v for k, v in response.headers.items() if k.lower() != "x-total-count"}
        route.fulfill(response=response, headers={**sent, **headers})

    page.route(re.compile(r"/jobs(\?.*)?$"), add_count)
    admin.goto()
    range_text = page.locator("#jobs-range")
    expect(range_text).to_have_text(re.compile(r"^1–\d+$"))  # no header: the range alone
    headers["x-total-count"] = "1345"
    page.select_option("#jobs-filter-status", "idle")
    expect(range_text).to_have_text(re.compile(r"^1–\d+ of 1,345 jobs$"))
    server.create_job("Echo", {}, start=False)  # the feed adds it to the count
    expect(range_text).to_have_text(re.compile(r"^1–\d+ of 1,346 jobs$"))
    page.unroute(re.compile(r"/jobs(\?.*)?$"))
    admin.goto()  # and the server's own header counts them
    expect(range_text).to_have_text(re.compile(r"^1–\d+ of [\d,]+ jobs$"))


def test_the_list_shows_the_date_of_a_job_not_from_today(admin, server):
    job = server.create_job("Echo", {})
    server.wait_for_job(job["id"])
    # The browser lives two days later: the job is not from its today.
    admin.page.clock.set_fixed_time(time.time() + 2 * 86400)
    admin.goto()
    started = admin.row(job["id"]).locator(".cell-time time").first
    day = time.strftime("%Y-%m-%d", time.localtime(job["created"]))
    expect(started).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    assert started.inner_text().startswith(day[:4])


def test_a_finished_job_without_a_response_says_no_response(admin, server):
    job = server.create_job("Counter", {"count": 1})
    server.wait_for_job(job["id"])
    admin.goto()
    admin.open_job(job["id"])
    expect(admin.page.locator("#job-response-range")).to_have_text("no response")
    expect(admin.page.locator("#job-log-range")).not_to_have_text("no response")


# --- the header ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1024, 1366, 1440])
def test_offline_keeps_the_user_name_and_sign_out_in_the_header(browser, server, width):
    # An admin has every tab; a long name (up to 64 characters) is cut short, not pushed off.
    user = new_user(server, "admin", "margaret-hamilton-apollo-guidance-computer")
    viewer = AdminPage(browser, server, viewport={"width": width, "height": 768}, user=user)
    page = viewer.page
    try:
        # The live feed is refused from now on: the page goes offline and keeps retrying.
        page.route_web_socket(re.compile(r"/events$"), lambda socket: socket.close())
        page.reload()
        expect(page.locator("#connection-text")).to_have_text("Offline — reconnecting…")
        for selector in ("#account-name", "#sign-out", "#connection"):
            element = page.locator(selector)
            expect(element).to_be_visible()
            box = element.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        expect(page.locator("#account-name")).to_have_attribute(
            "title", re.compile(re.escape(user[0])))
    finally:
        viewer.close()


def test_deleting_a_worker_asks_in_its_row_and_a_refusal_is_shown_there(admin, server):
    server.api("PUT", "/workers/Doomed", RESIZE_WORKER.replace("Resize", "Doomed"))
    admin.goto("#workers")
    page = admin.page
    item = page.locator("#workers-list li[data-worker=Doomed]")
    item.get_by_role("button", name="Delete Doomed").click()
    question = item.get_by_role("group", name="Delete Doomed?")
    expect(question).to_contain_text("Its file is removed; its jobs stay.")
    question.get_by_role("button", name="Cancel").click()
    expect(question).to_have_count(0)
    # While one of its jobs runs, the server refuses: the reason shows in the row.
    job = server.create_job("Echo", {"wait": 60})
    echo = page.locator("#workers-list li[data-worker=Echo]")
    echo.get_by_role("button", name="Delete Echo").click()
    echo.get_by_role("button", name="Delete it").click()
    expect(echo.get_by_role("alert")).to_contain_text(
        "worker Echo has an active job (%s)" % job["id"])
    expect(admin.alert).to_be_empty()
    server.api("PUT", "/jobs/%s/status" % job["id"], "kill")
    item.get_by_role("button", name="Delete Doomed").click()
    item.get_by_role("button", name="Delete it").click()
    expect(item).to_have_count(0)
    assert admin.dialogs == []
    assert server.call("GET", "/workers/Doomed").code == 404
