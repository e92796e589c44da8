"""Retries on the admin page, in a real browser (see test_browser.py for the fixtures): the job
view of a failed job shows its reason and its retry chain, each attempt linked with its status
and reason; the list marks a retry with a small badge; the creation form takes retries and a
retry delay."""
from tests.test_browser import admin, browser, expect, server  # noqa: F401  (fixtures)

FAILS = '''from jobjoker import Worker


class Fails(Worker):
    """Always fails."""

    def run(self):
        raise RuntimeError("<b>no</b>")
'''

LATER = 3600  # the retry stays scheduled while the test looks at it


def test_a_failed_job_shows_its_reason_and_its_chain(admin, server):  # noqa: F811
    server.api("PUT", "/workers/Fails", FAILS)
    first = server.call("POST", "/jobs", {"worker": "Fails", "start": True, "retries": 2,
                                          "retry_delay": LATER}).data[0]
    server.wait_for_job(first["id"])
    admin.goto("#jobs/%s" % first["id"])
    page = admin.page
    view = page.locator(".job-attempts")
    expect(view.locator(".job-reason code")).to_have_text("exception")
    expect(view.locator("h3")).to_have_text("Attempts (attempt 1 of 3)")
    attempts = view.locator(".attempt-list li")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("Attempt 1:")
    expect(attempts.nth(0).locator(".badge")).to_have_text("error")
    expect(attempts.nth(0)).to_contain_text("exception")
    expect(attempts.nth(0)).to_contain_text("RuntimeError: <b>no</b>")  # text, not markup
    assert view.locator("b").count() == 0
    expect(attempts.nth(1).locator(".badge")).to_have_text("scheduled")
    expect(attempts.nth(1)).to_contain_text("starts")
    retry_id = server.api("GET", "/jobs/%s/attempts" % first["id"])[1]["id"]
    attempts.nth(1).locator("a").click()
    expect(page.locator("#job-detail-facts .job-id").first).to_have_text(retry_id)
    expect(view.locator("h3")).to_have_text("Attempts (attempt 2 of 3)")
    expect(view.locator(".attempt-list a")).to_have_text(first["id"][-6:])  # back to the first
    row = page.locator(".jobs-table tr[data-id='%s']" % retry_id)
    expect(row.locator(".attempt-badge")).to_have_text("2/3")
    admin.screenshot("job-attempts")


def test_the_creation_form_takes_retries_and_a_delay(admin, server):  # noqa: F811
    server.api("PUT", "/workers/Fails", FAILS)
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "Fails")
    page.uncheck("#create-job-start")
    page.fill("#create-job-retries", "4")
    page.fill("#create-job-retry-delay", "2.5")
    page.click("#create-job-submit")
    expect(page.locator("#panel-jobs")).to_be_visible()
    expect(admin.status_badge).to_have_text("idle")
    job_id = page.locator("#job-detail-facts .job-id").first.text_content()
    job = server.job(job_id)
    assert (job["retries"], job["retry_delay"], job["attempt"]) == (4, 2.5, 1), job
