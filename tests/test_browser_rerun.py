"""The admin page's "Run again" and the code a job ran, in a real browser (see test_browser.py
for the fixtures): Run again opens the creation form filled with the old job's parameters, a
secret one empty with a note, and submitting a changed parameter creates a job linked to the old
one; the job view shows the code the job ran and a coloured diff against today's worker, as
text."""
from tests.test_browser import admin, browser, expect, server  # noqa: F401  (fixtures)

SIZER = '''from jobjoker import Worker

MARK = "@MARK@"


class Sizer(Worker):
    """Logs its width and how long its token is."""

    parameters = {
        "width": {"type": "integer", "required": True, "minimum": 1},
        "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
        "token": {"type": "string", "secret": True},
    }

    def run(self):
        self.log("%s width %s, mode %s, token %d" % (
            MARK, self.params["width"], self.params["mode"], len(self.params.get("token", ""))))
'''


def test_run_again_with_a_changed_parameter_creates_the_linked_job(admin, server):  # noqa: F811
    server.api("PUT", "/workers/Sizer", SIZER.replace("@MARK@", "one"))
    old = server.create_job("Sizer", {"width": 10, "mode": "fast", "token": "abc"})
    server.wait_for_job(old["id"])
    admin.goto("#jobs/%s" % old["id"])
    page = admin.page
    expect(page.locator("#job-detail-facts .job-id").first).to_have_text(old["id"])
    page.click("#job-detail-rerun")
    expect(page.locator("#panel-create-job")).to_be_visible()
    banner = page.locator("#create-job-rerun")
    expect(banner).to_contain_text("Running job %s (Sizer) again" % old["id"])
    expect(banner).to_contain_text("must be given again: token")
    form = page.locator("#create-job-params .params-form")
    expect(form.get_by_label("width")).to_have_value("10")
    expect(form.get_by_label("mode")).to_have_value("0")  # "fast", the old value
    expect(form.get_by_label("token")).to_have_value("")
    expect(form).to_contain_text("must be given again")
    form.get_by_label("width").fill("42")
    submit = page.locator("#create-job-submit")
    expect(submit).to_have_text("Run again")
    submit.click()
    expect(admin.log_lines.filter(has_text="width 42")).to_have_text(
        "one width 42, mode fast, token 0")
    link = page.locator("#job-detail-facts a.rerun-of")
    expect(link).to_have_text(old["id"])
    new_id = page.locator("#job-detail-facts .job-id").first.text_content()
    assert server.job(new_id)["rerun_of"] == old["id"]
    expect(banner).to_be_hidden()


def test_the_job_view_shows_the_code_it_ran_and_a_diff(admin, server):  # noqa: F811
    server.api("PUT", "/workers/Sizer", SIZER.replace("@MARK@", "<b>before</b>"))
    job = server.create_job("Sizer", {"width": 3})
    server.wait_for_job(job["id"])
    admin.goto("#jobs/%s" % job["id"])
    page = admin.page
    code = page.locator("#job-detail-code")
    expect(code.locator(".code-summary")).to_contain_text("is the same code")
    expect(code.locator(".code-diff")).to_have_count(0)
    server.api("PUT", "/workers/Sizer", SIZER.replace("@MARK@", "<i>after</i>"))
    # The save reaches the page over the live feed: the diff comes without a reload.
    expect(code.locator(".code-summary")).to_contain_text("differs")
    expect(code.locator(".diff-del")).to_have_text('-MARK = "<b>before</b>"')
    expect(code.locator(".diff-add")).to_have_text('+MARK = "<i>after</i>"')
    assert code.locator("b, i").count() == 0  # shown as text, never as markup
    code.locator(".code-ran summary").click()
    expect(code.locator(".code-view")).to_contain_text('MARK = "<b>before</b>"')
    admin.screenshot("job-code-diff")
    page.reload()  # and a page opened afresh shows the same
    expect(code.locator(".diff-add")).to_have_text('+MARK = "<i>after</i>"')


def test_run_again_of_a_worker_without_declared_parameters_fills_the_json_editor(
        admin, server):  # noqa: F811
    old = server.create_job("Echo", {"lines": ["first run"], "response": "one"})
    server.wait_for_job(old["id"])
    admin.goto("#jobs/%s" % old["id"])
    page = admin.page
    page.click("#job-detail-rerun")
    editor = page.locator("#create-job-parameters")
    expect(editor).to_have_value(
        '{\n  "lines": [\n    "first run"\n  ],\n  "response": "one"\n}')
    editor.fill('{"lines": ["second run"]}')
    page.click("#create-job-submit")
    expect(admin.log_lines.filter(has_text="second run")).to_have_count(1)
    new_id = page.locator("#job-detail-facts .job-id").first.text_content()
    job = server.wait_for_job(new_id)
    assert job["rerun_of"] == old["id"] and job["parameters"] == {
        "lines": ["second run"], "response": "one"}  # merged over the old ones
    # Back to a plain creation: the banner goes, and so does the link to the old job.
    admin.tab("create-job")
    expect(page.locator("#create-job-rerun")).to_be_hidden()
    expect(page.locator("#create-job-submit")).to_have_text("Create and start")
