"""The admin page in a real browser: Playwright drives Debian's Chromium against a real server
process (``run_server.py`` on SQLite, with the sample workers and a few test workers in a temp
folder), as a user would: signed in through the sign-in form, so the session cookie, the XSRF
token on every command and the cookie on WebSocket upgrades are all exercised.

Locally, a missing Playwright or Chromium skips these tests; with ``CI=true`` it fails them,
because CI must run them (``.ci/run`` installs Chromium, the ``test`` extra installs
Playwright). ``playwright install`` is never needed: the tests launch ``/usr/bin/chromium``.
Every test fails if the page reports a Content-Security-Policy violation. Screenshots of each
tab go to ``test-output/screenshots/`` (git-ignored).
"""
import os
import re

import pytest

from tests.support import ROOT, ServerProcess, bearer, unavailable, workers_folder

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as error:  # reported by the browser fixture: skip locally, fail in CI
    sync_playwright = None
    PLAYWRIGHT_PROBLEM = "Playwright is not installed (pip install -e '.[test]'): %s" % error

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps trying to reach the outside and is refused.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORD = "browser-test-password"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = ROOT / "test-output" / "screenshots"
XSS = "<img src=x onerror=alert(1)>"
# Every wait (an expect, a navigation, a click) ends at its event; this long only on a failure,
# or on a machine so busy that the page takes that long to load.
WAIT_MS = 60_000

ECHO_WORKER = '''import time

from jobjoker import Worker


class Echo(Worker):
    """Logs each of `lines`, responds `response`, then stays active for `wait` seconds; raises
    when `fail` is set."""

    def run(self):
        for line in self.get_parameter("lines", []):
            self.log(line)
        self.response(self.get_parameter("response", "echoed"))
        deadline = time.time() + float(self.get_parameter("wait", 0))
        while time.time() < deadline and self.is_active():
            time.sleep(0.05)
        if self.get_parameter("fail"):
            raise ValueError("asked to fail")
'''

COUNTER_WORKER = '''import time

from jobjoker import Worker


class Counter(Worker):
    """Prints `count` numbered lines as fast as it can, pausing `pause` seconds every
    `every` lines."""

    def run(self):
        every = int(self.get_parameter("every", 0))
        for i in range(int(self.get_parameter("count", 10))):
            print("line %d" % i)
            if every and i % every == every - 1:
                time.sleep(float(self.get_parameter("pause", 0.2)))
'''


def missing(reason):
    unavailable(reason)


# --- the server ---------------------------------------------------------------------------------

class Server(ServerProcess):
    """``run_server.py`` in its own process with the test workers, restartable on the same port
    and data dir, remembering a signed-in session for new browser contexts."""

    def __init__(self, tmp_path):
        workers = workers_folder(tmp_path / "workers", {"Echo": ECHO_WORKER,
                                                        "Counter": COUNTER_WORKER})
        super().__init__(tmp_path, "--stop-grace", "2", password=PASSWORD, workers_dir=workers)
        self.base = self.url
        self.session_state = None

    def signed_in_state(self, browser):
        """Cookies of a session opened through the sign-in form (once per server: a login
        costs a password hash), for new browser contexts to start signed in."""
        if self.session_state is None:
            context = new_context(browser, viewport=LAPTOP)
            page = context.new_page()
            sign_in(page, self.base)
            self.session_state = context.storage_state()
            context.close()
        return self.session_state


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module's tests; each test makes jobs and workers of its own."""
    instance = Server(tmp_path_factory.mktemp("browser"))
    try:
        yield instance.wait_ready()
    finally:
        instance.discard()


# --- the browser --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        missing(PLAYWRIGHT_PROBLEM)
    if not os.access(CHROMIUM, os.X_OK):
        missing("Chromium is not installed at %s (apt-get install chromium)" % CHROMIUM)
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def new_context(browser, **options):
    """A browser context whose navigations and actions wait up to ``WAIT_MS``."""
    context = browser.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    return context


def sign_in(page, base, username="admin", password=PASSWORD):
    """Open the page without credentials, get sent to the form, sign in, land on the page."""
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")
    expect(page).to_have_url(base + "/#jobs")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


SENTINEL = "http://csp-sentinel.invalid/pixel.png"  # refused by img-src: a violation on purpose
# Records what the page itself reports of a policy violation (the console also says so).
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


class AdminPage:
    """A logged-in browser tab on the admin page, recording dialogs, errors and CSP
    violations. Signed in as admin, or as ``user`` (``(username, password)``) through the
    form."""

    def __init__(self, browser, server, viewport=LAPTOP, user=None):
        self.server = server
        self.context = new_context(
            browser, viewport=viewport,
            storage_state=None if user else server.signed_in_state(browser))
        self.context.add_init_script(CSP_RECORDER)
        self.page = self.context.new_page()
        self.dialogs = []
        self.console_errors = []
        self.page_errors = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("console", lambda message: message.type == "error"
                     and self.console_errors.append(message.text))
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        if user:
            sign_in(self.page, server.base, *user)

    def _on_dialog(self, dialog):
        self.dialogs.append((dialog.type, dialog.message))
        dialog.accept()  # confirm() answers yes; an alert() would be recorded, then closed

    def goto(self, fragment=""):
        response = self.page.goto(self.server.base + "/" + fragment)
        expect(self.page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(self.page.locator("body")).to_have_attribute("data-role", re.compile("."))
        return response

    def tab(self, name):
        self.page.click("[data-tab=%s]" % name)
        expect(self.page.locator("#panel-%s" % name)).to_be_visible()

    def row(self, job_id):
        return self.page.locator('#jobs-rows tr[data-id="%s"]' % job_id)

    def open_job(self, job_id):
        self.row(job_id).get_by_role("button").click()
        expect(self.page.locator("#job-detail-facts .job-id")).to_have_text(job_id)

    @property
    def status_badge(self):
        return self.page.locator("#job-detail-status")

    @property
    def log_lines(self):
        return self.page.locator("#job-log-lines .line-text")

    @property
    def alert(self):
        return self.page.locator("#alert-area")

    def mark(self):
        """Set a value that only survives as long as the page is not reloaded."""
        self.page.evaluate("window.__notReloaded = true")

    def assert_not_reloaded(self):
        assert self.page.evaluate("window.__notReloaded === true"), "the page was reloaded"

    def csp_violations(self):
        reported = [text for text in self.console_errors if "Content Security Policy" in text]
        try:
            reported += self.page.evaluate("window.__cspViolations || []")
        except Exception:  # the page is gone: the console record is all there is
            pass
        return [text for text in reported if SENTINEL not in text]

    def settle(self):
        """Wait until what the page has done so far has shown its effects: an image load that
        fails, then a violation of the policy made on purpose, are seen after whatever failed
        load (an injected ``<img onerror>``) and violation came before them."""
        self.page.evaluate("""() => new Promise((done) => {
            const image = new Image();
            image.onload = image.onerror = done;
            image.src = "/settle-" + Date.now() + ".png";
        })""")
        with self.page.expect_console_message(lambda message: SENTINEL in message.text):
            self.page.evaluate("(src) => { new Image().src = src; }", SENTINEL)
        self.page.wait_for_function(
            "(src) => window.__cspViolations.some((text) => text.includes(src))", arg=SENTINEL)

    def screenshot(self, name, **options):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / ("%s.png" % name)), **options)

    def close(self):
        self.context.close()


@pytest.fixture
def admin(browser, server):
    """The admin page in a fresh browser context; the test fails on any CSP violation or
    uncaught script error."""
    page = AdminPage(browser, server)
    yield page
    violations, errors = page.csp_violations(), page.page_errors
    page.close()
    assert not violations, "Content-Security-Policy violations: %s" % violations
    assert not errors, "uncaught errors in the page: %s" % errors


def editor_text(admin, selector):
    """The whole text of the CodeMirror editor inside ``selector``."""
    return admin.page.evaluate(
        "(s) => document.querySelector(s + ' .CodeMirror').CodeMirror.getValue()", selector)


def set_editor_text(admin, selector, text):
    admin.page.evaluate(
        "([s, t]) => document.querySelector(s + ' .CodeMirror').CodeMirror.setValue(t)",
        [selector, text])


# --- the tests ----------------------------------------------------------------------------------

def test_the_page_is_served_under_a_strict_csp_and_every_tab_loads_without_violations(admin):
    response = admin.goto()
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    for name in ("create-job", "workers", "create-worker", "account", "users", "audit", "jobs"):
        admin.tab(name)
    admin.tab("workers")
    admin.page.get_by_role("button", name="Code of Foobar").click()
    expect(admin.page.locator("#worker-code .CodeMirror")).to_be_visible()
    expect(admin.page.locator("#worker-code .cm-keyword").first).to_be_visible()  # highlighted
    admin.tab("create-worker")
    expect(admin.page.locator("#create-worker-editor .CodeMirror")).to_contain_text("MyWorker")
    admin.settle()
    assert admin.csp_violations() == []


def test_signing_in_through_the_form_opens_the_page_and_signing_out_leaves_it(browser, server):
    context = new_context(browser, viewport=LAPTOP)
    try:
        page = context.new_page()
        page.goto(server.base + "/login")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "laptop-0-sign-in.png"))
        page.fill("#login-username", "admin")
        page.fill("#login-password", "wrong")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("wrong username or password")
        sign_in(page, server.base)
        expect(page.locator("#account-name")).to_have_text("admin (admin)")
        page.click("#sign-out")
        expect(page).to_have_url(re.compile(r"/login$"))
        page.goto(server.base + "/")  # the session is gone: back to the form
        expect(page).to_have_url(re.compile(r"/login$"))
    finally:
        context.close()


def test_the_tabs_work_with_the_keyboard(admin):
    admin.goto()
    page = admin.page
    page.focus("#tab-jobs")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-create-job")).to_be_focused()
    expect(page.locator("#tab-create-job")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-create-job")).to_be_visible()
    expect(page.locator("#panel-jobs")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.locator("#tab-audit")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")  # wraps around
    expect(page.locator("#tab-jobs")).to_have_attribute("aria-selected", "true")
    # Only the selected tab is in the Tab order: Tab goes on into the panel.
    assert page.evaluate("[...document.querySelectorAll('[role=tab]')].map(t => t.tabIndex)") \
        == [0] + [-1] * (page.locator("[role=tab]").count() - 1)  # whatever tabs there are
    page.keyboard.press("Tab")
    expect(page.locator("#tablist [role=tab]:focus")).to_have_count(0)


def test_create_a_worker_from_the_page(admin, server):
    admin.goto("#create-worker")
    expect(admin.page.locator("#create-worker-editor .CodeMirror")).to_contain_text(
        "class MyWorker(Worker)")
    admin.page.fill("#create-worker-name", "Greeter")
    assert "class Greeter(Worker):" in editor_text(admin, "#create-worker-editor")
    admin.page.click("#create-worker-submit")
    expect(admin.page.locator("#status-area")).to_contain_text("Greeter")
    code = server.api("GET", "/workers/Greeter")[0]
    assert code["description"].startswith("Says what this worker does")
    admin.tab("workers")
    expect(admin.page.locator("#workers-list")).to_contain_text("Greeter")
    # An invalid name is refused before anything is sent.
    admin.tab("create-worker")
    admin.page.fill("#create-worker-name", "9lives")
    expect(admin.page.locator("#create-worker-name-error")).to_contain_text("a letter")
    expect(admin.page.locator("#create-worker-name")).to_have_attribute("aria-invalid", "true")


def test_create_and_start_a_job_see_its_log_live_then_stop_it(admin, server):
    admin.goto("#create-job")
    admin.mark()
    page = admin.page
    page.select_option("#create-job-worker", "TestWorker")
    form = page.locator("#create-job-params .params-form")  # TestWorker declares them
    form.get_by_label("count", exact=True).fill("200")
    form.get_by_label("sleep", exact=True).fill("0.2")
    expect(page.locator("#create-job-start")).to_be_checked()
    page.click("#create-job-submit")
    # The page opens the new job in Manage Jobs and follows its log as lines arrive.
    expect(page.locator("#panel-jobs")).to_be_visible()
    expect(admin.status_badge).to_have_text("active")
    expect(admin.log_lines.filter(has_text=re.compile(r"^log 0$"))).to_have_count(1)
    expect(admin.log_lines.filter(has_text=re.compile(r"^log 5$"))).to_have_count(1)
    job_id = page.locator("#job-detail-facts .job-id").inner_text()
    expect(admin.row(job_id).locator(".badge")).to_have_text("active")
    page.get_by_role("button", name="Stop", exact=True).click()
    # It asks in the page, beside the buttons.
    expect(page.locator("#job-detail-confirm")).to_contain_text("Stop job %s" % job_id)
    page.get_by_role("button", name="Stop it").click()
    expect(admin.status_badge).to_have_text("stop")
    expect(admin.row(job_id).locator(".badge")).to_have_text("stop")
    expect(admin.log_lines.last).to_contain_text("ENDED stop")
    assert admin.dialogs == []
    admin.assert_not_reloaded()
    assert server.api("GET", "/jobs/%s" % job_id)[0]["status"] == "stop"


def test_delete_waits_for_the_job_to_end_then_kill_and_delete_work(admin, server):
    job = server.create_job("TestWorker", {"count": 300, "sleep": 0.2})
    admin.goto()
    admin.open_job(job["id"])
    expect(admin.status_badge).to_have_text("active")
    delete = admin.page.get_by_role("button", name="Delete", exact=True)
    expect(delete).to_be_disabled()
    expect(delete).to_have_attribute("title", "This job is active: stop or kill it before "
                                              "deleting it.")
    admin.page.get_by_role("button", name="Kill", exact=True).click()
    admin.page.get_by_role("button", name="Kill it").click()
    expect(admin.status_badge).to_have_text("stop")
    expect(admin.page.locator("#job-detail-facts")).to_contain_text("killed by SIGKILL")
    delete.click()
    admin.page.get_by_role("button", name="Delete it").click()
    expect(admin.row(job["id"])).to_have_count(0)
    expect(admin.page.locator("#job-detail-notice")).to_contain_text("deleted")
    assert admin.dialogs == []
    assert server.call("GET", "/jobs/%s" % job["id"]).code == 404


def test_a_worker_with_a_syntax_error_is_refused_with_its_line(admin, server):
    good = "from jobjoker import Worker\n\n\nclass Fragile(Worker):\n    def run(self):\n" \
           "        self.log('ok')\n"
    server.api("PUT", "/workers/Fragile", good)
    admin.goto("#workers")
    admin.page.get_by_role("button", name="Code of Fragile").click()
    expect(admin.page.locator("#worker-code .CodeMirror")).to_contain_text("class Fragile")
    broken = good.replace("def run(self):", "def run(self)")  # line 5
    set_editor_text(admin, "#worker-code", broken)
    admin.page.click("#worker-code-save")
    expect(admin.page.get_by_role("alert")).to_contain_text("line 5")
    error_line = admin.page.locator("#worker-code .cm-error-line")
    expect(error_line).to_have_count(1)
    expect(error_line.locator(".CodeMirror-linenumber")).to_have_text("5")
    expect(error_line).to_contain_text("def run(self)")
    assert server.call("GET", "/workers/Fragile/code").text == good  # nothing was saved
    # Fixing the line clears the mark, and saving works.
    set_editor_text(admin, "#worker-code", good.replace("'ok'", "'fixed'"))
    expect(error_line).to_have_count(0)
    admin.page.click("#worker-code-save")
    expect(admin.page.locator("#status-area")).to_contain_text("Fragile")


def test_html_in_log_lines_parameters_and_descriptions_is_shown_as_text(admin, server):
    lines = [XSS, "<script>alert(2)</script>", "<b>not bold</b>"]
    job = server.create_job("Echo", {"lines": lines, "response": XSS, "note": XSS})
    server.wait_for_job(job["id"])
    server.api("PUT", "/workers/Sneaky", 'from jobjoker import Worker\n\n\nclass Sneaky(Worker):\n'
               '    """%s"""\n\n    def run(self):\n        pass\n' % XSS)
    admin.goto()
    admin.open_job(job["id"])
    log = admin.page.locator("#job-log-lines")
    for line in lines:
        expect(log.get_by_text(line, exact=True)).to_be_visible()
    expect(admin.page.locator("#job-response-lines").get_by_text(XSS, exact=True)).to_be_visible()
    expect(admin.page.locator("#job-detail-facts .params-full")).to_contain_text(XSS)
    expect(admin.row(job["id"]).locator(".cell-params")).to_contain_text(XSS)
    admin.tab("workers")
    expect(admin.page.locator("#workers-list").get_by_text(XSS)).to_be_visible()
    admin.settle()  # an onerror would have fired, were there an img
    # Nothing became markup: no img (the favicon in the header aside), b or script element.
    assert admin.page.locator("main img, main b, main script").count() == 0
    assert admin.dialogs == []


def test_the_jobs_list_updates_live_when_jobs_change_elsewhere(admin, server):
    admin.goto()
    admin.mark()
    job = server.create_job("Echo", {"wait": 1}, start=False)
    row = admin.row(job["id"])
    expect(row.locator(".badge")).to_have_text("idle")
    expect(admin.page.locator("#jobs-rows tr").first).to_have_attribute("data-id", job["id"])
    server.api("PUT", "/jobs/%s/status" % job["id"], "start")
    expect(row.locator(".badge")).to_have_text("active")
    expect(row.locator(".badge")).to_have_text("done")
    expect(row.locator(".cell-time time")).to_have_count(2)  # started and stopped
    server.api("DELETE", "/jobs/%s" % job["id"])
    expect(row).to_have_count(0)
    admin.assert_not_reloaded()


def test_invalid_json_parameters_are_flagged_before_sending(admin, server):
    posts = []
    admin.page.on("request", lambda request: request.method == "POST"
                  and request.url.endswith("/jobs") and posts.append(request.url))
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "Echo")
    error = page.locator("#create-job-parameters-error")
    submit = page.locator("#create-job-submit")
    for text, problem in [('{"count": 3,}', "Line 1, column 12: trailing comma"),
                          ('{"count": 3\n "sleep": 1}', "Line 2, column 2: expected ',' or '}'"),
                          ("{'count': 3}", "double quotes"),
                          ('{"ok": True}', "True is Python; JSON writes it true"),
                          ("[1, 2]", "must be a JSON object")]:
        page.fill("#create-job-parameters", text)
        expect(error).to_be_visible()
        expect(error).to_contain_text(problem)
        expect(submit).to_be_disabled()
        expect(page.locator("#create-job-parameters")).to_have_attribute("aria-invalid", "true")
    page.keyboard.press("Enter")  # a submit by keyboard is refused too
    assert posts == []
    page.fill("#create-job-parameters", '{"lines": ["hello"]}')
    expect(error).to_be_hidden()
    page.uncheck("#create-job-start")
    expect(submit).to_have_text("Create job")
    submit.click()
    expect(admin.status_badge).to_have_text("idle")
    assert len(posts) == 1


RESIZE_WORKER = '''from jobjoker import Worker


class Resize(Worker):
    """Resizes (pretends to)."""

    parameters = {
        "width": {"type": "integer", "required": True, "minimum": 1, "maximum": 4000,
                  "description": "Pixels"},
        "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
        "sharpen": {"type": "boolean", "default": False},
        "token": {"type": "string", "secret": True},
    }

    def run(self):
        self.log("width %s, mode %s, sharpen %s, token %s" % (
            self.params["width"], self.params["mode"], self.params["sharpen"],
            len(self.params.get("token", ""))))
'''


def test_a_worker_that_declares_parameters_gets_a_form(admin, server):
    server.api("PUT", "/workers/Resize", RESIZE_WORKER)
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "Resize")
    form = page.locator("#create-job-params .params-form")
    expect(form).to_be_visible()
    expect(page.locator("#create-job-params textarea")).to_have_count(0)  # no JSON box
    submit = page.locator("#create-job-submit")
    expect(submit).to_be_disabled()  # width is required
    width = form.get_by_label("width")
    width.fill("0")
    expect(form).to_contain_text("width: must be at least 1.")
    expect(width).to_have_attribute("aria-invalid", "true")
    expect(submit).to_be_disabled()
    width.fill("640")
    expect(submit).to_be_enabled()
    form.get_by_label("mode").select_option(label="fast")
    form.get_by_label("sharpen").check()
    expect(form.get_by_label("token")).to_have_attribute("type", "password")
    form.get_by_label("token").fill("s3cret-value")
    submit.click()
    expect(admin.log_lines.filter(has_text="width 640")).to_have_text(
        "width 640, mode fast, sharpen True, token 12")
    expect(admin.page.locator("#job-detail-facts")).not_to_contain_text("s3cret-value")
    # Back to a worker that declares nothing: the JSON editor returns.
    admin.tab("create-job")
    page.select_option("#create-job-worker", "Echo")
    expect(page.locator("#create-job-parameters")).to_be_visible()


def test_a_long_log_opens_at_its_tail_and_loads_earlier_pages(admin, server):
    job = server.create_job("Counter", {"count": 12000})
    server.wait_for_job(job["id"])
    admin.goto()
    admin.open_job(job["id"])
    # 12,002 entries: STARTED, line 0 .. line 11999, ENDED. The last 1,000 are shown.
    expect(admin.log_lines.last).to_contain_text("ENDED done")
    expect(admin.page.locator("#job-log-range")).to_have_text("entries 11,003–12,002 of 12,002")
    expect(admin.log_lines).to_have_count(1000)
    expect(admin.log_lines.first).to_have_text("line 11001")
    earlier = admin.page.locator("#job-log .load-earlier")
    expect(earlier).to_contain_text("11,002 before these")
    earlier.click()
    expect(admin.log_lines).to_have_count(2000)
    expect(admin.log_lines.first).to_have_text("line 10001")
    expect(admin.page.locator("#job-log-follow")).not_to_be_checked()  # reading, not following
    download = admin.page.locator("#job-log a[download]")
    expect(download).to_have_attribute("href", "/jobs/%s/log/download" % job["id"])


def test_following_a_fast_log_keeps_the_page_bounded(admin, server):
    job = server.create_job("Counter", {"count": 9000, "every": 1500, "pause": 0.2}, start=False)
    admin.goto()
    admin.open_job(job["id"])  # following from entry 0 before it starts: every line is live
    server.api("PUT", "/jobs/%s/status" % job["id"], "start")
    expect(admin.log_lines.last).to_contain_text("ENDED done", timeout=30_000)
    # 9,002 entries arrived while following; the page keeps the newest 5,000 (MAX_FOLLOWING).
    expect(admin.log_lines).to_have_count(5000)
    expect(admin.page.locator("#job-log-range")).to_have_text("entries 4,003–9,002 of 9,002")
    expect(admin.log_lines.first).to_have_text("line 4001")
    expect(admin.log_lines.nth(4998)).to_have_text("line 8999")
    expect(admin.page.locator("#job-log .load-earlier")).to_contain_text("4,002 before these")
    # Following kept the newest line in view.
    assert admin.page.evaluate(
        "(() => { const l = document.getElementById('job-log-lines');"
        " return l.scrollHeight - l.scrollTop - l.clientHeight < 30; })()")


def test_the_log_resumes_without_loss_after_the_server_restarts(browser, tmp_path):
    own = Server(tmp_path)
    admin = None
    try:
        own.wait_ready()
        job = own.create_job("TestWorker", {"count": 40, "sleep": 0.15})
        admin = AdminPage(browser, own)
        admin.goto()
        admin.mark()
        admin.open_job(job["id"])
        expect(admin.log_lines.filter(has_text=re.compile(r"^log 3$"))).to_have_count(1)
        own.stop()  # the job runs on under its supervisor
        expect(admin.page.locator("#connection")).to_have_attribute("data-state", "offline")
        own.start().wait_ready()
        expect(admin.page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(admin.status_badge).to_have_text("done", timeout=30_000)
        expect(admin.log_lines.last).to_contain_text("ENDED done")
        texts = admin.log_lines.all_inner_texts()
        assert [t for t in texts if t.startswith("log ")] == ["log %d" % i for i in range(40)]
        assert sum(t.startswith("STARTED") for t in texts) == 1
        admin.assert_not_reloaded()
        assert admin.csp_violations() == [] and admin.page_errors == []
    finally:
        if admin:
            admin.close()
        own.discard()


def test_screenshots_of_every_tab_on_a_laptop_and_a_phone(browser, server):
    """Not an assertion of looks: pictures for people (and the README) to check them by."""
    server.api("PUT", "/workers/Resize", RESIZE_WORKER)
    for parameters in ({"count": 2, "sleep": 0.1}, {"count": 1}):
        server.create_job("TestWorker", parameters)
    stopped = server.create_job("TestWorker", {"count": 100, "sleep": 0.2})
    server.api("PUT", "/jobs/%s/status" % stopped["id"], "stop")
    server.create_job("Echo", {"lines": ["checking input"], "fail": True})
    server.create_job("Foobar", None, start=False)
    running = server.create_job("TestWorker", {"count": 500, "sleep": 0.3})
    server.wait_for_job(stopped["id"])
    admin = AdminPage(browser, server)
    try:
        admin.goto()
        admin.open_job(running["id"])
        expect(admin.log_lines.filter(has_text=re.compile(r"^log 4$"))).to_have_count(1)
        admin.screenshot("laptop-1-manage-jobs")
        admin.tab("create-job")
        admin.page.select_option("#create-job-worker", "Echo")  # it declares none: JSON
        admin.page.fill("#create-job-parameters", '{\n  "lines": ["a"],\n  "fail": false,\n}')
        expect(admin.page.locator("#create-job-parameters-error")).to_be_visible()
        admin.screenshot("laptop-2-create-job")
        admin.page.select_option("#create-job-worker", "Resize")
        admin.page.get_by_label("width").fill("0")
        admin.screenshot("laptop-2b-create-job-declared-parameters")
        admin.tab("workers")
        admin.page.get_by_role("button", name="Code of TestWorker").click()
        expect(admin.page.locator("#worker-code .CodeMirror")).to_contain_text("TestWorker")
        admin.screenshot("laptop-3-manage-workers")
        admin.tab("create-worker")
        admin.page.fill("#create-worker-name", "Nightly_report")
        expect(admin.page.locator("#create-worker-editor .CodeMirror")).to_contain_text(
            "class Nightly_report(Worker)")
        admin.screenshot("laptop-4-create-worker")
    finally:
        admin.close()
    phone = AdminPage(browser, server, viewport=PHONE)
    try:
        phone.goto()
        phone.screenshot("phone-1-manage-jobs")
        phone.open_job(running["id"])
        expect(phone.log_lines.filter(has_text=re.compile(r"^log 2$"))).to_have_count(1)
        phone.page.locator("#job-detail").scroll_into_view_if_needed()
        phone.screenshot("phone-2-job")
        assert phone.csp_violations() == []
    finally:
        phone.close()
    server.api("PUT", "/jobs/%s/status" % running["id"], "kill")


# --- accounts: users, roles, tokens, the audit trail ------------------------------------------

def new_user(server, role, prefix="user"):
    """A fresh account made through the API: ``(username, password)``."""
    username = "%s-%s" % (prefix, os.urandom(3).hex())
    password = "pw-%s-long-enough" % username
    server.api("POST", "/users", {"username": username, "password": password, "role": role})
    return username, password


def test_an_admin_creates_a_user_who_signs_in_and_the_last_admin_is_kept(admin, browser, server):
    admin.goto("#users")
    page = admin.page
    username = "carol-%s" % os.urandom(3).hex()
    page.fill("#user-name", username)
    page.fill("#user-password", "carols-password-1")
    page.select_option("#user-role", "operator")
    page.click("#user-submit")
    expect(admin.page.locator("#status-area")).to_contain_text("user %s created" % username)
    row = page.locator('#users-rows tr[data-username="%s"]' % username)
    expect(row.get_by_label("Role of %s" % username)).to_have_value("operator")
    expect(row).to_contain_text("active")
    admin.screenshot("laptop-6-users")
    # The new user signs in through the form and is who the page says.
    carol = AdminPage(browser, server, user=(username, "carols-password-1"))
    try:
        expect(carol.page.locator("#account-name")).to_have_text("%s (operator)" % username)
        expect(carol.page.locator("#tab-create-job")).to_be_visible()
        expect(carol.page.locator("#tab-users")).to_be_hidden()
    finally:
        carol.close()
    # The server's refusal is shown, and the list keeps saying what is true.
    others = [u for u in server.api("GET", "/users")
              if u["role"] == "admin" and not u["disabled"] and u["username"] != "admin"]
    assert others == []  # else demoting admin would succeed and end this session
    own = page.get_by_label("Role of admin")
    own.select_option("viewer")
    expect(admin.alert).to_contain_text("admin is the last active admin: make another admin first")
    expect(own).to_have_value("admin")
    # Disable, enable, delete.
    row.get_by_role("button", name="Disable %s" % username).click()
    expect(row).to_contain_text("disabled")
    row.get_by_role("button", name="Enable %s" % username).click()
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Delete %s" % username).click()
    expect(row).to_have_count(0)
    assert [kind for kind, _ in admin.dialogs] == ["confirm", "confirm"]  # disable, delete
    assert server.call("GET", "/users/%s" % username).code == 404


def test_a_viewer_sees_no_admin_tabs_nor_run_buttons_and_a_forced_command_is_refused(
        browser, server):
    job = server.create_job("Echo", {"lines": ["seen by a viewer"]}, start=False)
    viewer = AdminPage(browser, server, user=new_user(server, "viewer", "vera"))
    try:
        viewer.goto()
        page = viewer.page
        for name in ("jobs", "workers", "account"):
            expect(page.locator("#tab-%s" % name)).to_be_visible()
        for name in ("create-job", "create-worker", "users", "audit"):
            expect(page.locator("#tab-%s" % name)).to_be_hidden()
        viewer.open_job(job["id"])
        expect(page.locator("#job-detail .actions")).to_be_hidden()
        expect(page.get_by_role("button", name="Start", exact=True)).to_have_count(0)
        # The keyboard skips the tabs the role does not reach.
        page.focus("#tab-jobs")
        page.keyboard.press("End")
        expect(page.locator("#tab-account")).to_be_focused()
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#tab-schedules")).to_have_attribute("aria-selected", "true")
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#tab-workers")).to_have_attribute("aria-selected", "true")
        expect(page.get_by_role("button", name="Code of Echo")).to_be_visible()
        expect(page.get_by_role("button", name="Delete Echo")).to_be_hidden()
        # Hiding is cosmetic: the server refuses, and the page shows its reason beside the
        # buttons.
        page.evaluate("document.body.dataset.role = 'operator'")
        viewer.tab("jobs")
        page.get_by_role("button", name="Start", exact=True).click()
        expect(page.locator("#job-detail-refusal")).to_contain_text(
            "your role (viewer) may not PUT /jobs/%s/status: it needs operator" % job["id"])
        assert server.api("GET", "/jobs/%s" % job["id"])[0]["status"] == "idle"
        page.goto(server.base + "/#users")  # an admin's tab by address: not offered
        expect(page.locator("#panel-jobs")).to_be_visible()
        expect(page.locator("#panel-users")).to_be_hidden()
        assert viewer.csp_violations() == [] and viewer.page_errors == []
    finally:
        viewer.close()


def test_the_audit_trail_shows_what_was_just_done_as_text(admin, server):
    server.call("POST", "/session", {"username": XSS, "password": "wrong"}, auth=None)
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "Echo")
    page.uncheck("#create-job-start")
    page.click("#create-job-submit")
    expect(admin.status_badge).to_have_text("idle")
    job_id = page.locator("#job-detail-facts .job-id").inner_text()
    admin.tab("audit")
    rows = page.locator("#audit-rows tr")
    created = rows.filter(has_text=job_id)
    expect(created).to_have_count(1)
    expect(created.locator(".cell-actor")).to_have_text("admin")
    expect(created.locator(".cell-action")).to_have_text("job.create")
    expect(created.locator(".cell-address")).to_have_text("127.0.0.1")
    assert rows.first.get_attribute("data-id") >= created.get_attribute("data-id")  # newest first
    failed = rows.filter(has_text="login.failed").filter(has_text=XSS)
    expect(failed.first.locator(".cell-target")).to_have_text(XSS)  # text, not markup
    admin.screenshot("laptop-7-audit")
    # Filters: by action, then by an actor who did nothing.
    page.select_option("#audit-action", "job.create")
    expect(rows.first.locator(".cell-action")).to_have_text("job.create")
    expect(rows.filter(has_not_text="job.create")).to_have_count(0)
    page.fill("#audit-actor", "nobody-at-all")
    page.press("#audit-actor", "Enter")
    expect(page.locator("#audit-empty")).to_be_visible()
    expect(rows).to_have_count(0)
    assert admin.page.locator("main img, main script").count() == 0


def test_a_user_creates_a_token_sees_it_once_uses_it_and_revokes_it(browser, server):
    operator = AdminPage(browser, server, user=new_user(server, "operator", "otto"))
    try:
        operator.context.grant_permissions(["clipboard-read", "clipboard-write"])
        operator.goto("#account")
        page = operator.page
        # A token's role is at most the owner's.
        assert page.locator("#token-role option").all_inner_texts() == ["viewer", "operator"]
        page.fill("#token-name", "nightly import")
        page.select_option("#token-role", "viewer")
        page.click("#token-submit")
        secret_box = page.locator("#token-secret")
        expect(secret_box).to_be_visible()
        expect(secret_box).to_contain_text("it will not be shown again")
        secret = page.locator("#token-secret-value").input_value()
        assert secret.startswith("jj_")
        page.click("#token-secret-copy")
        expect(operator.page.locator("#status-area")).to_contain_text("copied")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        operator.screenshot("laptop-5-account-token-created")
        row = page.locator("#tokens-rows tr").filter(has_text="nightly import")
        expect(row).to_contain_text("viewer")
        # The token works against the API, with its own role.
        reply = server.call("GET", "/session", auth=None, headers=bearer(secret))
        assert reply.code == 200 and reply.data[0]["role"] == "viewer"
        assert server.call("GET", "/jobs", auth=None, headers=bearer(secret)).code == 200
        # Once: Done forgets it, and a reload does not bring it back.
        page.click("#token-secret-done")
        expect(secret_box).to_be_hidden()
        operator.mark()
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-role", "operator")
        assert page.evaluate("window.__notReloaded === undefined")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(3)).not_to_have_text("never")  # last used: just now
        assert secret.split("_", 2)[2] not in page.content()
        row.get_by_role("button", name="Revoke token nightly import").click()
        expect(row).to_contain_text("revoked")
        expect(row.get_by_role("button")).to_have_count(0)
        assert [kind for kind, _ in operator.dialogs] == ["confirm"]
        assert server.call("GET", "/session", auth=None, headers=bearer(secret)).code == 401
        assert operator.csp_violations() == [] and operator.page_errors == []
    finally:
        operator.close()


def test_a_user_changes_their_password_and_signs_in_with_the_new_one(browser, server):
    username, password = new_user(server, "viewer", "pat")
    user = AdminPage(browser, server, user=(username, password))
    try:
        user.goto("#account")
        page = user.page
        page.fill("#password-current", "not-the-password")
        page.fill("#password-new", "a-brand-new-password")
        page.fill("#password-repeat", "a-brand-new-password")
        page.click("#password-submit")
        expect(user.alert).to_contain_text('"current" must be your current password')
        page.fill("#password-current", password)
        page.fill("#password-new", "a-brand-new-password")
        page.fill("#password-repeat", "a-brand-new-passwerd")
        page.click("#password-submit")
        expect(page.locator("#password-repeat-error")).to_be_visible()
        page.fill("#password-repeat", "a-brand-new-password")
        page.click("#password-submit")
        expect(page).to_have_url(re.compile(r"/login$"))  # every session ended, this one too
        sign_in(page, server.base, username, "a-brand-new-password")
        expect(page.locator("#account-name")).to_have_text("%s (viewer)" % username)
    finally:
        user.close()


def test_screenshots_of_the_account_views_on_a_phone(browser, server):
    phone = AdminPage(browser, server, viewport=PHONE)
    try:
        phone.goto("#account")
        phone.page.fill("#token-name", "phone screenshot")
        phone.page.click("#token-submit")
        expect(phone.page.locator("#token-secret")).to_be_visible()
        phone.screenshot("phone-3-account", full_page=True)
        phone.tab("users")
        expect(phone.page.locator("#users-rows tr").first).to_be_visible()
        phone.screenshot("phone-4-users", full_page=True)
        phone.tab("audit")
        expect(phone.page.locator("#audit-rows tr").first).to_be_visible()
        phone.screenshot("phone-5-audit")
        assert phone.csp_violations() == [] and phone.page_errors == []
    finally:
        phone.close()
